"""How many threads an evaluation uses, and the pool that runs them.

A full-batch evaluation (``cost``, ``grad``, ``cost_grad``, ``hessp``, ``gnvp``,
``forward``, ``predict``, ``accuracy``) splits the rows of ``X`` into one contiguous block per
thread. Each thread runs the whole pass, forward and backward, on its block
with a single-threaded BLAS, into a gradient of its own; the partial costs and
gradients are then added in block order::

    J = Σ_t J_t        ∇J = ((∇J_0 + ∇J_1) + ∇J_2) + ...

The blocks depend only on ``m`` and the thread count, and the sum has a fixed
order, so a result is bit-identical from run to run for a given thread count;
between thread counts it differs only by the rounding of that sum (a few 1e-15
relative in float64 in the tests). NumPy and BLAS release the GIL in their
kernels, so the threads run in parallel, elementwise passes included, which a
threaded BLAS alone would leave on one core. The calling thread runs the first
block itself; the pool's threads are named ``flatnn_0``, ``flatnn_1``, ...

Small batches stay on the calling thread, with BLAS as the process configured
it: a call uses ``min(n, m // MIN_ROWS_PER_THREAD)`` threads (see
:func:`threads_for`), where ``n`` is the setting, in order of precedence:

1. :func:`using` (this thread, for the duration of a ``with`` block);
2. :func:`set_num_threads` (the process);
3. the environment variable ``FLATNN_NUM_THREADS``;
4. the number of cores this process may run on (``os.sched_getaffinity``).

While threads run, BLAS is held to one thread per caller (through
``threadpoolctl``, the documented way to change a loaded BLAS's thread count)
and restored when the last threaded evaluation of the process ends.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from flatnn.base import checks

__all__ = [
    "ENV_VAR",
    "MIN_ROWS_PER_THREAD",
    "check_num_threads",
    "available_cores",
    "set_num_threads",
    "get_num_threads",
    "using",
    "threads_for",
    "row_blocks",
    "run_blocks",
]

T = TypeVar("T")

ENV_VAR = "FLATNN_NUM_THREADS"

MIN_ROWS_PER_THREAD = 2048
"""A block gets at least this many rows; fewer rows run on the calling thread.

Handing a block to another thread costs about 50 µs here (wake-up, BLAS
thread limit, the extra gradient and its sum), and a one-block pass with
BLAS's own threads already uses both cores for its products. Measured on 2
cores, steady state (``experiments/bench_threshold.py``, results in
``experiments/results/bench_threshold.txt``): two blocks break even with one
at about 2048 rows for 784-30-10, 1024-2048 for 784-100-10 and 512-1024 for
784-256-128-64-10, and are 13-25 % faster from 4096 rows on. 2048 rows per
thread (4096 for two) is never slower than one block there.
"""

_lock = threading.Lock()
_setting = None  # set_num_threads(n); None: environment or cores
_local = threading.local()  # using(n)
_pool = None
_pool_size = 0
_blas = None  # threadpoolctl controller of the loaded BLAS libraries
_blas_users = 0  # threaded evaluations running now
_blas_limiter = None  # what restores BLAS's thread count when the last one ends


def check_num_threads(n: Any, source: str = "the number of threads") -> int:
    """Return ``n`` as an int if it is a valid thread count (an integer >= 1).

    Raises
    ------
    TypeError
        When ``n`` is not an integer (bools and floats included); the message
        names ``source``.
    ValueError
        When ``n < 1``.
    """
    return checks.integer(n, source, 1)


def available_cores() -> int:
    """int: the number of cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _from_env():
    raw = os.environ.get(ENV_VAR)
    if raw is None or raw.strip() == "":
        return None
    try:
        n = int(raw.strip())
    except ValueError:
        raise ValueError(
            f"the environment variable {ENV_VAR} must be an integer >= 1, got {raw!r}"
        ) from None
    if n < 1:
        raise ValueError(f"the environment variable {ENV_VAR} must be an integer >= 1, got {raw!r}")
    return n


def set_num_threads(n: int | None) -> None:
    """Set the number of threads flatnn's evaluations may use, for the whole process.

    Parameters
    ----------
    n : int or None
        ``n >= 1`` threads; ``None`` returns to the default (``FLATNN_NUM_THREADS``,
        else the cores this process may run on).

    Raises
    ------
    TypeError
        When ``n`` is not an integer (a bool or a float is refused).
    ValueError
        When ``n < 1``.
    """
    global _setting
    _setting = None if n is None else check_num_threads(n)


def get_num_threads() -> int:
    """int: the number of threads an evaluation on a large batch uses now.

    The first of: :func:`using` on this thread, :func:`set_num_threads`, the
    environment variable ``FLATNN_NUM_THREADS``, :func:`available_cores`.

    Raises
    ------
    ValueError
        When ``FLATNN_NUM_THREADS`` is set to something that is not an integer >= 1.
    """
    n = getattr(_local, "n", None)
    if n is not None:
        return n
    if _setting is not None:
        return _setting
    n = _from_env()
    return available_cores() if n is None else n


@contextlib.contextmanager
def using(n: int | None) -> Iterator[None]:
    """Use ``n`` threads for the evaluations this thread makes inside the block.

    ``with flatnn.threads.using(4): net.cost_grad(...)``. Other threads are not
    affected; ``n=None`` changes nothing. The Dask workers and the command line
    use this, so that their setting never leaks into the rest of the process.

    Raises
    ------
    TypeError, ValueError
        As :func:`set_num_threads`.
    """
    if n is not None:
        n = check_num_threads(n)
    previous = getattr(_local, "n", None)
    if n is not None:
        _local.n = n
    try:
        yield
    finally:
        _local.n = previous


def threads_for(m: int) -> int:
    """int: the number of threads an evaluation on ``m`` rows uses now.

    ``min(get_num_threads(), m // MIN_ROWS_PER_THREAD)``, at least 1: a
    mini-batch runs on the calling thread alone (without even looking the
    setting up, which keeps its overhead at a function call).
    """
    if m < 2 * MIN_ROWS_PER_THREAD:
        return 1
    return max(1, min(get_num_threads(), m // MIN_ROWS_PER_THREAD))


def row_blocks(m: int, n_blocks: int) -> list[tuple[int, int]]:
    """The ``(start, stop)`` rows of ``n_blocks`` contiguous, near-equal blocks of ``m`` rows."""
    bounds = [(m * i) // n_blocks for i in range(n_blocks + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _get_pool(n_workers):
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < n_workers:
            # The old pool is not shut down: a call running now may still submit to
            # it; its threads exit once the last caller drops it.
            pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=n_workers, thread_name_prefix="flatnn"
            )
            # Start every thread now. ThreadPoolExecutor starts one lazily only when
            # its count of idle threads says none is free, and that count grows with
            # every finished task: after a few calls a pool can hold one thread that
            # then runs two blocks one after the other. n tasks that wait for each
            # other can only run on n threads.
            barrier = threading.Barrier(n_workers)
            concurrent.futures.wait([pool.submit(barrier.wait) for _ in range(n_workers)])
            _pool, _pool_size = pool, n_workers
        return _pool


def _forget_pool_after_fork():
    # The pool's threads do not exist in a forked child; it makes its own.
    global _pool, _pool_size, _lock, _blas_users, _blas_limiter
    _pool, _pool_size = None, 0
    _lock = threading.Lock()
    _blas_users, _blas_limiter = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _blas_controller():
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold BLAS to one thread, process-wide, while any holder is inside this block.

    Threaded evaluations hold it while their blocks run (each block one BLAS
    thread), and so do dot products large enough for OpenBLAS to thread but too
    cheap to gain from it (:func:`flatnn.core.evaluation.l2_norms`). Holding and
    releasing costs about 9 µs.
    """
    global _blas_users, _blas_limiter
    with _lock:
        if _blas_users == 0:
            _blas_limiter = _blas_controller().limit(limits=1)
        _blas_users += 1
    try:
        yield
    finally:
        with _lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def run_blocks(fn: Callable[[int, int, int], T], m: int) -> list[T]:
    """Call ``fn(start, stop, i)`` on the row blocks of ``m`` rows, in parallel.

    Block 0 runs on the calling thread, the others on the pool, under the
    caller's NumPy error state (``np.errstate``). With a single block (small
    ``m``, or one thread) ``fn(0, m, 0)`` is called directly and BLAS is left
    alone.

    Returns
    -------
    list
        ``fn``'s results in block order. The first exception, in block order,
        is raised once every block has finished.
    """
    n = threads_for(m)
    if n == 1:
        return [fn(0, m, 0)]
    blocks = row_blocks(m, n)
    pool = _get_pool(n - 1)
    errors = np.geterr()

    def pooled(start, stop, i):
        with np.errstate(**errors):
            return fn(start, stop, i)

    with one_blas_thread():
        futures = [pool.submit(pooled, a, b, i) for i, (a, b) in enumerate(blocks) if i]
        try:
            first = fn(blocks[0][0], blocks[0][1], 0)
        finally:
            # every block finishes before its buffers are touched again
            concurrent.futures.wait(futures)
    return [first, *(f.result() for f in futures)]
