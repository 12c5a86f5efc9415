"""The worker side of :class:`flatnn.distributed.DaskObjective`: shards and partial sums.

A shard is ``(X, y, w)``: one row block of the data, kept as aligned arrays in
a worker's memory (``w`` the block's sample weights, or None). Each partial
function evaluates the network on one shard and returns the *sum* over its
rows (``Σ_i w_i loss_i`` and its derivatives); the driver adds the partials and
applies the objective's formula once (:mod:`flatnn.core.evaluation`).

Module-level functions, so that they pickle by reference: every worker needs
flatnn installed, as it needs numpy.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from flatnn.base import threads as flatnn_threads
from flatnn.core import inputs

__all__ = [
    "ALIGNMENT",
    "aligned",
    "shard_dtype",
    "own_shard",
    "shard_rows",
    "shard_weight",
    "partial_cost_grad",
    "partial_cost",
    "partial_hessp",
    "partial_gnvp",
    "shard_predict",
    "shard_correct",
    "evaluation_threads",
    "with_threads",
    "add",
]

ALIGNMENT = 64
"""Byte alignment of the shard arrays on the workers (one cache line, AVX-512)."""


def aligned(a: Any, dtype: Any) -> np.ndarray:
    """``a`` as a C-contiguous array of ``dtype`` whose data starts on a 64-byte boundary.

    A scattered array is a view into the message it arrived in and can start
    at any offset; BLAS runs measurably slower on such a buffer, so each shard
    is copied once into memory of its own.
    """
    a = np.asarray(a)
    dtype = np.dtype(dtype)
    if (
        a.dtype == dtype
        and a.flags.c_contiguous
        and a.flags.owndata
        and a.ctypes.data % ALIGNMENT == 0
    ):
        return a
    raw = np.empty(a.size * dtype.itemsize + ALIGNMENT, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGNMENT
    out = raw[start : start + a.size * dtype.itemsize].view(dtype).reshape(a.shape)
    out[...] = a
    return out


def shard_dtype(X_dtype: Any, requested: Any) -> np.dtype:
    """The dtype a shard's ``X`` is kept in: ``requested``, else float ``X``'s own, else float64."""
    if requested is not None:
        return np.dtype(requested)
    return np.dtype(X_dtype) if X_dtype in (np.float32, np.float64) else np.dtype(np.float64)


def own_shard(net: Any, X: Any, y: Any, dtype: Any, w: Any = None) -> tuple[Any, Any, Any]:
    """Validate one shard against ``net`` and keep it as aligned arrays ``(X, y, w)``.

    A scipy.sparse ``X`` is kept as a CSR matrix of the shard dtype.
    """
    if inputs.is_sparse(X):
        X = X.tocsr().astype(shard_dtype(X.dtype, dtype))
    else:
        X = np.asarray(X)
        X = aligned(X, shard_dtype(X.dtype, dtype))
    net.check_data(X, y)  # ValueError if unfit
    y = np.asarray(y)
    y = aligned(y, y.dtype)
    if w is not None:
        w = aligned(w, np.float64)
    return X, y, w


def shard_rows(shard: tuple[Any, Any, Any]) -> int:
    """Rows of a shard."""
    return int(shard[0].shape[0])


def shard_weight(shard: tuple[Any, Any, Any]) -> float:
    """``Σ w_i`` over a shard's rows (its row count when unweighted)."""
    X, _, w = shard
    return X.shape[0] if w is None else float(w.sum(dtype=np.float64))


def _zeros(net, params, X):
    return np.zeros(net.n_params, dtype=inputs.work_dtype(np.asarray(params).dtype, X.dtype))


def partial_cost_grad(net: Any, params: Any, shard: tuple[Any, Any, Any]) -> tuple[float, Any]:
    """``(Σ w_i loss_i, ∇ Σ w_i loss_i)`` over one shard (no L2 term)."""
    X, y, w = shard
    total = shard_weight(shard)
    if not total:  # every weight zero: the shard adds nothing
        return 0.0, _zeros(net, params, X)
    cost, grad = net.cost_grad(params, X, y, sample_weight=w)
    grad *= total  # the mean over the shard back to its sum
    return cost * total, grad


def partial_cost(net: Any, params: Any, shard: tuple[Any, Any, Any]) -> float:
    """``Σ w_i loss_i`` over one shard."""
    X, y, w = shard
    total = shard_weight(shard)
    if not total:
        return 0.0
    return net.cost(params, X, y, sample_weight=w) * total


def _partial_curvature(name, net, params, v, shard):
    X, y, w = shard
    total = shard_weight(shard)
    if not total:
        return _zeros(net, params, X)
    out = getattr(net, name)(params, v, X, y, sample_weight=w)
    out *= total
    return out


def partial_hessp(net: Any, params: Any, v: Any, shard: tuple[Any, Any, Any]) -> Any:
    """``H v`` of ``Σ w_i loss_i`` over one shard."""
    return _partial_curvature("hessp", net, params, v, shard)


def partial_gnvp(net: Any, params: Any, v: Any, shard: tuple[Any, Any, Any]) -> Any:
    """``G v`` of ``Σ w_i loss_i`` over one shard."""
    return _partial_curvature("gnvp", net, params, v, shard)


def shard_predict(net: Any, params: Any, shard: tuple[Any, Any, Any]) -> Any:
    """Predicted labels of a shard's rows."""
    return net.predict(params, shard[0])


def shard_correct(net: Any, params: Any, shard: tuple[Any, Any, Any]) -> float:
    """Rows predicted right (``Σ w_i [right_i]`` when weighted)."""
    X, y, w = shard
    if w is None:
        return int(round(net.accuracy(params, X, y) * X.shape[0]))
    total = shard_weight(shard)
    return net.accuracy(params, X, y, sample_weight=w) * total if total else 0.0


def evaluation_threads(threads: int | None, dask_worker: Any = None) -> int:
    """The threads one evaluation on this worker uses.

    ``threads`` when the objective was given it; else ``FLATNN_NUM_THREADS`` when
    the worker's environment sets it; else the worker's own Dask thread count
    (``dask worker --nthreads``, ``LocalCluster(threads_per_worker=...)``).
    """
    if threads is not None:
        return threads
    if os.environ.get(flatnn_threads.ENV_VAR, "").strip():
        return flatnn_threads.get_num_threads()
    if dask_worker is None:
        from distributed import get_worker

        try:
            dask_worker = get_worker()
        except ValueError:  # not on a worker (a local scheduler): this process's setting
            return flatnn_threads.get_num_threads()
    return int(getattr(dask_worker, "state", dask_worker).nthreads)


def with_threads(fn: Any, threads: int | None, *args: Any) -> Any:
    """Run ``fn(*args)`` with this worker's thread setting (see evaluation_threads)."""
    with flatnn_threads.using(evaluation_threads(threads)):
        return fn(*args)


def add(a: Any, b: Any) -> Any:
    """``a + b``, element by element for tuples (the tree sum of the partials)."""
    if isinstance(a, tuple):
        return tuple(add(x, z) for x, z in zip(a, b))
    return a + b
