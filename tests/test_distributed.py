"""DaskObjective against the in-process Objective, on LocalClusters of this machine.

Every cluster here is worker processes on 127.0.0.1 (one thread each, no
dashboard), started by a fixture that closes it even when a test fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

import flatnn

try:
    import dask.array as da
    from distributed import Client, LocalCluster
    from distributed.core import Status
except ImportError:  # CI installs the extra and must run these tests
    if os.environ.get("CI"):
        raise
    pytest.skip("the distributed tests need: pip install flatnn[dask]", allow_module_level=True)

from flatnn.distributed import DaskObjective  # noqa: E402
from flatnn.training import SCIPY_METHODS, minimize  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60
WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1"}


def _load_bench():
    spec = importlib.util.spec_from_file_location(
        "bench_distributed", REPO / "experiments" / "bench_distributed.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _start(n_workers):
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        env=WORKER_ENV,
        silence_logs=40,
    )
    return cluster, Client(cluster, set_as_default=False, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def client():
    cluster, client = _start(2)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture
def fresh_cluster():
    """A cluster of two workers of its own, for tests that kill workers."""
    cluster, client = _start(2)
    try:
        yield cluster, client
    finally:
        client.close()
        try:
            cluster.close()
        except KeyError:
            # dask/distributed#5407: a worker killed by the test can be reported
            # removed twice, and LocalCluster's watcher raises KeyError from the
            # last step of close(), after the workers and the scheduler are shut.
            # The test's own assertions are done; finish the bookkeeping.
            for callback in cluster.periodic_callbacks.values():
                callback.stop()
            cluster.status = Status.closed


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


CASES = {
    "tanh-softmax-labels": (flatnn.Network((7, 6, 4), hidden="tanh"), "labels"),
    "sigmoid-sigmoid-targets": (flatnn.Network((7, 5, 3), output="sigmoid"), "targets"),
    "relu-squared": (flatnn.Network((7, 6, 5, 3), hidden="relu", loss="squared_error"), "targets"),
    "one-unit": (flatnn.Network((7, 4, 1)), "binary"),
}


def _data(net, kind, m, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, net.sizes[0])).astype(dtype)
    k = net.sizes[-1]
    if kind == "labels":
        y = rng.integers(0, k, m)
    elif kind == "binary":
        y = rng.integers(0, 2, m)
    else:
        y = rng.random((m, k)).astype(dtype)
    return X, y


def _assert_same(obj, ref, net, seed=1):
    rng = np.random.default_rng(seed)
    p = net.init(seed) + 0.1 * rng.normal(size=net.n_params)
    v = rng.normal(size=net.n_params)
    c, g = obj.cost_grad(p)
    c0, g0 = ref.cost_grad(p)
    assert abs(c - c0) / abs(c0) < 1e-12
    assert _rel(g, g0) < 1e-12
    assert abs(obj.cost(p) - c0) / abs(c0) < 1e-12
    assert _rel(obj.grad(p), g0) < 1e-12
    assert _rel(obj.hessp(p, v), ref.hessp(p, v)) < 1e-12
    assert _rel(obj.gnvp(p, v), ref.gnvp(p, v)) < 1e-12
    np.testing.assert_array_equal(obj.predict(p), ref.predict(p))
    assert obj.accuracy(p) == ref.accuracy(p)


# ------------------------------------------------------------ equality
@pytest.mark.parametrize("n_shards, lam", [(1, 0.7), (2, 0.7), (3, 0.0), (5, 0.7)])
@pytest.mark.parametrize("case", sorted(CASES))
def test_equals_in_process(client, case, n_shards, lam):
    net, kind = CASES[case]
    X, y = _data(net, kind, 203)  # 203 rows: the shards have unequal sizes
    ref = flatnn.Objective(net, X, y, lam)
    with DaskObjective(client, net, X, y, lam, n_shards=n_shards, timeout=TIMEOUT) as obj:
        assert obj.n_shards == n_shards and obj.n_recoveries == 0
        assert sum(obj.shard_rows) == obj.m == 203
        assert (obj.n_params, obj.lam, obj.net) == (net.n_params, lam, net)
        _assert_same(obj, ref, net)


# ------------------------------------------------------------ threads
def test_worker_threads_follow_the_workers_or_the_objective(client):
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 90)
    with DaskObjective(client, net, X, y, timeout=TIMEOUT) as obj:
        assert obj.threads is None
        threads = obj.worker_threads()
        assert sorted(threads) == sorted(client.nthreads())
        assert set(threads.values()) == {1}  # threads_per_worker=1
    with DaskObjective(client, net, X, y, timeout=TIMEOUT, threads=3) as obj:
        assert set(obj.worker_threads().values()) == {3}


def test_worker_environment_sets_the_threads():
    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        silence_logs=40,
        env={**WORKER_ENV, "FLATNN_NUM_THREADS": "2"},
    )
    client = Client(cluster, set_as_default=False, timeout=TIMEOUT)
    try:
        net, kind = CASES["tanh-softmax-labels"]
        X, y = _data(net, kind, 90)
        with DaskObjective(client, net, X, y, timeout=TIMEOUT) as obj:
            assert set(obj.worker_threads().values()) == {2}
    finally:
        client.close()
        cluster.close()


@pytest.mark.parametrize("case", ["tanh-softmax-labels", "relu-squared"])
def test_threaded_shards_equal_in_process(client, case):
    net, kind = CASES[case]
    # two shards, each large enough for three threads on its worker
    X, y = _data(net, kind, 6 * flatnn.threads.MIN_ROWS_PER_THREAD + 11)
    ref = flatnn.Objective(net, X, y, 0.7)
    with (
        flatnn.threads.using(1),
        DaskObjective(client, net, X, y, 0.7, n_shards=2, timeout=TIMEOUT, threads=3) as obj,
    ):
        _assert_same(obj, ref, net)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (2.5, TypeError), ("4", TypeError)])
def test_bad_thread_counts_fail_at_construction(client, bad, error):
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 30)
    with pytest.raises(error, match="threads must be an integer >= 1"):
        DaskObjective(client, net, X, y, threads=bad)


def test_lam_applied_once(client):
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 90)
    p = net.init(3)
    with (
        DaskObjective(client, net, X, y, 0.0, n_shards=3, timeout=TIMEOUT) as plain,
        DaskObjective(client, net, X, y, 2.0, n_shards=3, timeout=TIMEOUT) as reg,
    ):
        penalty = 2.0 / (2 * 90) * sum(float(np.sum(t[:, 1:] ** 2)) for t in net.unpack(p))
        assert reg.cost(p) == pytest.approx(plain.cost(p) + penalty, rel=1e-13)


def test_dask_arrays_are_sharded_by_their_chunks(client):
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 250)
    # Unequal row chunks, X split across columns too (rechunked into whole rows).
    Xd = da.from_array(X, chunks=((100, 60, 90), (4, 3)))
    yd = da.from_array(y, chunks=50)
    ref = flatnn.Objective(net, X, y, 0.3)
    with DaskObjective(client, net, Xd, yd, 0.3, timeout=TIMEOUT) as obj:
        assert obj.shard_rows == (100, 60, 90)
        _assert_same(obj, ref, net)
    with DaskObjective(client, net, Xd, y, 0.3, timeout=TIMEOUT) as obj:  # NumPy labels
        _assert_same(obj, ref, net)


def test_float32_stays_float32(client):
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 120, dtype=np.float32)
    p = net.init(0, dtype=np.float32)
    v = np.random.default_rng(0).normal(size=net.n_params).astype(np.float32)
    ref = flatnn.Objective(net, X, y, 0.5)
    with DaskObjective(client, net, X, y, 0.5, n_shards=2, timeout=TIMEOUT) as obj:
        assert obj.dtype == np.float32
        c, g = obj.cost_grad(p)
        # float32 coming back means the workers computed in float32.
        assert g.dtype == np.float32
        assert obj.hessp(p, v).dtype == np.float32
        assert obj.gnvp(p, v).dtype == np.float32
        c0, g0 = ref.cost_grad(p)
        assert c == pytest.approx(c0, rel=1e-5)
        assert _rel(g, g0) < 1e-5
        # float64 parameters on float32 shards compute in float64, as in process.
        assert obj.grad(p.astype(np.float64)).dtype == np.float64
    with DaskObjective(
        client, net, X.astype(np.float64), y, n_shards=2, dtype=np.float32, timeout=TIMEOUT
    ) as obj:
        assert obj.dtype == np.float32 and obj.grad(p).dtype == np.float32


def test_shards_are_c_contiguous_and_aligned_on_their_workers(client):
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 203)
    Xf = np.asfortranarray(X)  # arrives non-contiguous: the worker makes it its own

    def layouts(dask_worker):
        out = []
        for key in list(dask_worker.data):
            if str(key).startswith("flatnn-shard"):
                Xs, ys, _ = dask_worker.data[key]  # (X, y, sample weights or None)
                out.append(
                    (Xs.flags.c_contiguous, Xs.ctypes.data % 64, ys.ctypes.data % 64, Xs.dtype.name)
                )
        return out

    with DaskObjective(client, net, Xf, y, n_shards=4, timeout=TIMEOUT):
        found = [x for per_worker in client.run(layouts).values() for x in per_worker]
    assert sorted(found) == [(True, 0, 0, "float64")] * 4


# ------------------------------------------------------------ optimizers
@pytest.fixture(scope="module")
def problem():
    net = flatnn.Network((6, 5, 3), hidden="tanh")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(301, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return net, X, y, net.init(4)


@pytest.mark.parametrize("method", ["L-BFGS-B", "Newton-CG"])
def test_scipy_reaches_the_in_process_result(client, problem, method):
    net, X, y, p0 = problem
    ref = flatnn.Objective(net, X, y, 1e-2)
    # Newton-CG's inner CG amplifies 1e-16 differences over many iterations.
    options = {"maxiter": 25 if method == "L-BFGS-B" else 6}
    with DaskObjective(client, net, X, y, 1e-2, n_shards=3, timeout=TIMEOUT) as obj:
        hessp = {"hessp": obj.hessp} if method == "Newton-CG" else {}
        res = scipy.optimize.minimize(
            obj.cost_grad, p0, jac=True, method=method, options=options, **hessp
        )
    hessp = {"hessp": ref.hessp} if method == "Newton-CG" else {}
    res0 = scipy.optimize.minimize(
        ref.cost_grad, p0, jac=True, method=method, options=options, **hessp
    )
    assert res.nit == res0.nit >= 5
    assert res.fun == pytest.approx(res0.fun, rel=1e-9)
    np.testing.assert_allclose(res.x, res0.x, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_flatnn_minimize_every_full_batch_method(client, problem, method):
    net, X, y, p0 = problem
    ref = flatnn.Objective(net, X, y, 1e-2)
    # TNC ignores maxiter and differences gradients internally (a 1e-8 step
    # turns 1e-16 differences into 1e-8 ones): bounded by maxfun, compared loosely.
    options = {"maxfun": 40} if method == "TNC" else {"maxiter": 6}
    with DaskObjective(client, net, X, y, 1e-2, n_shards=2, timeout=TIMEOUT) as obj:
        res = minimize(obj, p0, method=method, options=options)
    res0 = minimize(ref, p0, method=method, options=options)
    assert len(res.history) > 0 and len(res0.history) > 0
    if method == "TNC":
        assert res.fun == pytest.approx(res0.fun, rel=1e-5)
        np.testing.assert_allclose(res.x, res0.x, rtol=1e-3, atol=1e-5)
        return
    assert len(res.history) == len(res0.history)
    assert (res.nfev, res.nhev) == (res0.nfev, res0.nhev)
    assert res.fun == pytest.approx(res0.fun, rel=1e-9)
    np.testing.assert_allclose(res.x, res0.x, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------ faults
def _kill_on_nth_partial(flag, n):
    """A worker plugin that kills its own process when the n-th partial starts.

    Defined in a function so that it travels to the workers by value. The flag
    file makes it fire once in the whole cluster, restarted workers included.
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    class KillOnce(WorkerPlugin):
        def __init__(self):
            self.count = 0

        def transition(self, key, start, finish, **kwargs):
            if finish != "executing" or not str(key).startswith("flatnn-partial"):
                return
            self.count += 1
            if self.count < n:
                return
            try:
                fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)  # the worker dies with a task of an evaluation running

    return KillOnce()


def test_worker_killed_during_an_evaluation(fresh_cluster, problem, tmp_path):
    cluster, client = fresh_cluster
    net, X, y, p0 = problem
    flag = tmp_path / "killed"
    client.register_plugin(_kill_on_nth_partial(str(flag), 6), name="kill-once")
    pids_before = set(client.run(os.getpid).values())
    ref = flatnn.Objective(net, X, y, 1e-2)
    with DaskObjective(client, net, X, y, 1e-2, n_shards=4, timeout=TIMEOUT) as obj:
        res = scipy.optimize.minimize(
            obj.cost_grad, p0, jac=True, method="L-BFGS-B", options={"maxiter": 25}
        )
        assert flag.exists(), "no worker was killed"
        assert obj.n_recoveries >= 1
        assert int(flag.read_text()) in pids_before
        client.wait_for_workers(2, timeout=TIMEOUT)  # the nanny restarted it
        assert int(flag.read_text()) not in set(client.run(os.getpid).values())
        assert _rel(obj.grad(res.x), ref.grad(res.x)) < 1e-12
    res0 = scipy.optimize.minimize(
        ref.cost_grad, p0, jac=True, method="L-BFGS-B", options={"maxiter": 25}
    )
    assert res.nit == res0.nit
    assert res.fun == pytest.approx(res0.fun, rel=1e-9)
    np.testing.assert_allclose(res.x, res0.x, rtol=1e-6, atol=1e-8)


def test_worker_killed_between_evaluations(fresh_cluster, problem):
    cluster, client = fresh_cluster
    net, X, y, p0 = problem
    ref = flatnn.Objective(net, X, y, 1e-2)
    killed = []
    iterations = []

    def callback(xk):
        iterations.append(xk)
        if len(iterations) == 3 and not killed:
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, 9)
            killed.append(pid)

    with DaskObjective(client, net, X, y, 1e-2, n_shards=2, timeout=TIMEOUT) as obj:
        res = scipy.optimize.minimize(
            obj.cost_grad,
            p0,
            jac=True,
            hessp=obj.hessp,
            method="Newton-CG",
            callback=callback,
            options={"maxiter": 10},
        )
        assert obj.n_recoveries >= 1
    res0 = scipy.optimize.minimize(
        ref.cost_grad, p0, jac=True, hessp=ref.hessp, method="Newton-CG", options={"maxiter": 10}
    )
    assert killed and len(iterations) > 3
    assert res.nit == res0.nit
    np.testing.assert_allclose(res.x, res0.x, rtol=1e-6, atol=1e-8)


def test_dask_array_shard_recomputed_from_its_graph(fresh_cluster, problem):
    cluster, client = fresh_cluster
    net, X, y, p0 = problem
    ref = flatnn.Objective(net, X, y, 0.0)
    with DaskObjective(
        client, net, da.from_array(X, chunks=100), da.from_array(y, chunks=100), timeout=TIMEOUT
    ) as obj:
        g_before = obj.grad(p0)
        pids = set(client.run(os.getpid).values())
        for pid in pids:
            os.kill(pid, 9)
        client.wait_for_workers(2, timeout=TIMEOUT)
        # Every shard died: Dask recomputes them from the array's graph, either
        # on its own or after the objective's retry (n_recoveries then counts it).
        g_after = obj.grad(p0)
        assert not pids & set(client.run(os.getpid).values())
    np.testing.assert_array_equal(g_after, g_before)
    assert _rel(g_after, ref.grad(p0)) < 1e-12


# ------------------------------------------------------------ traffic
def test_bytes_per_evaluation_do_not_grow_with_the_data(client):
    bench = _load_bench()
    net = flatnn.Network((20, 30, 10))
    p = net.init(0)
    per_eval = {}
    for m in (400, 40000):  # X of 64 kB, then of 6.4 MB
        X, y = _data(net, "labels", m)
        with DaskObjective(client, net, X, y, 1e-3, timeout=TIMEOUT) as obj:
            per_eval[m] = bench.bytes_per_evaluation(client, obj, p, n_evals=8)
    small, large = per_eval[400], per_eval[40000]
    assert large < 1.25 * small and small < 1.25 * large
    # A handful of flat vectors cross (out to the workers, partials summed,
    # one back), never the data.
    assert large < 12 * p.nbytes < X.nbytes / 10


# ------------------------------------------------------------ errors, lifetime
def test_scheduler_address_gets_a_client_of_its_own(client):
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 50)
    with DaskObjective(client.scheduler.address, net, X, y, 0.1, timeout=TIMEOUT) as obj:
        own = obj.client
        assert own is not client
        _assert_same(obj, flatnn.Objective(net, X, y, 0.1), net)
    assert own.status == "closed" and client.status == "running"


def test_unreachable_scheduler_fails_at_construction():
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 10)
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
        DaskObjective("tcp://127.0.0.1:9", net, X, y, timeout=2)


def test_closed_client_fails_at_construction():
    cluster, client = _start(1)
    client.close()
    cluster.close()
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 10)
    with pytest.raises(ConnectionError, match="not running"):
        DaskObjective(client, net, X, y, timeout=2)


def test_cluster_without_workers_fails_at_construction():
    cluster = LocalCluster(
        n_workers=0, processes=True, host="127.0.0.1", dashboard_address=":0", silence_logs=40
    )
    try:
        net, kind = CASES["tanh-softmax-labels"]
        X, y = _data(net, kind, 10)
        with pytest.raises(ConnectionError, match="has no worker after 1 s"):
            DaskObjective(cluster.scheduler_address, net, X, y, timeout=1)
    finally:
        cluster.close()


def test_data_that_does_not_fit_fails_at_construction(client):
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 30)
    with pytest.raises(ValueError, match="X has 6 features per row"):
        DaskObjective(client, net, X[:, :6], y, timeout=TIMEOUT)
    with pytest.raises(ValueError, match="y has 29 rows"):
        DaskObjective(client, net, X, y[:29], timeout=TIMEOUT)
    with pytest.raises(ValueError, match="label 4 is out of range"):
        DaskObjective(client, net, X, np.full(30, 4), timeout=TIMEOUT)
    with pytest.raises(ValueError, match="n_shards"):
        DaskObjective(client, net, X, y, n_shards=31, timeout=TIMEOUT)
    with pytest.raises(ValueError, match="X has 6 features per row"):
        DaskObjective(client, net, da.from_array(X[:, :6], chunks=10), y, timeout=TIMEOUT)
    bad = y.copy()
    bad[25] = 9  # in the last chunk: found by the worker that builds that shard
    with pytest.raises(ValueError, match="label 9 is out of range"):
        DaskObjective(
            client, net, da.from_array(X, chunks=10), da.from_array(bad, chunks=10), timeout=TIMEOUT
        )
    with pytest.raises(TypeError, match="net must be a flatnn.Network"):
        DaskObjective(client, "net", X, y)
    with pytest.raises(TypeError, match="client must be"):
        DaskObjective(object(), net, X, y)


def test_bad_vectors_are_rejected_on_the_driver(client):
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 30)
    with DaskObjective(client, net, X, y, timeout=TIMEOUT) as obj:
        with pytest.raises(ValueError, match=f"needs {net.n_params}"):
            obj.cost_grad(np.zeros(net.n_params - 1))
        p = net.init(0)
        p[3] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            obj.cost(p)
        with pytest.raises(ValueError, match="v has"):
            obj.hessp(net.init(0), np.zeros(2))


def test_close_releases_the_shards(client):
    net, kind = CASES["tanh-softmax-labels"]
    X, y = _data(net, kind, 30)

    def shard_keys(dask_scheduler):
        return [
            str(k)
            for k, ts in dask_scheduler.tasks.items()
            if str(k).startswith("flatnn-shard") and ts.state == "memory"
        ]

    obj = DaskObjective(client, net, X, y, n_shards=3, timeout=TIMEOUT)
    assert len(client.run_on_scheduler(shard_keys)) >= 3
    with obj:
        obj.cost(net.init(0))
    deadline = time.monotonic() + 10
    while client.run_on_scheduler(shard_keys) and time.monotonic() < deadline:
        time.sleep(0.05)  # the scheduler handles the release asynchronously
    assert client.run_on_scheduler(shard_keys) == []
    with pytest.raises(RuntimeError, match="closed"):
        obj.cost(net.init(0))
    obj.close()  # idempotent
    assert "closed" in repr(obj)


def test_flatnn_imports_without_dask():
    code = textwrap.dedent("""
        import sys
        sys.modules["dask"] = sys.modules["distributed"] = None   # not installed
        import numpy as np
        import flatnn, flatnn.distributed
        net = flatnn.Network((2, 2, 2))
        try:
            flatnn.distributed.DaskObjective("tcp://127.0.0.1:9", net, np.zeros((2, 2)), [0, 1])
        except ImportError as exc:
            assert "pip install flatnn[dask]" in str(exc), exc
            print("ok")
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert out.stdout.strip() == "ok", out.stderr


def test_bench_quick_mode(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments" / "bench_distributed.py"),
            "--quick",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr
    import json

    result = json.loads((tmp_path / "bench_distributed.json").read_text())
    settings = [r["setting"] for r in result["timings"]]
    assert settings[0] == "in process" and any("overhead" in s for s in settings)
    assert all(r["median_s"] > 0 for r in result["timings"])
    assert "| in process |" in (tmp_path / "bench_distributed.md").read_text()


def test_sample_weights_match_the_in_process_objective(client, problem):
    net, X, y, p0 = problem
    rng = np.random.default_rng(8)
    w = rng.uniform(0, 3, X.shape[0])
    w[:101] = 0.0  # the first shard's rows all weigh nothing
    v = rng.normal(size=net.n_params)
    ref = flatnn.Objective(net, X, y, 0.05, sample_weight=w)
    with DaskObjective(
        client, net, X, y, 0.05, n_shards=3, timeout=TIMEOUT, sample_weight=w
    ) as obj:
        assert obj.total_weight == pytest.approx(w.sum(), rel=1e-15)
        f, g = obj.cost_grad(p0)
        f_ref, g_ref = ref.cost_grad(p0)
        assert f == pytest.approx(f_ref, rel=1e-12)
        np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-14)
        assert obj.cost(p0) == pytest.approx(f_ref, rel=1e-12)
        np.testing.assert_allclose(obj.hessp(p0, v), ref.hessp(p0, v), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(obj.gnvp(p0, v), ref.gnvp(p0, v), rtol=1e-10, atol=1e-14)
        assert obj.accuracy(p0) == pytest.approx(ref.accuracy(p0), rel=1e-12)


def test_sample_weights_with_a_dask_array(client, problem):
    net, X, y, p0 = problem
    w = np.random.default_rng(9).integers(0, 3, X.shape[0]).astype(float)
    ref = flatnn.Objective(net, X, y, 0.1, sample_weight=w)
    Xd = da.from_array(X, chunks=(100, 6))
    with DaskObjective(
        client, net, Xd, y, 0.1, timeout=TIMEOUT, sample_weight=da.from_array(w, chunks=50)
    ) as obj:
        assert obj.cost(p0) == pytest.approx(ref.cost(p0), rel=1e-12)
    with pytest.raises(ValueError, match=">= 0"):
        DaskObjective(client, net, X, y, timeout=TIMEOUT, sample_weight=-w)


def test_sparse_x_is_sharded_as_it_is(client, problem):
    import scipy.sparse

    net, X, y, p0 = problem
    Xs = scipy.sparse.csr_matrix(np.where(np.abs(X) > 0.8, X, 0.0))
    ref = flatnn.Objective(net, Xs.toarray(), y, 0.05)
    with DaskObjective(client, net, Xs, y, 0.05, n_shards=3, timeout=TIMEOUT) as obj:
        f, g = obj.cost_grad(p0)
        f_ref, g_ref = ref.cost_grad(p0)
        assert f == pytest.approx(f_ref, rel=1e-12)
        np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-14)
        np.testing.assert_array_equal(obj.predict(p0), ref.predict(p0))
