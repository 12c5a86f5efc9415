"""A data-parallel objective on Dask distributed: the data stays, the flat vector travels.

:class:`DaskObjective` splits the samples into shards once, when it is built,
and keeps every shard in the memory of one Dask worker for its whole life.
An evaluation then sends only the flat vector ``params`` (and ``v`` for the
curvature products) out, and each shard answers with one partial sum::

    J(params) = (1/W) Σ_s Σ_{i∈s} w_i loss_i  +  lam/(2W) Σ_l ‖theta_l[:, 1:]‖²
    ∇J        = (1/W) Σ_s ∇ Σ_{i∈s} w_i loss_i  +  (lam/W) theta_l[:, 1:]

with ``W = Σ w_i`` (``m`` when no sample weights are given). The partials
(computed on the workers by :mod:`flatnn.backends.dask_shards`) are added
pairwise on the workers (a fixed tree, so the result does not depend on where
the shards live) and only the final sum comes back; the driver divides by ``W``
and adds the L2 term once, through :meth:`Network.cost_from_sum` and
:meth:`Network.add_l2_grad` (the formula of :mod:`flatnn.core.evaluation`,
its one home). This is how Spark
MLlib trains its multilayer perceptron (a gradient summed over partitions fed
to L-BFGS), on an existing engine: Dask distributed, the optional extra
``flatnn[dask]``.

Dask is imported only when a :class:`DaskObjective` is built, so
``import flatnn.distributed`` works without it.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np

from flatnn.backends import dask_cluster as cluster
from flatnn.backends import dask_shards as shards
from flatnn.backends.dask_cluster import INSTALL_HINT
from flatnn.backends.dask_shards import ALIGNMENT
from flatnn.base import checks
from flatnn.base import threads as flatnn_threads
from flatnn.core import inputs
from flatnn.core.network import Network

__all__ = ["DaskObjective", "ALIGNMENT", "INSTALL_HINT"]


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
    X : ndarray, scipy.sparse matrix or dask.array.Array, shape (m, net.sizes[0])
        NumPy arrays and sparse matrices are split into ``n_shards`` row blocks
        and scattered, once (a sparse shard stays sparse, as CSR); a dask
        array's row chunks are the shards, built where the chunks are.
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
        Seconds (a finite number > 0) to wait for the scheduler and its
        workers at construction (default 30; every connection to an address
        is bounded by it) and for each evaluation (default: no limit).
    retries : int, default 3
        How often an evaluation is run again after losing a worker (or timing
        out); lost shards are first rebuilt, re-scattered from the driver's
        NumPy arrays or recomputed by Dask from a dask array's graph. The
        result does not depend on where the shards live.
    sample_weight : ndarray or dask.array.Array, shape (m,), optional
        Per-sample weights, as in :meth:`Network.cost`: each shard keeps its
        rows' weights and returns weighted sums; the driver divides by ``Σ w``
        (:attr:`total_weight`). None for ``w = 1``.
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
        When the scheduler cannot be reached or has no worker within
        ``timeout``, or the address is not a Dask scheduler's (the message
        names the address).
    ValueError, TypeError
        When the data does not fit ``net`` (checked here, once), ``threads``
        is not an integer >= 1, or ``timeout`` is not a finite number > 0.
    RuntimeError
        From every evaluation once the objective, or the client it uses, is
        closed (keep the client open until the objective is closed).

    Notes
    -----
    The driver keeps a reference to NumPy ``X`` and ``y`` (never a copy) so
    that a shard lost with its worker can be sent again. Use the objective as
    a context manager, or call :meth:`close`, to free the workers' memory.
    """

    def __init__(
        self,
        client: Any,
        net: Network,
        X: Any,
        y: Any,
        lam: float = 0.0,
        *,
        n_shards: int | None = None,
        dtype: Any = None,
        timeout: float | None = None,
        retries: int = 3,
        threads: int | None = None,
        sample_weight: Any = None,
    ) -> None:
        dask, distributed = cluster.import_dask()
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
        self.timeout = (
            None if timeout is None else checks.real(timeout, "timeout", 0, low_open=True)
        )
        self._closed = False
        self._own_client = False
        self._recoveries = 0
        self.client, self._own_client = cluster.connect(
            distributed, client, 30 if self.timeout is None else self.timeout
        )
        self._address = getattr(self.client.scheduler, "address", None)
        try:
            self._build(X, y, n_shards, sample_weight)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ building
    def _workers(self):
        return sorted(self.client.nthreads())

    def _build(self, X, y, n_shards, sample_weight):
        net = self.net
        if cluster.is_dask_array(X):
            self._build_from_dask(X, y, sample_weight)
            return
        if cluster.is_dask_array(y):
            raise TypeError(
                "X is a NumPy array and y a dask array; pass both as NumPy "
                "arrays or X as a dask array"
            )
        if not inputs.is_sparse(X):
            X = np.asarray(X)
        y = np.asarray(y)
        # Shapes and every label are checked here once, before anything is sent.
        net.check_data(X, y)
        m = X.shape[0]
        w, self.total_weight = inputs.check_weights(sample_weight, m, np.float64)
        workers = self._workers()
        if n_shards is None:
            n_shards = len(workers)
        n_shards = checks.integer(n_shards, "n_shards", 1, m)
        bounds = np.linspace(0, m, n_shards + 1).round().astype(int)
        self._sources = [
            (X[a:b], y[a:b], None if w is None else w[a:b]) for a, b in zip(bounds[:-1], bounds[1:])
        ]
        self._rows = [int(b - a) for a, b in zip(bounds[:-1], bounds[1:])]
        self._delayed = None
        self._shards = [None] * len(self._sources)
        for i in range(len(self._sources)):
            self._place(i, workers[i % len(workers)])
        self._wait_shards(X.dtype)

    def _build_from_dask(self, X, y, sample_weight):
        dask, _ = self._dask, self._distributed
        da = dask.array
        net = self.net
        checks.features(X.shape, net)
        if any(math.isnan(c) for c in X.chunks[0]):
            raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
        if not cluster.is_dask_array(y):
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
        ws = self._dask_weights(sample_weight, X.chunks[0])
        self._sources = None
        self._rows = [int(c) for c in X.chunks[0]]
        self._delayed = [
            dask.delayed(shards.own_shard)(
                net, xb, yb, self._dtype_request, wb, dask_key_name=cluster.shard_key(i)
            )
            for i, (xb, yb, wb) in enumerate(zip(xs, ys, ws))
        ]
        self._shards = self.client.compute(self._delayed)
        self._wait_shards(X.dtype)

    def _dask_weights(self, sample_weight, chunks):
        """Per-chunk delayed weights (None each when unweighted); sets ``total_weight``."""
        m = int(sum(chunks))
        if sample_weight is None:
            self.total_weight = m
            return [None] * len(chunks)
        da = self._dask.array
        if not cluster.is_dask_array(sample_weight):
            w, _ = inputs.check_weights(sample_weight, m, np.float64)
            sample_weight = da.from_array(w, chunks=(chunks,))
        elif sample_weight.shape != (m,):
            raise ValueError(f"sample_weight must have shape ({m},), got {sample_weight.shape}")
        w = sample_weight.rechunk((chunks,)).astype(np.float64)
        _, self.total_weight = inputs.check_weights(w.compute(), m, np.float64)
        return list(w.to_delayed().ravel())

    def _place(self, i, worker):
        """Send NumPy shard ``i`` to ``worker`` and make it the worker's own, aligned."""
        Xs, ys, ws = self._sources[i]
        client = self.client
        parts = [Xs, ys] if ws is None else [Xs, ys, ws]
        raw = client.scatter(parts, workers=[worker], hash=False) + [None]
        self._shards[i] = client.submit(
            shards.own_shard,
            self.net,
            raw[0],
            raw[1],
            self._dtype_request,
            raw[2],
            workers=[worker],
            allow_other_workers=True,
            pure=False,
            key=cluster.shard_key(i),
        )
        # The raw scattered buffers are dropped once the aligned copy exists.

    def _wait_shards(self, X_dtype):
        """Wait until every shard is built; raise a shard's error about the data."""
        rows = self._shard_rows()
        if rows != self._rows:
            raise ValueError(f"the shards hold {rows} rows; the data's row blocks are {self._rows}")
        self._locate()
        self.m = int(sum(self._rows))
        self._dtype = shards.shard_dtype(X_dtype, self._dtype_request)

    def _shard_rows(self):
        """Wait for every shard; return their row counts (a shard's error is raised)."""
        timeout = 30 if self.timeout is None else self.timeout
        # One tiny task per shard, run where the shard lives: only its shape comes back.
        infos = [self.client.submit(shards.shard_rows, f, pure=False) for f in self._shards]
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
    def _check_open(self):
        """RuntimeError if the objective, or the client it uses, is closed."""
        if self._closed:
            raise RuntimeError("this DaskObjective is closed")
        cluster.check_running(self.client, self._address)

    def _check_vector(self, a, name):
        self._check_open()
        return checks.finite(checks.flat_vector(a, self.n_params, name, owner=self.net), name)

    def _map_reduce(self, fn, vectors, reduce=True):
        """Run ``fn(net, *vectors, shard)`` on every shard; sum the results as a tree."""
        errors = cluster.lost_worker_errors(self._distributed)
        last = None
        for attempt in range(self.retries + 1):
            try:
                if attempt:
                    self._repair()
                return self._map_reduce_once(fn, vectors, reduce)
            except errors as exc:
                cluster.check_running(self.client, self._address)  # closed: no retry
                last = exc
                self._recoveries += 1
            except AttributeError:
                # A client closed meanwhile (by another thread) has no scheduler left.
                cluster.check_running(self.client, self._address)
                raise
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
                shards.with_threads,
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
                    shards.add,
                    parts[j],
                    parts[j + 1],
                    pure=False,
                    key=f"flatnn-sum-{tag}-{level}-{j}",
                )
                for j in range(0, len(parts) - 1, 2)
            ]
            if len(parts) % 2:
                pairs.append(parts[-1])
            parts = pairs
            level += 1
        return parts[0].result(timeout=self.timeout)

    def _finish_vector(self, total, direction):
        out = total / self.total_weight  # a fresh array, in the work dtype
        return self.net.add_l2_grad(out, direction, self.total_weight, self.lam)

    def cost(self, params: Any) -> float:
        """``J(params)``, a float."""
        params = self._check_vector(params, "params")
        total = self._map_reduce(shards.partial_cost, [params])
        return self.net.cost_from_sum(total, params, self.total_weight, self.lam)

    def grad(self, params: Any) -> np.ndarray:
        """``∇J(params)``, shape (n_params,)."""
        return self.cost_grad(params)[1]

    def cost_grad(self, params: Any) -> tuple[float, np.ndarray]:
        """``(J, ∇J)``: one forward and backward pass per shard, one vector back."""
        params = self._check_vector(params, "params")
        total_cost, total_grad = self._map_reduce(shards.partial_cost_grad, [params])
        cost = self.net.cost_from_sum(total_cost, params, self.total_weight, self.lam)
        return cost, self._finish_vector(total_grad, params)

    def hessp(self, params: Any, v: Any) -> np.ndarray:
        """Exact Hessian-vector product ``H v``, shape (n_params,)."""
        params = self._check_vector(params, "params")
        v = self._check_vector(v, "v")
        total = self._map_reduce(shards.partial_hessp, [params, v])
        return self._finish_vector(total, v.astype(total.dtype, copy=False))

    def gnvp(self, params: Any, v: Any) -> np.ndarray:
        """Gauss-Newton product ``G v``, shape (n_params,)."""
        params = self._check_vector(params, "params")
        v = self._check_vector(v, "v")
        total = self._map_reduce(shards.partial_gnvp, [params, v])
        return self._finish_vector(total, v.astype(total.dtype, copy=False))

    def predict(self, params: Any) -> np.ndarray:
        """Predicted labels of the objective's own samples, in order, shape (m,)."""
        params = self._check_vector(params, "params")
        return np.concatenate(self._map_reduce(shards.shard_predict, [params], reduce=False))

    def accuracy(self, params: Any) -> float:
        """Accuracy on the objective's own samples."""
        params = self._check_vector(params, "params")
        return self._map_reduce(shards.shard_correct, [params]) / self.total_weight

    def worker_threads(self) -> dict[str, int]:
        """dict: for each worker address, the threads an evaluation there uses.

        See the ``threads`` parameter; asks every worker of the cluster.
        """
        self._check_open()
        return self.client.run(shards.evaluation_threads, self.threads)

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
