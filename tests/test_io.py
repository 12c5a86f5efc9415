"""Saved models: round trips, atomic writes, and every way a file can be bad."""

import json
import os
import zipfile

import numpy as np
import pytest

import flatnn
from flatnn import load, save


@pytest.fixture
def model():
    net = flatnn.Network((4, 3, 2), hidden="tanh")
    return net, net.init(0)


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _header(net, **overrides):
    doc = {"format": "flatnn-model", "version": 1, "network": net.to_dict(), "metadata": {}}
    doc.update(overrides)
    return np.array(json.dumps(doc))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_keeps_spec_params_dtype_and_metadata(tmp_path, dtype):
    net = flatnn.Network((5, 4, 3, 1), hidden=("relu", "sigmoid"), loss="squared_error")
    params = net.init(1, dtype=dtype)
    meta = {
        "dataset": "xor",
        "class_names": ["a", "b"],
        "epochs": 3,
        "test_accuracy": np.float64(0.75),
        "nested": {"lr": 0.1, "none": None},
    }
    path = tmp_path / "m.npz"
    assert save(path, net, params, **meta) == str(path)
    net2, params2, meta2 = load(path)
    assert net2 == net
    assert params2.dtype == dtype
    np.testing.assert_array_equal(params2, params)
    assert meta2 == {**meta, "test_accuracy": 0.75}
    X = np.random.default_rng(0).random((7, 5))
    np.testing.assert_array_equal(net2.forward(params2, X), net.forward(params, X))


def test_file_is_plain_data_loadable_without_pickle(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    save(path, net, params)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["header", "params"]
        doc = json.loads(str(archive["header"]))
    assert doc["format"] == "flatnn-model" and doc["version"] == 1
    assert doc["network"] == net.to_dict()


def test_save_writes_exactly_at_path_without_npz_suffix(tmp_path, model):
    net, params = model
    path = tmp_path / "model.bin"
    save(path, net, params)
    assert os.listdir(tmp_path) == ["model.bin"]
    assert load(path)[0] == net


def test_save_replaces_and_leaves_no_temporary_files(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    save(path, net, params, run=1)
    save(path, net, params * 2, run=2)
    _, p, meta = load(path)
    np.testing.assert_array_equal(p, params * 2)
    assert meta == {"run": 2}
    assert os.listdir(tmp_path) == ["m.npz"]


def test_failed_save_keeps_the_old_file(tmp_path, model, monkeypatch):
    net, params = model
    path = tmp_path / "m.npz"
    save(path, net, params, run=1)

    def broken_savez(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        save(path, net, params * 3, run=2)
    monkeypatch.undo()
    assert load(path)[2] == {"run": 1}
    assert os.listdir(tmp_path) == ["m.npz"]


def test_metadata_that_is_not_json_names_the_key(tmp_path, model):
    net, params = model
    with pytest.raises(TypeError, match=r"'history\[0\]\.x' is a ndarray"):
        save(tmp_path / "m.npz", net, params, history=[{"x": np.zeros(3)}])
    with pytest.raises(TypeError, match="'when'"):
        save(tmp_path / "m.npz", net, params, when=object())
    with pytest.raises(TypeError, match="'loss'"):
        save(tmp_path / "m.npz", net, params, loss=float("nan"))
    assert not os.listdir(tmp_path)


def test_save_rejects_params_that_do_not_fit(tmp_path, model):
    net, params = model
    with pytest.raises(ValueError, match=f"needs {net.n_params}"):
        save(tmp_path / "m.npz", net, params[:-1])
    with pytest.raises(ValueError, match="float32 or float64"):
        save(tmp_path / "m.npz", net, params.astype(np.int64))
    with pytest.raises(ValueError, match="NaN"):
        save(tmp_path / "m.npz", net, np.full_like(params, np.nan))
    with pytest.raises(TypeError, match="Network"):
        save(tmp_path / "m.npz", net.to_dict(), params)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load(tmp_path / "nope.npz")


def test_pickled_object_array_is_refused_and_never_unpickled(tmp_path, model):
    net, params = model
    path = tmp_path / "evil.npz"
    # Unpickling this object would create a marker file; load must not do so.
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = np.empty(1, dtype=object)
    evil[0] = Payload()
    _write_npz(path, params=evil, header=_header(net))
    with pytest.raises(ValueError, match="pickled"):
        load(path)
    assert not marker.exists()


def test_truncated_file(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    save(path, net, params)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="m.npz"):
        load(path)


def test_not_an_archive(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello, I am not a model\n")
    with pytest.raises(ValueError, match="text.npz.*not an npz"):
        load(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="text.npz.*not an npz"):
        load(path)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match="single .npy"):
        load(npy)
    with pytest.raises(ValueError, match="directory"):
        load(tmp_path)


def test_tampered_params_length(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    _write_npz(path, params=params[:-1], header=_header(net))
    with pytest.raises(ValueError, match=rf"m.npz.*\({net.n_params},\)"):
        load(path)


def test_params_of_wrong_dtype_or_shape(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    _write_npz(path, params=params.astype(np.int32), header=_header(net))
    with pytest.raises(ValueError, match="int32"):
        load(path)
    _write_npz(path, params=params.reshape(1, -1), header=_header(net))
    with pytest.raises(ValueError, match="shape"):
        load(path)
    _write_npz(path, params=np.full_like(params, np.inf), header=_header(net))
    with pytest.raises(ValueError, match="NaN or inf"):
        load(path)


@pytest.mark.parametrize(
    "header, match",
    [
        (np.array("{not json"), "not valid JSON"),
        (np.array("[1, 2]"), "JSON object"),
        (np.frombuffer(b'{"format": "flatnn-model"}', dtype=np.uint8), "0-d unicode"),
    ],
)
def test_bad_header(tmp_path, model, header, match):
    net, params = model
    path = tmp_path / "m.npz"
    _write_npz(path, params=params, header=header)
    with pytest.raises(ValueError, match=match):
        load(path)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"format": "other"}, "format is 'other'"),
        ({"version": 2}, "version 2 is not supported"),
        ({"network": {"sizes": [4, 3]}}, "bad network spec"),
        (
            {
                "network": {
                    "sizes": [4, 0, 2],
                    "hidden": "relu",
                    "output": "softmax",
                    "loss": "cross_entropy",
                }
            },
            "bad network spec",
        ),
        ({"metadata": [1]}, "metadata must be a JSON object"),
    ],
)
def test_bad_header_fields(tmp_path, model, overrides, match):
    net, params = model
    path = tmp_path / "m.npz"
    _write_npz(path, params=params, header=_header(net, **overrides))
    with pytest.raises(ValueError, match=match):
        load(path)


def test_missing_or_extra_arrays(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    _write_npz(path, params=params)
    with pytest.raises(ValueError, match="holds arrays"):
        load(path)
    _write_npz(path, params=params, header=_header(net), extra=np.zeros(2))
    with pytest.raises(ValueError, match="holds arrays"):
        load(path)


def test_zip_with_a_corrupt_member(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("params.npy", b"\x93NUMPY garbage")
        z.writestr("header.npy", b"garbage")
    with pytest.raises(ValueError, match="m.npz"):
        load(path)
