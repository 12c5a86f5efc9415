"""MNIST and Fashion-MNIST loaders, where they look for files, verification; one_hot; xor.

The MNIST tests read the real files from ``$FLATNN_DATA/mnist`` (CI sets
``FLATNN_DATA``), else from ``<repo>/../shared/data/mnist``. They fail, never
skip, when the files are missing.
"""

import gzip
import math
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_FILES as FILES
from conftest import shared_data
from hypothesis import given
from hypothesis import strategies as st

import flatnn.datasets.fetch as fetch
import flatnn.datasets.mnist as mnist
from flatnn.datasets import (
    FASHION_MNIST_CLASSES,
    Splits,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    one_hot,
    read_idx,
    xor,
)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


MNIST_DIR = shared_data() / "mnist"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test touches the user's cache, the system folders or the network."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("FLATNN_DATA", str(shared_data()))
    monkeypatch.setattr(fetch, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ())
    monkeypatch.setattr(mnist, "FASHION_MNIST_MIRRORS", ())


def test_mnist_splits():
    s = load_mnist()
    assert s.name == "mnist" and s.class_names == tuple("0123456789")
    assert (s.X_train.shape, s.X_val.shape, s.X_test.shape) == (
        (50000, 784),
        (10000, 784),
        (10000, 784),
    )
    for X, y in ((s.X_train, s.y_train), (s.X_val, s.y_val), (s.X_test, s.y_test)):
        assert X.dtype == np.float64 and X.flags.c_contiguous
        assert y.dtype == np.int64 and y.shape == (X.shape[0],)
        assert X.min() == 0.0 and X.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
    assert s.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert s.y_test[:5].tolist() == [7, 2, 1, 0, 4]


def independent_idx(path: Path) -> np.ndarray:
    """An IDX reader written from the format's description (LeCun's MNIST page), not
    flatnn's: gzip, a big-endian header of magic 0x0000 0x08 ndim and ndim sizes, bytes."""
    raw = gzip.decompress(path.read_bytes())
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    assert (zero, dtype_code) == (0, 0x08)
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    body = raw[4 + 4 * ndim :]
    assert len(body) == math.prod(dims)
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def test_mnist_agrees_with_an_independent_idx_reader():
    s = load_mnist(validation=10000)
    images = independent_idx(MNIST_DIR / "train-images-idx3-ubyte.gz")
    labels = independent_idx(MNIST_DIR / "train-labels-idx1-ubyte.gz")
    assert images.shape == (60000, 28, 28) and labels.shape == (60000,)
    np.testing.assert_array_equal(s.y_train, labels[:50000])
    np.testing.assert_array_equal(s.y_val, labels[50000:])
    np.testing.assert_array_equal(s.X_train, images[:50000].reshape(50000, 784) / 255.0)
    np.testing.assert_array_equal(s.X_val, images[50000:].reshape(10000, 784) / 255.0)
    test_images = independent_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(s.X_test, test_images.reshape(10000, 784) / 255.0)
    np.testing.assert_array_equal(
        s.y_test, independent_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    )


def test_validation_is_the_last_training_images_and_pixels_are_scaled():
    s = load_mnist(validation=10000)
    images = read_idx(MNIST_DIR / "train-images-idx3-ubyte.gz")
    labels = read_idx(MNIST_DIR / "train-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(s.y_train, labels[:50000])
    np.testing.assert_array_equal(s.y_val, labels[50000:])
    np.testing.assert_array_equal(s.X_val[-1], images[-1].ravel() / 255.0)
    np.testing.assert_array_equal(s.X_train[7].reshape(28, 28), images[7] / 255.0)


def test_validation_size_and_float32():
    s = load_mnist(validation=0, dtype=np.float32)
    assert s.X_train.shape == (60000, 784) and s.X_val.shape == (0, 784) and s.y_val.shape == (0,)
    assert s.X_train.dtype == s.X_val.dtype == s.X_test.dtype == np.float32
    assert s.X_train.max() == np.float32(1.0)
    s = load_mnist(validation=123)
    assert len(s.y_train) == 60000 - 123 and len(s.y_val) == 123


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"dtype": np.int32}, ValueError, "dtype must be float32 or float64, got int32"),
        ({"dtype": np.float16}, ValueError, "got float16"),
        (
            {"validation": -1},
            ValueError,
            r"validation \(training images to hold out\) must be an integer in "
            r"\[0, 59999\], got -1",
        ),
        ({"validation": 60000}, ValueError, "got 60000"),
        ({"validation": 0.5}, TypeError, "validation .* must be an integer"),
        ({"validation": True}, TypeError, "validation .* must be an integer"),
        ({"mirrors": "http://example.invalid/"}, TypeError, "sequence of base URLs"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_mnist(**kwargs)


def test_repr_is_short():
    r = repr(load_mnist())
    assert (
        r == "Splits(name='mnist', train=50000, val=10000, test=10000, n_features=784, "
        "n_classes=10, dtype=float64)"
    )


def test_splits_checks_shapes():
    X, y = np.zeros((3, 4)), np.zeros(3, np.int64)
    with pytest.raises(ValueError, match=r"y_val must have shape \(3,\)"):
        Splits(
            X_train=X,
            y_train=y,
            X_val=X,
            y_val=y[:2],
            X_test=X,
            y_test=y,
            name="t",
            class_names="ab",
        )
    with pytest.raises(ValueError, match=r"X_test must have shape \(m, 4\), got \(3, 5\)"):
        Splits(
            X_train=X,
            y_train=y,
            X_val=X,
            y_val=y,
            X_test=np.zeros((3, 5)),
            y_test=y,
            name="t",
            class_names="ab",
        )


def test_load_dataset_dispatches_and_rejects_unknown_names():
    assert load_dataset("mnist", validation=5000).X_val.shape == (5000, 784)
    with pytest.raises(
        ValueError, match="unknown data set 'cifar10'; expected one of 'mnist', 'fashion-mnist'"
    ):
        load_dataset("cifar10")


def link_files(folder: Path, names=FILES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in names:
        (folder / (f + ".gz")).symlink_to(MNIST_DIR / (f + ".gz"))
    return folder


def test_path_argument_is_searched(tmp_path, monkeypatch):
    monkeypatch.delenv("FLATNN_DATA")
    folder = link_files(tmp_path / "my-mnist")
    assert load_mnist(folder, download=False).X_test.shape == (10000, 784)
    assert load_mnist(str(folder), download=False).name == "mnist"


def test_path_argument_comes_before_flatnn_data(tmp_path):
    folder = link_files(tmp_path / "bad", [f for f in FILES if f != "train-labels-idx1-ubyte"])
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"not MNIST"))
    with pytest.raises(ValueError, match="SHA-256|bytes, expected 60008") as e:
        load_mnist(folder)
    assert str(folder / "train-labels-idx1-ubyte.gz") in str(e.value)


def test_path_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ValueError, match="path must be the folder holding the mnist files"):
        load_mnist(tmp_path / "file")


def test_uncompressed_files_verify_like_gzipped_ones(tmp_path):
    folder = link_files(tmp_path / "raw", [f for f in FILES if "images" in f])
    for f in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / f).write_bytes(gzip.decompress((MNIST_DIR / (f + ".gz")).read_bytes()))
    s = load_mnist(folder)  # gzipped images and raw labels, all from `folder`
    assert s.y_train[:3].tolist() == [5, 0, 4]


def test_a_modified_file_is_an_error_naming_it(tmp_path, monkeypatch):
    raw = bytearray(gzip.decompress((MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # still a valid IDX file of the right size
    data = tmp_path / "data"
    link_files(data / "mnist", FILES[:3])
    (data / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(bytes(raw))
    monkeypatch.setenv("FLATNN_DATA", str(data))
    with pytest.raises(
        ValueError, match="SHA-256 of the decompressed content is [0-9a-f]{64}, expected ff7bcfd4"
    ) as e:
        load_mnist()
    assert str(data / "mnist" / "t10k-labels-idx1-ubyte") in str(e.value)
    assert not list((tmp_path / "cache").glob("**/*.*"))  # nothing downloaded or copied


def test_user_cache_is_searched(tmp_path, monkeypatch):
    monkeypatch.delenv("FLATNN_DATA")
    link_files(tmp_path / "cache" / "flatnn" / "mnist")
    assert load_mnist(download=False).name == "mnist"


def test_home_cache_when_xdg_cache_home_is_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("FLATNN_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    link_files(tmp_path / "home" / ".cache" / "flatnn" / "mnist")
    assert load_mnist(download=False).name == "mnist"


def test_nothing_found_is_one_error_listing_where_it_looked(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("FLATNN_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(fetch, "SYSTEM_DATA_DIRS", (str(tmp_path / "system"),))
    with pytest.raises(FileNotFoundError) as e:
        load_mnist(download=False)
    message = str(e.value)
    for where in (
        "empty",
        "cache/flatnn/mnist",
        "system/mnist",
        "download=False",
        "set FLATNN_DATA=",
    ):
        assert where in message, message
    monkeypatch.delenv("FLATNN_DATA")
    with pytest.raises(FileNotFoundError, match=r"\$FLATNN_DATA: \(not set\)"):
        load_mnist(download=False)


def test_flatnn_data_may_name_the_files_folder_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("FLATNN_DATA", str(link_files(tmp_path / "flat")))
    assert load_mnist(download=False).y_test[:3].tolist() == [7, 2, 1]


# Fashion-MNIST: the real files where Debian's dataset-fashion-mnist put them (CI
# installs the package); its search and checks also run on fabricated files below,
# so they are exercised where the package is absent.


def fashion_dir() -> Path:
    if (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file():
        return DEBIAN_FASHION
    message = f"Fashion-MNIST not found in {DEBIAN_FASHION}: apt-get install dataset-fashion-mnist"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def test_fashion_mnist_from_the_debian_package(monkeypatch):
    folder = fashion_dir()
    monkeypatch.setattr(fetch, "SYSTEM_DATA_DIRS", (str(folder.parent),))
    s = load_fashion_mnist(download=False)
    assert s.name == "fashion-mnist" and s.class_names == FASHION_MNIST_CLASSES
    assert s.class_names[0] == "T-shirt/top" and s.class_names[9] == "Ankle boot"
    assert (s.X_train.shape, s.X_val.shape, s.X_test.shape) == (
        (50000, 784),
        (10000, 784),
        (10000, 784),
    )
    assert np.bincount(s.y_test).tolist() == [1000] * 10
    assert s.X_train.max() == 1.0 and s.X_test.min() == 0.0
    assert load_dataset("fashion-mnist", folder, validation=0, dtype="float32").X_train.shape == (
        60000,
        784,
    )


def fabricated_set(folder: Path) -> Path:
    """Four well-formed IDX files of the right shapes that are not Fashion-MNIST."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for f, shape in zip(FILES, ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,))):
        a = rng.integers(0, 10 if len(shape) == 1 else 256, size=shape, dtype=np.uint8)
        header = bytes([0, 0, 0x08, len(shape)]) + b"".join(s.to_bytes(4, "big") for s in shape)
        (folder / f).write_bytes(header + a.tobytes())
    return folder


def test_fashion_mnist_rejects_files_that_are_not_it(tmp_path, monkeypatch):
    fabricated_set(tmp_path / "data" / "fashion-mnist")
    monkeypatch.setenv("FLATNN_DATA", str(tmp_path / "data"))
    with pytest.raises(ValueError, match="expected c59f468a2f672dc8") as e:
        load_fashion_mnist()
    assert str(tmp_path / "data" / "fashion-mnist" / "train-images-idx3-ubyte") in str(e.value)
    with pytest.raises(ValueError, match="expected ba891046"):  # same files, MNIST's checksums
        shutil.copytree(tmp_path / "data" / "fashion-mnist", tmp_path / "data" / "mnist")
        load_mnist()


def test_fashion_mnist_searches_the_system_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("FLATNN_DATA")
    fabricated_set(tmp_path / "usr-share-datasets" / "fashion-mnist")
    monkeypatch.setattr(fetch, "SYSTEM_DATA_DIRS", (str(tmp_path / "usr-share-datasets"),))
    with pytest.raises(
        ValueError, match="usr-share-datasets/fashion-mnist/train-images-idx3-ubyte: SHA-256"
    ):
        load_fashion_mnist(download=False)


def test_fashion_mnist_not_found_names_its_folders():
    with pytest.raises(FileNotFoundError, match="fashion-mnist/"):
        load_fashion_mnist(download=False)


# one_hot and xor


def test_one_hot():
    Y = one_hot([2, 0, 1, 2], 3)
    assert Y.dtype == np.float64
    np.testing.assert_array_equal(Y, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert one_hot(np.array([1.0, 0.0]), 2, dtype=np.float32).dtype == np.float32
    assert one_hot(np.array([], dtype=np.int64), 4).shape == (0, 4)


@given(st.lists(st.integers(0, 9), max_size=50), st.integers(10, 12))
def test_one_hot_inverts_argmax(labels, k):
    Y = one_hot(np.array(labels, dtype=np.int64), k)
    assert Y.shape == (len(labels), k)
    assert (Y.sum(axis=1) == 1).all()
    assert Y.argmax(axis=1).tolist() == labels


@pytest.mark.parametrize(
    "labels, k, match",
    [
        ([0, 3], 3, r"labels must lie in \[0, 3\), got labels\[1\] = 3"),
        ([-1], 3, r"got labels\[0\] = -1"),
        ([0.5], 3, r"whole numbers, got labels\[0\] = 0.5"),
        ([np.nan], 3, "whole numbers"),
        (["a"], 3, "integers, got dtype <U1"),
        ([True], 3, "integers, got dtype bool"),
        ([[0, 1]], 3, r"shape \(m,\), got shape \(1, 2\)"),
        ([0], 0, r"k \(the number of classes\) must be an integer >= 1, got 0"),
    ],
)
def test_one_hot_rejects(labels, k, match):
    with pytest.raises(ValueError, match=match):
        one_hot(labels, k)
    with pytest.raises(TypeError, match=r"k \(the number of classes\) must be an integer"):
        one_hot([0], 2.0)


def test_xor():
    X, y = xor()
    assert X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y, [0, 1, 1, 0])
    np.testing.assert_array_equal(y, np.logical_xor(X[:, 0], X[:, 1]))


def test_load_by_name_gives_the_splits():
    from flatnn.datasets import NAMES, load

    assert NAMES == ("mnist", "fashion-mnist", "captcha", "xor")
    s = load("xor", dtype="float32", limit=3)
    assert s.name == "xor" and s.X_train.dtype == np.float32 and s.X_test.shape == (3, 2)
    assert s.class_names == ("0", "1")
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        load("cifar")
    with pytest.raises(ValueError, match="path applies to mnist and fashion-mnist"):
        load("xor", path=".")
    with pytest.raises(ValueError, match="limit must be an integer >= 1, got 0"):
        load("xor", limit=0)
