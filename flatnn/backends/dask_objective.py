"""A data-parallel objective on Dask distributed: the data stays, the flat vector travels.

:class:`DaskObjective` splits the samples into shards once, when it is built,
and keeps every shard in the memory of one Dask worker for its whole life.
An evaluation then sends only the flat vector ``params`` (and ``v`` for the
curvature products) out, and each shard answers with one partial sum::

    J(params) = (1/m) Σ_s Σ_{i∈s} loss_i  +  lam/(2m) Σ_l ‖theta_l[:, 1:]‖²
    ∇J        = (1/m) Σ_s ∇ Σ_{i∈s} loss_i  +  (lam/m) theta_l[:, 1:]

The partials are added pairwise on the workers (a fixed tree, so the result
does not depend on where the shards live) and only the final sum comes back;
the driver divides by ``m`` and adds the L2 term once, through
:meth:`Network.cost_from_sum` and :meth:`Network.add_l2_grad` (the formula's
one home). This is how Spark
MLlib trains its multilayer perceptron (a gradient summed over partitions fed
to L-BFGS), on an existing engine: Dask distributed, the optional extra
``flatnn[dask]``.

Dask is imported only when a :class:`DaskObjective` is built, so
``import flatnn.distributed`` works without it.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import uuid
from typing import Any

import numpy as np

from flatnn.base import checks
from flatnn.base import threads as flatnn_threads
from flatnn.core.network import Network

__all__ = ["DaskObjective", "ALIGNMENT", "INSTALL_HINT"]

ALIGNMENT = 64
"""Byte alignment of the shard arrays on the workers (one cache line, AVX-512)."""

INSTALL_HINT = "pip install flatnn[dask]"


def _import_dask():
    try:
        import dask
        import dask.array
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"flatnn.distributed needs Dask distributed ({exc}); install it with: {INSTALL_HINT}"
        ) from exc
    return dask, distributed


# --------------------------------------------------------------------------
# Functions that run on the workers. Module-level, so that they pickle by
# reference: every worker needs flatnn installed, as it needs numpy.


def _aligned(a, dtype):
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


def _shard_dtype(X_dtype, requested):
    if requested is not None:
        return np.dtype(requested)
    return np.dtype(X_dtype) if X_dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _own_shard(net, X, y, dtype):
    """Validate one shard against ``net`` and keep it as aligned arrays ``(X, y)``."""
    X = np.asarray(X)
    X = _aligned(X, _shard_dtype(X.dtype, dtype))
    net.check_data(X, y)  # ValueError if unfit
    y = np.asarray(y)
    y = _aligned(y, y.dtype)
    return X, y


def _shard_rows(shard):
    return int(shard[0].shape[0])


def _partial_cost_grad(net, params, shard):
    X, y = shard
    m = X.shape[0]
    cost, grad = net.cost_grad(params, X, y)
    grad *= m  # the mean over the shard back to its sum
    return cost * m, grad


def _partial_cost(net, params, shard):
    X, y = shard
    return net.cost(params, X, y) * X.shape[0]


def _partial_hessp(net, params, v, shard):
    X, y = shard
    out = net.hessp(params, v, X, y)
    out *= X.shape[0]
    return out


def _partial_gnvp(net, params, v, shard):
    X, y = shard
    out = net.gnvp(params, v, X, y)
    out *= X.shape[0]
    return out


def _shard_predict(net, params, shard):
    return net.predict(params, shard[0])


def _shard_correct(net, params, shard):
    X, y = shard
    return int(round(net.accuracy(params, X, y) * X.shape[0]))


def _evaluation_threads(threads, dask_worker=None):
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


def _with_threads(fn, threads, *args):
    """Run ``fn(*args)`` with this worker's thread setting (see _evaluation_threads)."""
    with flatnn_threads.using(_evaluation_threads(threads)):
        return fn(*args)


def _add(a, b):
    if isinstance(a, tuple):
        return tuple(_add(x, z) for x, z in zip(a, b))
    return a + b


# --------------------------------------------------------------------------


def _shard_key(i):
    return f"flatnn-shard-{i}-{uuid.uuid4().hex}"


def _is_dask_array(a):
    return type(a).__module__.startswith("dask.") and hasattr(a, "to_delayed")


def _lost_worker_errors(distributed):
    """Exceptions that mean "a worker or its data went away", worth a retry."""
    # FutureCancelledError ("lost dependencies": a shard went with its worker)
    # is a concurrent.futures.CancelledError; CommClosedError and TimeoutError
    # are OSErrors.
    from distributed.scheduler import KilledWorker

    return (concurrent.futures.CancelledError, KilledWorker, OSError)


class DaskObjective:
    """``J(params)`` over data sharded across the workers of a Dask cluster.

    Implements the objective protocol of :class:`flatnn.Objective` (``cost``,
    ``grad``, ``cost_grad``, ``hessp``, ``gnvp``, ``predict``, ``accuracy``,
    ``n_params``, ``m``, ``net``, ``lam``), so it goes wherever an
    ``Objective`` goes: ``flatnn.minimize(obj, p0, ...)`` or
    ``scipy.optimize.minimize(obj.cost_grad, p0, jac=True, hessp=obj.hessp)``.
    Every method returns what the in-process objective returns on the whole
    data, up to rounding.

    Parameters
    ----------
    client : distributed.Client or str
        A connected client, or a scheduler address such as
        ``"tcp://scheduler:8786"`` (the objective then opens its own client
        and closes it in :meth:`close`).
    net : Network
    X : ndarray or dask.array.Array, shape (m, net.sizes[0])
        NumPy arrays are split into ``n_shards`` row blocks and scattered, once;
        a dask array's row chunks are the shards, built where the chunks are.
    y : ndarray or dask.array.Array
        Labels ``(m,)`` or targets ``(m, k)``, as in :meth:`Network.cost`.
    lam : float, default 0
        L2 strength of the whole-data objective (applied once, on the driver).
    n_shards : int, optional
        Number of row blocks for NumPy data (default: one per worker).
        Ignored for dask arrays, whose row chunks are the shards.
    dtype : {None, float32, float64}, optional
        Precision the shards are stored in. Default: float ``X`` keeps its
        dtype, other ``X`` becomes float64. float32 shards with float32
        ``params`` are evaluated entirely in float32.
    timeout : float, optional
        Seconds to wait for the workers at construction (default 30) and for
        each evaluation (default: no limit).
    retries : int, default 3
        How often an evaluation is run again after losing a worker (or timing
        out); lost shards are first rebuilt, re-scattered from the driver's
        NumPy arrays or recomputed by Dask from a dask array's graph. The
        result does not depend on where the shards live.
    threads : int, optional
        Threads each shard's evaluation uses on its worker (rows split as in
        :mod:`flatnn.threads`). Default: ``FLATNN_NUM_THREADS`` where the
        worker's environment sets it, else the worker's Dask thread count, so
        that one worker per machine with all its cores (the recommended
        layout) evaluates its shard on all of them. :meth:`worker_threads`
        tells what each worker uses.

    Raises
    ------
    ConnectionError
        When the scheduler cannot be reached or has no worker within ``timeout``.
    ValueError, TypeError
        When the data does not fit ``net`` (checked here, once), or ``threads``
        is not an integer >= 1.

    Notes
    -----
    The driver keeps a reference to NumPy ``X`` and ``y`` (never a copy) so
    that a shard lost with its worker can be sent again. Use the objective as
    a context manager, or call :meth:`close`, to free the workers' memory.
    """

    def __init__(
        self,
        client,
        net,
        X,
        y,
        lam=0.0,
        *,
        n_shards=None,
        dtype=None,
        timeout=None,
        retries=3,
        threads=None,
    ):
        dask, distributed = _import_dask()
        self._dask, self._distributed = dask, distributed
        if not isinstance(net, Network):
            raise TypeError(f"net must be a flatnn.Network, got {type(net).__name__}")
        self.net = net
        self.lam = checks.lam(lam)
        if dtype is not None:
            dtype = checks.float_dtype(dtype)
        self._dtype_request = dtype
        self.retries = checks.integer(retries, "retries", 0)
        self.threads = (
            None if threads is None else flatnn_threads.check_num_threads(threads, "threads")
        )
        self.timeout = timeout
        self._closed = False
        self._own_client = False
        self._recoveries = 0
        self.client = self._connect(client, 30 if timeout is None else timeout)
        try:
            self._build(X, y, n_shards)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ building
    def _connect(self, client, timeout):
        distributed = self._distributed
        if isinstance(client, str):
            try:
                client = distributed.Client(client, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(
                    f"cannot reach the Dask scheduler at {client!r} within {timeout} s: {exc}"
                ) from exc
            self._own_client = True
        elif not isinstance(client, distributed.Client):
            raise TypeError(
                f"client must be a distributed.Client or a scheduler address, "
                f"got {type(client).__name__}"
            )
        try:
            if client.status != "running":
                raise ConnectionError(f"the Dask client is {client.status!r}, not running")
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(
                    f"the Dask scheduler {client.scheduler.address} has no worker after {timeout} s"
                ) from exc
        except ConnectionError:
            if self._own_client:
                client.close()
            raise
        return client

    def _workers(self):
        return sorted(self.client.nthreads())

    def _build(self, X, y, n_shards):
        net = self.net
        if _is_dask_array(X):
            self._build_from_dask(X, y)
            return
        if _is_dask_array(y):
            raise TypeError(
                "X is a NumPy array and y a dask array; pass both as NumPy "
                "arrays or X as a dask array"
            )
        X = np.asarray(X)
        y = np.asarray(y)
        # Shapes and every label are checked here once, before anything is sent.
        net.check_data(X, y)
        m = X.shape[0]
        workers = self._workers()
        if n_shards is None:
            n_shards = len(workers)
        n_shards = checks.integer(n_shards, "n_shards", 1, m)
        bounds = np.linspace(0, m, n_shards + 1).round().astype(int)
        self._sources = [(X[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        self._rows = [int(b - a) for a, b in zip(bounds[:-1], bounds[1:])]
        self._delayed = None
        self._shards = [None] * len(self._sources)
        for i in range(len(self._sources)):
            self._place(i, workers[i % len(workers)])
        self._wait_shards(X.dtype)

    def _build_from_dask(self, X, y):
        dask, _ = self._dask, self._distributed
        da = dask.array
        net = self.net
        checks.features(X.shape, net)
        if any(math.isnan(c) for c in X.chunks[0]):
            raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
        if not _is_dask_array(y):
            y = np.asarray(y)
            y = da.from_array(y, chunks=(X.chunks[0],) + y.shape[1:])
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y must be labels (m,) or targets (m, k) with m = {X.shape[0]} "
                f"rows like X, got shape {y.shape}"
            )
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        y = y.rechunk((X.chunks[0],) + tuple((n,) for n in y.shape[1:]))
        xs = X.to_delayed().ravel()
        ys = y.to_delayed().ravel()
        self._sources = None
        self._rows = [int(c) for c in X.chunks[0]]
        self._delayed = [
            dask.delayed(_own_shard)(net, xb, yb, self._dtype_request, dask_key_name=_shard_key(i))
            for i, (xb, yb) in enumerate(zip(xs, ys))
        ]
        self._shards = self.client.compute(self._delayed)
        self._wait_shards(X.dtype)

    def _place(self, i, worker):
        """Send NumPy shard ``i`` to ``worker`` and make it the worker's own, aligned."""
        Xs, ys = self._sources[i]
        client = self.client
        raw = client.scatter([Xs, ys], workers=[worker], hash=False)
        self._shards[i] = client.submit(
            _own_shard,
            self.net,
            raw[0],
            raw[1],
            self._dtype_request,
            workers=[worker],
            allow_other_workers=True,
            pure=False,
            key=_shard_key(i),
        )
        # The raw scattered buffers are dropped once the aligned copy exists.

    def _wait_shards(self, X_dtype):
        """Wait until every shard is built; raise a shard's error about the data."""
        rows = self._shard_rows()
        if rows != self._rows:
            raise ValueError(f"the shards hold {rows} rows; the data's row blocks are {self._rows}")
        self._locate()
        self.m = int(sum(self._rows))
        self._dtype = _shard_dtype(X_dtype, self._dtype_request)

    def _shard_rows(self):
        """Wait for every shard; return their row counts (a shard's error is raised)."""
        timeout = 30 if self.timeout is None else self.timeout
        # One tiny task per shard, run where the shard lives: only its shape comes back.
        infos = [self.client.submit(_shard_rows, f, pure=False) for f in self._shards]
        return [f.result(timeout=timeout) for f in infos]

    def _locate(self):
        """Record which worker holds each shard."""
        who = self.client.who_has(self._shards)
        self._where = [list(who.get(f.key, ())) or None for f in self._shards]

    def _repair(self):
        """Rebuild the shards whose worker went away."""
        workers = self._workers()
        if not workers:
            self.client.wait_for_workers(1, timeout=30 if self.timeout is None else self.timeout)
            workers = self._workers()
        for i, f in enumerate(self._shards):
            if f.status in ("finished", "pending"):
                continue
            if self._sources is not None:
                self._place(i, workers[i % len(workers)])
            else:
                self._shards[i] = self.client.compute(self._delayed[i])
        self._shard_rows()
        self._locate()

    # ------------------------------------------------------------ evaluating
    def _check_vector(self, a, name):
        if self._closed:
            raise RuntimeError("this DaskObjective is closed")
        return checks.finite(checks.flat_vector(a, self.n_params, name, owner=self.net), name)

    def _map_reduce(self, fn, vectors, reduce=True):
        """Run ``fn(net, *vectors, shard)`` on every shard; sum the results as a tree."""
        errors = _lost_worker_errors(self._distributed)
        last = None
        for attempt in range(self.retries + 1):
            try:
                if attempt:
                    self._repair()
                return self._map_reduce_once(fn, vectors, reduce)
            except errors as exc:
                last = exc
                self._recoveries += 1
        raise RuntimeError(
            f"evaluation failed {self.retries + 1} times after losing workers; last error: {last!r}"
        ) from last

    def _map_reduce_once(self, fn, vectors, reduce):
        client = self.client
        tag = uuid.uuid4().hex
        sent = client.scatter(list(vectors), hash=False)  # one round trip for all
        name = fn.__name__.lstrip("_")
        # Pinned (loosely: a lost worker's tasks go elsewhere) to the shard's
        # worker, so that the vector moves to the data and never the reverse,
        # even when a shard is smaller than the vector.
        parts = [
            client.submit(
                _with_threads,
                fn,
                self.threads,
                self.net,
                *sent,
                shard,
                pure=False,
                workers=where,
                allow_other_workers=True,
                key=f"flatnn-{name}-{tag}-{i}",
            )
            for i, (shard, where) in enumerate(zip(self._shards, self._where))
        ]
        if not reduce:
            return client.gather(parts)
        level = 0
        while len(parts) > 1:
            pairs = [
                client.submit(
                    _add, parts[j], parts[j + 1], pure=False, key=f"flatnn-sum-{tag}-{level}-{j}"
                )
                for j in range(0, len(parts) - 1, 2)
            ]
            if len(parts) % 2:
                pairs.append(parts[-1])
            parts = pairs
            level += 1
        return parts[0].result(timeout=self.timeout)

    def _finish_vector(self, total, direction):
        out = total / self.m  # a fresh array, in the work dtype
        return self.net.add_l2_grad(out, direction, self.m, self.lam)

    def cost(self, params: Any) -> float:
        """``J(params)``, a float."""
        params = self._check_vector(params, "params")
        total = self._map_reduce(_partial_cost, [params])
        return self.net.cost_from_sum(total, params, self.m, self.lam)

    def grad(self, params: Any) -> np.ndarray:
        """``∇J(params)``, shape (n_params,)."""
        return self.cost_grad(params)[1]

    def cost_grad(self, params: Any) -> tuple[float, np.ndarray]:
        """``(J, ∇J)``: one forward and backward pass per shard, one vector back."""
        params = self._check_vector(params, "params")
        total_cost, total_grad = self._map_reduce(_partial_cost_grad, [params])
        cost = self.net.cost_from_sum(total_cost, params, self.m, self.lam)
        return cost, self._finish_vector(total_grad, params)

    def hessp(self, params: Any, v: Any) -> np.ndarray:
        """Exact Hessian-vector product ``H v``, shape (n_params,)."""
        params = self._check_vector(params, "params")
        v = self._check_vector(v, "v")
        total = self._map_reduce(_partial_hessp, [params, v])
        return self._finish_vector(total, v.astype(total.dtype, copy=False))

    def gnvp(self, params: Any, v: Any) -> np.ndarray:
        """Gauss-Newton product ``G v``, shape (n_params,)."""
        params = self._check_vector(params, "params")
        v = self._check_vector(v, "v")
        total = self._map_reduce(_partial_gnvp, [params, v])
        return self._finish_vector(total, v.astype(total.dtype, copy=False))

    def predict(self, params: Any) -> np.ndarray:
        """Predicted labels of the objective's own samples, in order, shape (m,)."""
        params = self._check_vector(params, "params")
        return np.concatenate(self._map_reduce(_shard_predict, [params], reduce=False))

    def accuracy(self, params: Any) -> float:
        """Accuracy on the objective's own samples."""
        params = self._check_vector(params, "params")
        return self._map_reduce(_shard_correct, [params]) / self.m

    def worker_threads(self) -> dict[str, int]:
        """dict: for each worker address, the threads an evaluation there uses.

        See the ``threads`` parameter; asks every worker of the cluster.
        """
        if self._closed:
            raise RuntimeError("this DaskObjective is closed")
        return self.client.run(_evaluation_threads, self.threads)

    # ------------------------------------------------------------ the rest
    @property
    def n_params(self) -> int:
        """int: length of the parameter vector."""
        return self.net.n_params

    @property
    def n_shards(self) -> int:
        """int: number of shards the data is split into."""
        return len(self._shards)

    @property
    def shard_rows(self) -> tuple[int, ...]:
        """tuple of int: rows in each shard, in data order."""
        return tuple(self._rows)

    @property
    def n_recoveries(self) -> int:
        """int: evaluations that lost a worker and were run again (after rebuilding shards)."""
        return self._recoveries

    @property
    def dtype(self) -> np.dtype:
        """numpy.dtype: the precision the shards are stored in on the workers."""
        return self._dtype

    def close(self) -> None:
        """Release the shards held by the workers (and the client, if the objective opened it)."""
        if self._closed:
            return
        self._closed = True
        shards = getattr(self, "_shards", None) or []
        if self.client.status == "running":
            for f in shards:
                if f is not None:
                    f.release()  # this objective's reference only; the scheduler frees the data
        self._shards = []
        if self._own_client:
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._closed else f"{self.n_shards} shards"
        m = getattr(self, "m", "?")
        return f"DaskObjective({self.net!r}, m={m}, lam={self.lam!r}, {state})"
