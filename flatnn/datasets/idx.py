"""Reading the IDX file format, in which MNIST and Fashion-MNIST are distributed.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension,
then the data in C order and big-endian byte order::

    byte 0, 1   0x00 0x00
    byte 2      type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                      0x0D float32, 0x0E float64
    byte 3      number of dimensions, ndim
    4 * ndim    the size of each dimension (uint32, big-endian)
    ...         prod(sizes) items of the given type (big-endian)

Files may be gzip-compressed; compression is recognised by its magic bytes,
not by the file name.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

__all__ = ["read_idx"]

#: IDX type byte -> big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(source) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed.

    Parameters
    ----------
    source : str, os.PathLike or binary file object
        The file to read. Gzip compression is detected from the content.

    Returns
    -------
    numpy.ndarray
        An array with the shape given in the header, of the type given by the
        type byte (uint8, int8, int16, int32, float32 or float64) in native
        byte order. It owns its (writable) memory.

    Raises
    ------
    ValueError
        If the file is truncated, is not valid gzip, has a wrong magic number
        or an unknown type byte, or holds more or fewer bytes than its header
        announces. The message names the file and what is wrong.
    """
    name, content = read_content(source)
    return decode_idx(content, name)


def read_content(source) -> tuple[str, bytes]:
    """Return ``(name, content)``: a display name and the decompressed bytes of `source`."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        with open(name, "rb") as f:
            raw = f.read()
    elif hasattr(source, "read"):
        name = str(getattr(source, "name", "<file object>"))
        raw = source.read()
        if not isinstance(raw, (bytes, bytearray)):
            raise TypeError(f"{name}: expected a file opened in binary mode, read returned {type(raw).__name__}")
    else:
        raise TypeError(f"read_idx expects a path or a binary file object, got {type(source).__name__}")
    return name, decompress(bytes(raw), name)


def decompress(raw: bytes, name: str) -> bytes:
    """Gunzip `raw` if it starts with the gzip magic bytes, else return it as is."""
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as e:
        raise ValueError(f"{name}: truncated gzip stream ({len(raw)} compressed bytes): {e}") from None
    except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{name}: corrupt gzip stream: {e}") from None


def decode_idx(content: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the (decompressed) bytes of an IDX file; see :func:`read_idx`."""
    if len(content) < 4:
        raise ValueError(f"{name}: truncated: {len(content)} bytes, too short for the 4-byte IDX magic number")
    magic = int.from_bytes(content[:4], "big")
    type_byte, ndim = content[2], content[3]
    if content[:2] != b"\x00\x00" or type_byte not in IDX_DTYPES:
        known = ", ".join(f"0x{t:02X} ({d.name})" for t, d in IDX_DTYPES.items())
        raise ValueError(
            f"{name}: not an IDX file: magic number 0x{magic:08X}; expected 0x0000TTNN "
            f"with type byte TT one of {known}"
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise ValueError(
            f"{name}: truncated: the header declares {ndim} dimensions ({header_size} header bytes) "
            f"but the file has {len(content)} bytes"
        )
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[type_byte]
    count = 1
    for s in shape:
        count *= s
    expected = count * dtype.itemsize
    found = len(content) - header_size
    if found != expected:
        what = "truncated" if found < expected else "size does not match the header"
        raise ValueError(
            f"{name}: {what}: header says shape {shape} of {dtype.name} = {expected} data bytes, "
            f"file has {found} data bytes"
        )
    data = np.frombuffer(content, dtype=dtype, count=count, offset=header_size)
    # astype copies: the result owns writable memory in native byte order.
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)
