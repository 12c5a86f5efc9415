"""How much memory this process may still use, and how much a network's training needs.

A command that trains for minutes checks first that the run fits, rather than
failing with a ``MemoryError`` (or being killed) halfway through. The figures are
estimates: the parameter-sized vectors a method keeps, plus the activations of
one batch.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

__all__ = ["available_memory", "format_bytes", "estimate_bytes", "method_vectors", "SQUARE_METHODS"]

# Parameter-sized vectors each method keeps: the parameters, the gradient, the
# rule's state, the best iterate; scipy's own (L-BFGS-B: 2 x 10 history pairs).
_VECTORS = {"sgd": 5, "momentum": 6, "nesterov": 6, "adam": 7, "rmsprop": 6, "L-BFGS-B": 28}

SQUARE_METHODS = ("BFGS", "SLSQP", "trust-krylov")
"""scipy methods that keep an n x n matrix (or factor one) for n parameters."""


def available_memory() -> int | None:
    """Bytes of memory this process may still use, or None when it cannot be told.

    ``MemAvailable`` of ``/proc/meminfo``, capped by the room left under the
    cgroup v2 limit (``/sys/fs/cgroup/memory.max`` minus ``memory.current``);
    elsewhere the free physical pages (``sysconf``).

    Returns
    -------
    int or None
    """
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            room = max(int(limit) - used, 0)
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    if available is None and hasattr(os, "sysconf"):
        with contextlib.suppress(OSError, ValueError):
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return available


def format_bytes(n: float) -> str:
    """``n`` bytes in decimal units: ``'512 bytes'``, ``'1.5 MB'``, ... up to PB."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def estimate_bytes(
    n_params: int, sizes: Sequence[int], itemsize: int, vectors: int, rows: int
) -> int:
    """Memory of ``vectors`` parameter vectors and the activations of ``rows`` rows.

    ``n_params * itemsize * vectors + 4 * rows * sum(sizes) * itemsize``: the
    forward pass keeps z and a of every layer, the backward pass a delta and its
    product.

    Parameters
    ----------
    n_params : int
        Entries of the flat parameter vector.
    sizes : sequence of int
        Layer sizes, input to output.
    itemsize : int
        Bytes per number (4 for float32, 8 for float64).
    vectors : int
        Parameter-sized vectors kept at once (see :func:`method_vectors`).
    rows : int
        Rows of one batch (0 for none).

    Returns
    -------
    int
    """
    return n_params * itemsize * vectors + 4 * rows * sum(sizes) * itemsize


def method_vectors(method: str, n_params: int) -> int:
    """Parameter-sized vectors a training method keeps (n of them for an n x n matrix).

    Parameters
    ----------
    method : str
        An update rule (``sgd``, ``momentum``, ...) or a scipy method name.
    n_params : int
        Entries of the flat parameter vector.

    Returns
    -------
    int
    """
    if method in SQUARE_METHODS:
        return n_params
    return _VECTORS.get(method, 10)
