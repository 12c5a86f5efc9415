"""The IDX reader: round trips over the whole format, and every way a file can be broken."""

import gzip
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from flatnn.datasets import read_idx

TYPE_BYTES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(a: np.ndarray) -> bytes:
    """A minimal IDX writer, independent of the reader."""
    header = bytes([0, 0, TYPE_BYTES[a.dtype], a.ndim]) + b"".join(
        s.to_bytes(4, "big") for s in a.shape
    )
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


arrays = st.sampled_from(sorted(TYPE_BYTES, key=str)).flatmap(
    lambda dtype: hnp.arrays(
        dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
    )
)


def assert_same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@settings(max_examples=150, deadline=None)
@given(a=arrays, gz=st.booleans())
def test_round_trip_any_dtype_and_shape(a, gz):
    data = idx_bytes(a)
    if gz:
        data = gzip.compress(data)
    b = read_idx(io.BytesIO(data))
    assert_same(a, b)
    assert b.dtype.isnative and b.flags.writeable and b.flags.c_contiguous


@settings(max_examples=150, deadline=None)
@given(a=arrays, gz=st.booleans(), data=st.data())
def test_truncated_file_raises(a, gz, data):
    blob = idx_bytes(a)
    if gz:
        blob = gzip.compress(blob)
    cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
    with pytest.raises(ValueError):
        read_idx(io.BytesIO(blob[:cut]))


@pytest.mark.parametrize("gz", [False, True])
def test_reads_files_by_path(tmp_path, gz):
    a = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 7
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(idx_bytes(a)) if gz else idx_bytes(a))
    assert_same(a, read_idx(path))
    assert_same(a, read_idx(str(path)))


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    a = np.array([1.5, -2.25], dtype=np.float64)
    (tmp_path / "gzipped.idx").write_bytes(gzip.compress(idx_bytes(a)))
    (tmp_path / "raw.gz").write_bytes(idx_bytes(a))
    assert_same(a, read_idx(tmp_path / "gzipped.idx"))
    assert_same(a, read_idx(tmp_path / "raw.gz"))


def test_big_endian_on_disk():
    data = (
        bytes([0, 0, 0x0C, 1])
        + (2).to_bytes(4, "big")
        + (1).to_bytes(4, "big")
        + (-2).to_bytes(4, "big", signed=True)
    )
    assert read_idx(io.BytesIO(data)).tolist() == [1, -2]


def test_zero_dimensional_file_holds_one_item():
    data = bytes([0, 0, 0x08, 0, 200])
    b = read_idx(io.BytesIO(data))
    assert b.shape == () and b == 200


@pytest.mark.parametrize(
    "header, match",
    [
        (bytes([0, 1, 0x08, 1]), "magic number 0x00010801"),
        (bytes([0x12, 0x34, 0x08, 1]), "not an IDX file"),
        (bytes([0, 0, 0x0A, 1]), "type byte"),
        (bytes([0, 0, 0x0F, 1]), "magic number 0x00000F01"),
    ],
)
def test_wrong_magic_number_names_the_file(tmp_path, header, match):
    path = tmp_path / "bad-magic.idx"
    path.write_bytes(header + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match=match) as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_truncated_data_names_the_file_and_both_sizes(tmp_path):
    path = tmp_path / "short.idx"
    path.write_bytes(idx_bytes(np.zeros((3, 4), np.float32))[:-5])
    with pytest.raises(ValueError, match=r"truncated.*\(3, 4\).*48 data bytes.*43 data bytes") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_truncated_header(tmp_path):
    path = tmp_path / "header.idx"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + (5).to_bytes(4, "big"))
    with pytest.raises(
        ValueError, match=r"header.idx: truncated: the header declares 3 dimensions"
    ):
        read_idx(path)


def test_size_larger_than_header_says(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(idx_bytes(np.zeros(5, np.uint8)) + b"\x00")
    with pytest.raises(
        ValueError, match=r"long.idx: size does not match the header.*5 data bytes.*6 data bytes"
    ):
        read_idx(path)


def test_truncated_and_corrupt_gzip_name_the_file(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"cut.gz: truncated gzip stream"):
        read_idx(path)
    corrupt = bytearray(blob)
    corrupt[-6] ^= 0xFF  # inside the CRC / length trailer
    path.write_bytes(bytes(corrupt))
    with pytest.raises(ValueError, match=r"cut.gz: corrupt gzip stream"):
        read_idx(path)


def test_rejects_text_files_and_other_types():
    with pytest.raises(TypeError, match="binary mode"):
        read_idx(io.StringIO("hello"))
    with pytest.raises(TypeError, match="path or a binary file object"):
        read_idx(42)
