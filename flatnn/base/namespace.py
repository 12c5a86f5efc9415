"""Which array library computes: NumPy, or the library the data comes from.

flatnn's numerical core (:mod:`flatnn.backprop`, :mod:`flatnn.activations`,
:mod:`flatnn.losses` and :class:`flatnn.Network`'s methods) is written once,
against ``xp``: the module whose functions work on the arrays given. NumPy
arrays in give ``xp = numpy`` and the code path of a CPU-only flatnn; CuPy
arrays in give ``xp = cupy``, and the same functions run on the GPU and return
CuPy arrays. ``xp`` is NumPy-compatible (CuPy's API), not the stricter Python
array API: ``out=`` arguments, array methods such as ``.sum(axis=...)`` and
fancy indexing are used as NumPy has them.

The namespace of an array is found from the top-level module of its type
(``cupy.ndarray`` -> ``"cupy"``); CuPy is imported only when a CuPy array is
seen, so a process without it never pays for (or needs) the import. Other
libraries can be plugged in with :func:`register`: the tests use that to run
the ``xp`` code path on the CPU with a stand-in array type that refuses every
NumPy function, which proves that nothing on that path calls NumPy on data
that is not NumPy's.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

__all__ = ["namespace_of", "register", "asarray", "to_numpy", "is_numpy"]

_LOADERS = {"cupy": lambda: importlib.import_module("cupy")}
_LOADED: dict[str, Any] = {}


def register(root: str, namespace: Any) -> None:
    """Make arrays whose type lives in the top-level module ``root`` compute with ``namespace``.

    Parameters
    ----------
    root : str
        The first component of ``type(array).__module__`` (``"cupy"`` for CuPy).
    namespace : module or object
        NumPy-compatible functions for those arrays (``matmul``, ``exp``,
        ``empty``, ... with NumPy's signatures), plus ``asnumpy(a)`` to copy an
        array to the host. ``None`` removes the registration.
    """
    if not isinstance(root, str) or not root:
        raise TypeError(f"root must be a non-empty module name (str), got {root!r}")
    if namespace is None:
        _LOADERS.pop(root, None)
        _LOADED.pop(root, None)
        return
    _LOADERS[root] = lambda: namespace
    _LOADED.pop(root, None)


def _root(a):
    return type(a).__module__.partition(".")[0]


def namespace_of(*arrays: Any) -> Any:
    """The array namespace ``xp`` for ``arrays``: NumPy unless one of them is a registered type.

    Python scalars, lists, ``None`` and NumPy arrays count as NumPy.

    Raises
    ------
    TypeError
        When the arrays come from two different non-NumPy libraries.
    """
    found, found_root = None, None
    for a in arrays:
        if type(a) is np.ndarray:  # the common case, first and cheap
            continue
        root = _root(a)
        if root == "numpy" or root not in _LOADERS:
            continue
        if found_root is None:
            xp = _LOADED.get(root)
            if xp is None:
                xp = _LOADED[root] = _LOADERS[root]()
            found, found_root = xp, root
        elif root != found_root:
            raise TypeError(
                f"arrays from two libraries, {found_root} and {root}, in one call; "
                f"move them to one device first"
            )
    return np if found is None else found


def is_numpy(xp: Any) -> bool:
    """True when ``xp`` is NumPy itself (the CPU path, with its NumPy-only speed-ups)."""
    return xp is np


def asarray(a: Any, xp: Any, name: str, data: str = "X") -> Any:
    """``a`` as an array of ``xp``, moved there when it comes from NumPy (a small array).

    ``xp`` is the namespace of the data. A non-NumPy ``a`` with NumPy data is
    refused rather than copied back to the host on every call.

    Raises
    ------
    TypeError
        When ``a`` lives on a device and the data on the host, or on another device.
    """
    if type(a) is np.ndarray and xp is np:
        return a
    own = namespace_of(a)
    if own is xp:
        return a if xp is not np else np.asarray(a)
    if own is not np:
        where = "NumPy (the host)" if xp is np else xp.__name__
        raise TypeError(
            f"{name} is a {_root(a)} array but {data} is a {where} array; "
            f"move {data} to the device once (or {name} to the host)"
        )
    return xp.asarray(a)


def to_numpy(a: Any) -> np.ndarray:
    """``a`` as a NumPy array: itself when it is one, else a copy to the host."""
    if type(a) is np.ndarray:
        return a
    xp = namespace_of(a)
    if xp is np:
        return np.asarray(a)
    return xp.asnumpy(a)
