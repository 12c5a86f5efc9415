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
import tempfile
import zipfile

import numpy as np

from .network import Network

__all__ = ["save", "load", "FORMAT", "VERSION"]

FORMAT = "flatnn-model"
"""The ``format`` field of every model file's header."""

VERSION = 1
"""The header version this module writes and reads."""

_KEYS = {"params", "header"}


def _check_json(value, key):
    """Raise TypeError naming ``key`` unless ``value`` is plain JSON data."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"metadata {key!r} holds {value!r}, which JSON cannot store")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{key}[{i}]")
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(f"metadata {key!r} has a non-string key {k!r}")
            _check_json(item, f"{key}.{k}")
        return
    raise TypeError(f"metadata {key!r} is a {type(value).__name__}, which is not "
                    f"JSON-serialisable (use str, int, float, bool, None, list or dict)")


def _plain(value):
    """NumPy scalars to Python scalars, so that ``accuracy=np.float64(0.98)`` is accepted."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def save(path, net, params, **metadata):
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
        converted to Python numbers.

    Returns
    -------
    str
        ``os.fspath(path)``.

    Raises
    ------
    TypeError
        If ``net`` is not a Network, or a metadata value is not JSON data (the
        message names the key).
    ValueError
        If ``params`` does not fit ``net``.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a flatnn.Network, got {type(net).__name__}")
    params = np.asarray(params)
    if params.dtype not in (np.float32, np.float64):
        raise ValueError(f"params must be float32 or float64, got {params.dtype}")
    net.unpack(params)  # shape check, with the network's own message
    if not np.isfinite(params).all():
        raise ValueError("params contains NaN or inf; refusing to save a broken model")
    metadata = {k: _plain(v) for k, v in metadata.items()}
    for key, value in metadata.items():
        _check_json(value, key)
    header = json.dumps({"format": FORMAT, "version": VERSION, "network": net.to_dict(),
                         "metadata": metadata}, allow_nan=False)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".flatnn-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, params=params, header=np.array(header))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a Ctrl-C mid-write, a full disk: leave the old file and no debris
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def load(path):
    """Read a model file written by :func:`save`.

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
        For anything else that is not a valid model file: not an npz archive,
        a truncated file, pickled (object) arrays, missing or unexpected arrays,
        a header that is not JSON or has the wrong format or version, a network
        spec that does not build, or a vector whose length or dtype does not fit
        the spec. The message names the file.
    """
    path = os.fspath(path)
    name = repr(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {name} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"model file {name} is a directory")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        raise ValueError(f"{name} is a single .npy array, not a flatnn model (.npz)")
    if not magic.startswith(b"PK"):
        # np.load would take any other bytes for a pickle and refuse it as such
        raise ValueError(f"{name} is not a flatnn model: not an npz (zip) archive")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{name} is a single .npy array, not a flatnn model (.npz)")
        with archive:
            keys = set(archive.files)
            if keys != _KEYS:
                raise ValueError(f"{name} is not a flatnn model: it holds arrays "
                                 f"{sorted(keys)}, expected {sorted(_KEYS)}")
            header = archive["header"]
            params = archive["params"]
    except ValueError as exc:
        msg = str(exc)
        if "pickle" in msg.lower():
            raise ValueError(f"{name} holds pickled (object) arrays; flatnn model files "
                             f"never do, and they are not loaded") from None
        if msg.startswith(name):
            raise
        raise ValueError(f"{name} is not a readable flatnn model: {msg}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ValueError(f"{name} is not a readable flatnn model (truncated or not an "
                         f"npz archive): {exc}") from None

    if header.shape != () or header.dtype.kind != "U":
        raise ValueError(f"{name}: the header must be a 0-d unicode array, got dtype "
                         f"{header.dtype} shape {header.shape}")
    try:
        doc = json.loads(str(header))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: the header is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{name}: the header must be a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise ValueError(f"{name}: format is {doc.get('format')!r}, expected {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise ValueError(f"{name}: format version {doc.get('version')!r} is not supported "
                         f"(this flatnn reads version {VERSION})")
    missing = {"network", "metadata"} - set(doc)
    if missing:
        raise ValueError(f"{name}: the header lacks {sorted(missing)}")
    try:
        net = Network.from_dict(doc["network"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: bad network spec: {exc}") from None
    metadata = doc["metadata"]
    if not isinstance(metadata, dict):
        raise ValueError(f"{name}: metadata must be a JSON object, got "
                         f"{type(metadata).__name__}")
    if params.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: params has dtype {params.dtype}; expected float32 or "
                         f"float64")
    if params.ndim != 1 or params.shape[0] != net.n_params:
        raise ValueError(f"{name}: params has shape {params.shape}; {net!r} needs "
                         f"({net.n_params},)")
    if not np.isfinite(params).all():
        raise ValueError(f"{name}: params contains NaN or inf")
    return net, params, metadata
