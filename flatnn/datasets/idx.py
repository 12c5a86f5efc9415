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

import os
import stat
import zlib
from typing import BinaryIO

import numpy as np

__all__ = ["open_regular_file", "read_idx", "read_regular_file"]

#: IDX type byte -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(source: str | os.PathLike | BinaryIO) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed.

    A gzip file is inflated only as far as its IDX header declares: a file
    whose header declares more data than its compressed bytes can hold, or
    that inflates beyond what its header declares, is refused without being
    inflated whole. Only regular files are opened (a FIFO would block).

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
        If the file is not a regular file, is truncated, is not valid gzip, has
        a wrong magic number or an unknown type byte, or holds more or fewer
        bytes than its header announces. The message names the file and what
        is wrong.
    """
    name, content = read_content(source)
    return decode_idx(content, name)


def open_regular_file(
    path: str | os.PathLike, max_bytes: int | None = None, label: str | None = None
) -> BinaryIO:
    """Open the regular file at `path` for reading; ValueError for anything else.

    Opened without blocking and checked with ``fstat`` before any byte is read,
    so a FIFO, socket or device is refused instead of read (or waited on)
    forever. With `max_bytes`, a larger file is refused unread. Messages start
    with `label` (default: the path). FileNotFoundError passes through.
    """
    name = os.fspath(path)
    label = name if label is None else label
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except IsADirectoryError:
        raise ValueError(f"{label}: not a regular file (it is a directory)") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{label}: not a regular file (it is a directory)")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(
                f"{label}: not a regular file (a FIFO, socket or device); refusing to read it"
            )
        if max_bytes is not None and st.st_size > max_bytes:
            raise ValueError(
                f"{label}: {st.st_size} bytes, more than the {max_bytes} this file can be"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, "rb")  # noqa: SIM115 (the caller closes it)
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: str | os.PathLike, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (see :func:`open_regular_file`)."""
    with open_regular_file(path, max_bytes) as f:
        return f.read()


def read_content(source) -> tuple[str, bytes]:
    """Return ``(name, content)``: a display name and the decompressed bytes of `source`.

    Decompression is bounded by the size the IDX header declares (see :func:`read_idx`).
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        raw = read_regular_file(name)
    elif hasattr(source, "read"):
        name = str(getattr(source, "name", "<file object>"))
        raw = source.read()
        if not isinstance(raw, (bytes, bytearray)):
            raise TypeError(
                f"{name}: expected a file opened in binary mode, read returned {type(raw).__name__}"
            )
    else:
        raise TypeError(
            f"read_idx expects a path or a binary file object, got {type(source).__name__}"
        )
    raw = bytes(raw)
    if not raw.startswith(_GZIP_MAGIC):
        return name, raw
    # Inflate the header alone, then the rest only up to the size it declares.
    head = decompress(raw, name, max_size=_MAX_HEADER, prefix=True)
    expected = declared_size(head, name)
    if expected is None:  # too short or not IDX: decode_idx will say which
        return name, head
    if expected > len(raw) * _MAX_INFLATE_RATIO + _MAX_HEADER:
        raise ValueError(
            f"{name}: the IDX header declares {expected} bytes, more than {len(raw)} compressed "
            f"bytes can inflate to; the file is corrupt or a decompression bomb"
        )
    return name, decompress(raw, name, max_size=expected)


# 4 bytes of magic and at most 255 dimensions of 4 bytes.
_MAX_HEADER = 4 + 4 * 255

# Deflate cannot inflate more than 1032-fold.
_MAX_INFLATE_RATIO = 1100


def declared_size(head: bytes, name: str = "<bytes>") -> int | None:
    """The total size (header and data) an IDX file starting with `head` declares, or None."""
    if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in IDX_DTYPES:
        return None
    ndim = head[3]
    header_size = 4 + 4 * ndim
    if len(head) < header_size:
        return None
    count = 1
    for i in range(ndim):
        count *= int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big")
    return header_size + count * IDX_DTYPES[head[2]].itemsize


def decompress(raw: bytes, name: str, max_size: int | None = None, prefix: bool = False) -> bytes:
    """Gunzip `raw` if it starts with the gzip magic bytes, else return it as is.

    Parameters
    ----------
    raw : bytes
    name : str
        Named in error messages.
    max_size : int, optional
        Refuse (ValueError) content that inflates to more than this many
        bytes; inflation stops there, so memory stays bounded.
    prefix : bool, default False
        Return the first `max_size` bytes instead of refusing more.
    """
    if not raw.startswith(_GZIP_MAGIC):
        return raw[:max_size] if prefix else raw
    chunks, size = [], 0  # joined once at the end: no second copy of a single member
    data = raw
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        room = 0 if max_size is None else max_size + 1 - size
        try:
            chunk = inflater.decompress(data, room)
        except zlib.error as e:
            raise ValueError(f"{name}: corrupt gzip stream: {e}") from None
        chunks.append(chunk)
        size += len(chunk)
        if max_size is not None and size > max_size:
            if prefix:
                return b"".join(chunks)[:max_size]
            raise ValueError(
                f"{name}: inflates to more than {max_size} bytes, more than it should hold; "
                f"the file is corrupt or a decompression bomb"
            )
        if not inflater.eof:
            if prefix:
                return b"".join(chunks)
            raise ValueError(f"{name}: truncated gzip stream ({len(raw)} compressed bytes)")
        data = inflater.unused_data
        if not data.strip(b"\0"):  # gzip allows zero padding after the last member
            return b"".join(chunks)
        if not data.startswith(_GZIP_MAGIC):
            raise ValueError(f"{name}: corrupt gzip stream: trailing bytes after the last member")


def decode_idx(content: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the (decompressed) bytes of an IDX file; see :func:`read_idx`."""
    if len(content) < 4:
        raise ValueError(
            f"{name}: truncated: {len(content)} bytes, too short for the 4-byte IDX magic number"
        )
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
            f"{name}: truncated: the header declares {ndim} dimensions "
            f"({header_size} header bytes) "
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
