"""Saved models: one ``.npz`` file holding the flat vector and the spec as JSON.

A model file is a NumPy ``.npz`` archive with exactly two arrays:

``params``
    The flat parameter vector, shape ``(n_params,)``, float32 or float64.
``header``
    A 0-d unicode array holding one JSON document::

        {"format": "flatnn-model", "version": 1,
         "network": Network.to_dict(), "metadata": {...}}

Both arrays are plain data, so :func:`load` reads them with
``allow_pickle=False``: opening a model file can never run code. :func:`save`
writes to a temporary file in the target's folder and renames it into place, so
a reader sees either the old file or the whole new one, never a partial write.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib

import numpy as np

from flatnn.base import checks
from flatnn.core.network import Network
from flatnn.datasets.idx import open_regular_file
from flatnn.io.files import check_writable, write_atomically
from flatnn.io.metadata import check_metadata

__all__ = [
    "save",
    "load",
    "check_writable",
    "FORMAT",
    "VERSION",
    "MAX_HEADER_BYTES",
    "MAX_METADATA_DEPTH",
]

FORMAT = "flatnn-model"
"""The ``format`` field of every model file's header."""

VERSION = 1
"""The header version this module writes and reads."""

_KEYS = {"params", "header"}

MAX_HEADER_BYTES = 16 << 20
"""The largest header (JSON spec and metadata) :func:`load` reads, in bytes."""

MAX_METADATA_DEPTH = 64
"""How deeply lists and dicts may nest in metadata (:func:`save` refuses deeper)."""

# A deflate stream cannot inflate more than 1032-fold; a member that declares more
# than that (with room for headers) is a lie or a bomb, and is not read.
_MAX_INFLATE_RATIO = 1100


def _clean(value, key, depth=0, path=()):
    """``value`` as plain JSON data (NumPy scalars become Python numbers).

    Raises TypeError naming ``key`` for anything JSON cannot hold, for a
    container that contains itself, and for nesting deeper than
    :data:`MAX_METADATA_DEPTH` (which ``json`` could not read back).
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"metadata {key!r} holds {value!r}, which JSON cannot store")
        return value
    if isinstance(value, (list, tuple, dict)):
        if id(value) in path:
            raise TypeError(
                f"metadata {key!r} contains itself (a circular reference), which JSON cannot store"
            )
        if depth >= MAX_METADATA_DEPTH:
            raise TypeError(
                f"metadata {key!r} nests lists and dicts more than {MAX_METADATA_DEPTH} levels deep"
            )
        path = path + (id(value),)
        if isinstance(value, dict):
            out = {}
            for k, item in value.items():
                if not isinstance(k, str):
                    raise TypeError(f"metadata {key!r} has a non-string key {k!r}")
                out[k] = _clean(item, f"{key}.{k}", depth + 1, path)
            return out
        return [_clean(item, f"{key}[{i}]", depth + 1, path) for i, item in enumerate(value)]
    raise TypeError(
        f"metadata {key!r} is a {type(value).__name__}, which is not "
        f"JSON-serialisable (use str, int, float, bool, None, list or dict)"
    )


def save(path: str | os.PathLike, net: Network, params: np.ndarray, **metadata: object) -> str:
    """Write a network and its parameters to an ``.npz`` model file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (replaced if it exists). NumPy's habit of appending
        ``.npz`` is not followed: the file is written exactly at ``path``.
    net : Network
    params : ndarray, shape (net.n_params,)
        float32 or float64; stored as is (dtype kept).
    **metadata
        JSON-serialisable values stored with the model (``dataset="mnist"``,
        ``class_names=[...]``, ``test_accuracy=0.98``, ...). NumPy scalars are
        converted to Python numbers. Lists and dicts may nest up to
        :data:`MAX_METADATA_DEPTH` levels.

    Returns
    -------
    str
        ``os.fspath(path)``.

    Notes
    -----
    The file gets the mode any new file gets (0666 less the umask). It is
    written to ``.flatnn-<host>-<pid>-<random>.npz.tmp`` in the same folder and
    renamed into place; such files left by a killed save are removed by the
    next save into that folder.

    Raises
    ------
    TypeError
        If ``net`` is not a Network, or a metadata value is not JSON data,
        contains itself or nests too deeply (the message names the key).
    ValueError
        If ``params`` does not fit ``net``, the metadata would make the header
        larger than :data:`MAX_HEADER_BYTES`, or ``path`` is an existing
        special file (FIFO, device).
    OSError
        If the file cannot be written (``IsADirectoryError`` when ``path`` is
        a directory, ``PermissionError`` for a read-only folder, ...).
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a flatnn.Network, got {type(net).__name__}")
    params = checks.flat_vector(params, net.n_params, owner=net, dtypes="float32/64")
    if not np.isfinite(params).all():
        raise ValueError("params contains NaN or inf; refusing to save a broken model")
    metadata = {key: _clean(value, key) for key, value in metadata.items()}
    check_metadata(metadata, net, "save")
    header = json.dumps(
        {"format": FORMAT, "version": VERSION, "network": net.to_dict(), "metadata": metadata},
        allow_nan=False,
    )
    # stored as a 0-d unicode array, 4 bytes per character; load reads no more
    if 4 * len(header) > MAX_HEADER_BYTES:
        raise ValueError(
            f"the header (spec and metadata) would take {4 * len(header)} bytes; "
            f"a model file holds at most {MAX_HEADER_BYTES} (MAX_HEADER_BYTES): "
            f"store large data next to the model, not in its metadata"
        )
    return write_atomically(path, lambda f: np.savez(f, params=params, header=np.array(header)))


def load(path: str | os.PathLike) -> tuple[Network, np.ndarray, dict]:
    """Read a model file written by :func:`save`.

    Nothing is read before it is checked: the file must be a regular file (a
    FIFO would block forever), the header must be at most
    :data:`MAX_HEADER_BYTES`, and the parameter array's declared shape and
    dtype must fit the network the header describes before its bytes are read,
    so a small file that inflates to gigabytes is refused, not unpacked.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    net : Network
    params : ndarray, shape (net.n_params,)
        float32 or float64, as saved.
    metadata : dict
        The keyword arguments given to :func:`save`.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        For anything else that is not a valid model file: a directory or
        special file, not an npz archive, a truncated file, pickled (object)
        arrays, missing or unexpected arrays, a header that is too large, not
        JSON, nested too deeply or has the wrong format or version, a network
        spec that does not build, or a vector whose length or dtype does not fit
        the spec. The message names the file.
    """
    path = os.fspath(path)
    name = repr(path)
    try:
        f = open_regular_file(path, label=f"model file {name}")
    except FileNotFoundError:
        raise FileNotFoundError(f"model file {name} does not exist") from None
    with f:
        magic = f.read(6)
        f.seek(0)
        if magic == b"\x93NUMPY":
            raise ValueError(f"{name} is a single .npy array, not a flatnn model (.npz)")
        if not magic.startswith(b"PK"):
            # np.load would take any other bytes for a pickle and refuse it as such
            raise ValueError(f"{name} is not a flatnn model: not an npz (zip) archive")
        try:
            with zipfile.ZipFile(f) as archive:
                return _read_archive(archive, name)
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            EOFError,
            NotImplementedError,
            zlib.error,
        ) as exc:
            raise ValueError(
                f"{name} is not a readable flatnn model (truncated or not an npz archive): {exc}"
            ) from None


def _read_archive(archive, name):
    infos = archive.infolist()
    members = {info.filename: info for info in infos}
    keys = {n[:-4] if n.endswith(".npy") else n for n in members}
    if keys != _KEYS or len(infos) != len(_KEYS):  # a name twice is not a model file
        raise ValueError(
            f"{name} is not a flatnn model: it holds arrays "
            f"{sorted(keys)}, expected {sorted(_KEYS)}"
        )
    header_info = members.get("header.npy") or members["header"]
    params_info = members.get("params.npy") or members["params"]
    if header_info.file_size > MAX_HEADER_BYTES:
        raise ValueError(
            f"{name}: the header declares {header_info.file_size} bytes; a "
            f"model header is at most {MAX_HEADER_BYTES}"
        )
    with archive.open(header_info) as member:
        dtype, shape = _npy_header(member, name, "header")
        if shape != () or dtype.kind != "U":
            raise ValueError(
                f"{name}: the header must be a 0-d unicode array, got dtype {dtype} shape {shape}"
            )
        if dtype.itemsize > MAX_HEADER_BYTES:
            raise ValueError(
                f"{name}: the header declares {dtype.itemsize} bytes; a "
                f"model header is at most {MAX_HEADER_BYTES}"
            )
        raw = _read_exactly(member, dtype.itemsize, name, "header")
    text = str(np.frombuffer(raw, dtype=dtype, count=1)[0])
    net, metadata = _parse_header(text, name)
    check_metadata(metadata, net, name)

    with archive.open(params_info) as member:
        dtype, shape = _npy_header(member, name, "params")
        if dtype.kind != "f" or dtype.itemsize not in (4, 8):
            raise ValueError(f"{name}: params has dtype {dtype}; expected float32 or float64")
        if shape != (net.n_params,):
            raise ValueError(f"{name}: params has shape {shape}; {net!r} needs ({net.n_params},)")
        n_bytes = net.n_params * dtype.itemsize
        declared = params_info.file_size
        limit = (
            params_info.compress_size * _MAX_INFLATE_RATIO + 4096
            if params_info.compress_type != zipfile.ZIP_STORED
            else params_info.compress_size
        )
        if declared > limit or n_bytes > limit:
            raise ValueError(
                f"{name}: params declares {n_bytes} bytes of data but the "
                f"file holds only {params_info.compress_size} compressed bytes "
                f"for it; the file is corrupt or a decompression bomb"
            )
        params = np.empty(net.n_params, dtype=dtype.newbyteorder("="))
        _read_into(member, params, dtype, name)
    if not np.isfinite(params).all():
        raise ValueError(f"{name}: params contains NaN or inf")
    return net, params, metadata


def _npy_header(member, name, what):
    """Read a .npy member's header only: (dtype, shape)."""
    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError as exc:
        raise ValueError(f"{name}: the {what} array is not a readable .npy: {exc}") from None
    if dtype.hasobject:
        raise ValueError(
            f"{name} holds pickled (object) arrays; flatnn model files never "
            f"do, and they are not loaded"
        )
    if fortran and len(shape) > 1:
        raise ValueError(f"{name}: the {what} array is in Fortran order; expected C order")
    return dtype, tuple(shape)


def _read_exactly(member, n, name, what):
    data = member.read(n)
    if len(data) != n:
        raise ValueError(f"{name}: the {what} array is truncated ({len(data)} of {n} bytes)")
    if member.read(1):
        raise ValueError(f"{name}: the {what} array holds more bytes than its header declares")
    return data


def _read_into(member, out, dtype, name):
    """Fill ``out`` from ``member`` in chunks (no second copy of the vector)."""
    buffer = memoryview(out).cast("B")
    pos, total = 0, buffer.nbytes
    while pos < total:
        got = member.readinto(buffer[pos : pos + (1 << 24)])
        if not got:
            raise ValueError(f"{name}: params is truncated ({pos} of {total} bytes)")
        pos += got
    if member.read(1):  # reading to the end also checks the member's CRC
        raise ValueError(f"{name}: params holds more bytes than its header declares")
    if not dtype.isnative:
        out.byteswap(inplace=True)


def _parse_header(text, name):
    try:
        doc = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise ValueError(f"{name}: the header is not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(
            f"{name}: the header nests too deeply to be a flatnn model header"
        ) from None
    if not isinstance(doc, dict):
        raise ValueError(f"{name}: the header must be a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise ValueError(f"{name}: format is {doc.get('format')!r}, expected {FORMAT!r}")
    version = doc.get("version")
    # 1.0 and true compare equal to 1 in Python; the format says an integer.
    if type(version) is not int or version != VERSION:
        raise ValueError(
            f"{name}: format version {version!r} is not supported "
            f"(this flatnn reads version {VERSION}, an integer)"
        )
    missing = {"network", "metadata"} - set(doc)
    if missing:
        raise ValueError(f"{name}: the header lacks {sorted(missing)}")
    try:
        net = Network.from_dict(doc["network"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: bad network spec: {exc}") from None
    metadata = doc["metadata"]
    if not isinstance(metadata, dict):
        raise ValueError(f"{name}: metadata must be a JSON object, got {type(metadata).__name__}")
    return net, metadata
