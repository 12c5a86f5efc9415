"""Seconds per ``cost_grad`` on MNIST: in process vs a Dask cluster of 1 and 2 local workers.

For one network (784-30-10 sigmoid/softmax, float64, the 60000 training
images, ``lam = 1e-4``) this measures:

* ``in process``: :class:`flatnn.Objective` ``cost_grad``, with one BLAS
  thread and, in a process of its own, with one BLAS thread per core (what
  one process makes of this machine);
* ``dask, N workers``: :class:`flatnn.distributed.DaskObjective` ``cost_grad``
  on a ``LocalCluster`` of N worker processes (one thread each, data sharded
  one block per worker);
* ``overhead``: the same distributed call on a data set of one row per shard,
  i.e. what Dask adds per evaluation whatever the data size (scatter the flat
  vector, run one task per shard and the pairwise sums, fetch one vector);
* ``bytes per evaluation``: every byte written to a TCP connection by the
  client, the scheduler and the workers during the evaluations, counted by
  wrapping ``distributed.comm.tcp.TCP.write`` in each process, for the full
  data and for 1/100 of it.

Every timing is the median of ``--repeat`` calls after one warm-up call (min
recorded too). Every process runs with ``OPENBLAS_NUM_THREADS=1`` but the one
marked otherwise. On one
machine with two cores a cluster cannot be faster than one process: the point
is the size of the overhead, which a real cluster pays once per evaluation
while the per-shard work shrinks with the number of machines.

Usage::

    FLATNN_DATA=/work/shared/data flock /tmp/flatnn-heavy.lock \\
        python experiments/bench_distributed.py            # full run, writes results
    python experiments/bench_distributed.py --quick --out /tmp/b   # seconds, synthetic data
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # experiments/common.py
import common  # noqa: E402

REPO = common.REPO
RESULTS = REPO / "experiments" / "results"


# ------------------------------------------------------------ traffic counter
def _install_counter():
    """Wrap ``TCP.write`` of this process so it adds every byte it writes to a total."""
    from distributed.comm import tcp

    if getattr(tcp.TCP.write, "flatnn_counter", False):
        return
    original = tcp.TCP.write

    async def write(self, msg, serializers=None, on_error="message"):
        n = await original(self, msg, serializers=serializers, on_error=on_error)
        write.total += n
        return n

    write.total = 0
    write.flatnn_counter = True
    tcp.TCP.write = write


def _read_counter():
    from distributed.comm import tcp

    return getattr(tcp.TCP.write, "total", 0)


def install_traffic_counter(client):
    """Count the bytes written to TCP by this process, the scheduler and every worker.

    A measuring device for tests and benchmarks: it wraps a Dask internal.
    """
    import cloudpickle

    # Imported under any name (tests load this file by path), the helpers
    # travel to the workers by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    _install_counter()
    client.run_on_scheduler(_install_counter)
    client.run(_install_counter)


def traffic(client):
    """Bytes written so far by the driver, the scheduler and the workers (see above)."""
    total = _read_counter()
    if client.run_on_scheduler(os.getpid) != os.getpid():
        total += client.run_on_scheduler(_read_counter)
    return total + sum(client.run(_read_counter).values())


def bytes_per_evaluation(client, obj, params, n_evals=10):
    """Mean bytes crossing the network per ``obj.cost_grad(params)``."""
    install_traffic_counter(client)
    obj.cost_grad(params)  # connections opened, functions cached
    before = traffic(client)
    for _ in range(n_evals):
        obj.cost_grad(params)
    return (traffic(client) - before) / n_evals


# ------------------------------------------------------------ timing
def time_calls(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeat": repeat}


def start_cluster(n_workers):
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        env={"OPENBLAS_NUM_THREADS": "1"},
    )
    return cluster, Client(cluster, set_as_default=False)


def load_data(quick):
    if quick:
        rng = np.random.default_rng(0)
        X = rng.random((3000, 784))
        return X, rng.integers(0, 10, X.shape[0]), "synthetic 3000 x 784"
    from flatnn.datasets import load_mnist

    splits = load_mnist(common.mnist_path(), download=False, validation=0)
    return splits.X_train, splits.y_train, "MNIST train, 60000 x 784"


def time_in_process(quick, repeat):
    """The in-process ``cost_grad`` timing of :func:`run`, alone (for a subprocess)."""
    import flatnn

    X, y, _ = load_data(quick)
    net = flatnn.Network((784, 30, 10))
    params = net.init(0)
    local = flatnn.Objective(net, X, y, 1e-4)
    return time_calls(lambda: local.cost_grad(params), repeat)


def time_in_process_threads(quick, repeat, threads):
    """:func:`time_in_process` in a fresh process whose OpenBLAS has ``threads`` threads."""
    out = subprocess.run(
        [sys.executable, __file__, "--in-process-only", "--repeat", str(repeat)]
        + (["--quick"] if quick else []),
        env={**os.environ, "OPENBLAS_NUM_THREADS": str(threads)},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout)


def run(quick, repeat, workers):
    import flatnn
    from flatnn.distributed import DaskObjective

    X, y, data_name = load_data(quick)
    lam = 1e-4
    net = flatnn.Network((784, 30, 10))
    params = net.init(0)
    rows = []
    local = flatnn.Objective(net, X, y, lam)
    t_local = time_calls(lambda: local.cost_grad(params), repeat)
    rows.append({"setting": "in process", "m": X.shape[0], **t_local})
    cores = os.cpu_count() or 1
    if cores > 1:
        rows.append(
            {
                "setting": f"in process, {cores} BLAS threads",
                "m": X.shape[0],
                **time_in_process_threads(quick, repeat, cores),
            }
        )
    traffic_rows = []
    for n in workers:
        cluster, client = start_cluster(n)
        try:
            with DaskObjective(client, net, X, y, lam, timeout=120) as obj:
                c, g = obj.cost_grad(params)
                c0, g0 = local.cost_grad(params)
                rel = float(np.linalg.norm(g - g0) / np.linalg.norm(g0))
                t = time_calls(lambda: obj.cost_grad(params), repeat)
                rows.append(
                    {
                        "setting": f"dask, {n} worker{'s' * (n > 1)}",
                        "m": X.shape[0],
                        **t,
                        "grad_rel_diff": rel,
                    }
                )
                traffic_rows.append(
                    {
                        "workers": n,
                        "m": X.shape[0],
                        "bytes": bytes_per_evaluation(client, obj, params),
                    }
                )
            small = X.shape[0] // 100
            with DaskObjective(client, net, X[:small], y[:small], lam, timeout=120) as obj:
                traffic_rows.append(
                    {"workers": n, "m": small, "bytes": bytes_per_evaluation(client, obj, params)}
                )
            with DaskObjective(client, net, X[:n], y[:n], lam, timeout=120) as obj:
                t = time_calls(lambda: obj.cost_grad(params), repeat)
                rows.append(
                    {
                        "setting": f"dask overhead, {n} worker{'s' * (n > 1)} (1 row per shard)",
                        "m": n,
                        **t,
                    }
                )
        finally:
            client.close()
            cluster.close()
    return {
        "data": data_name,
        "network": repr(net),
        "n_params": net.n_params,
        "lam": lam,
        "dtype": "float64",
        "timings": rows,
        "traffic": traffic_rows,
        "param_bytes": int(params.nbytes),
    }


def to_markdown(result, command):
    lines = [
        f"# Distributed cost_grad ({result['date']})",
        "",
        f"`{command}`",
        "",
        f"{result['data']}, {result['network']} ({result['n_params']} params, "
        f"{result['param_bytes']} bytes), lam={result['lam']}, {result['dtype']}; "
        f"{result['machine']}; OPENBLAS_NUM_THREADS=1 in every process but the one marked; "
        f"dask {result['versions']['dask']}, distributed "
        f"{result['versions']['distributed']}.",
        "",
        "| setting | m | median s per cost_grad | min s |",
        "|---|---:|---:|---:|",
    ]
    for r in result["timings"]:
        lines.append(f"| {r['setting']} | {r['m']} | {r['median_s']:.4f} | {r['min_s']:.4f} |")
    lines += [
        "",
        "| workers | m | bytes sent per evaluation (all processes) | in units of the flat vector |",
        "|---:|---:|---:|---:|",
    ]
    for r in result["traffic"]:
        lines.append(
            f"| {r['workers']} | {r['m']} | {r['bytes']:.0f} | "
            f"{r['bytes'] / result['param_bytes']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="synthetic 3000 rows, 3 repeats: a smoke test of a few seconds",
    )
    parser.add_argument("--repeat", type=int, default=None, help="timed calls per setting")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=None,
        help="cluster sizes to run (default 1 2; --quick: 2)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    parser.add_argument("--in-process-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 20)
    if args.in_process_only:
        print(json.dumps(time_in_process(args.quick, repeat)))
        return
    workers = args.workers or ([2] if args.quick else [1, 2])
    import dask
    import distributed

    result = run(args.quick, repeat, workers)
    result.update(
        {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{common.cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, NumPy {np.__version__}",
            "versions": {"dask": dask.__version__, "distributed": distributed.__version__},
            "quick": args.quick,
        }
    )
    command = "python experiments/bench_distributed.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_distributed.json").write_text(json.dumps(result, indent=2) + "\n")
    md = to_markdown(result, command.strip())
    (args.out / "bench_distributed.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
