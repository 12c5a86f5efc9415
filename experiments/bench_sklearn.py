"""flatnn's ``MLPClassifier`` against scikit-learn's on MNIST, with the same hyperparameters.

Both estimators get the same 50000 training images (``flatnn.datasets.load_mnist``,
the last 10000 of the official training set held out and unused), the same
784-100-10 relu network, scikit-learn's defaults (``alpha=1e-4``, ``batch_size=
"auto"`` = 200, ``learning_rate_init=1e-3``, ...) and the same ``random_state``,
which gives both the same initial weights. Each row fits with one solver in one
dtype (the images passed as float64 or float32: scikit-learn keeps float32 input
in float32 too), ``--repeat`` times with seeds 0, 1, ..., the two libraries
alternating; the table reports the median fit time (``fit`` only, data already in
memory) and the median test accuracy on the 10000 test images.

Solvers: ``adam`` (10 epochs) and ``lbfgs`` (50 iterations), in both libraries;
``rmsprop`` (10 epochs), which scikit-learn does not have.

OpenBLAS reads ``OPENBLAS_CORETYPE`` and the thread count once, when NumPy loads
it: ``--coretype`` (default ``auto``) and ``--threads`` (default 1) are applied
by re-executing this script with those variables set. ``--threads`` is given to
both libraries: scikit-learn's OpenBLAS and flatnn (``FLATNN_NUM_THREADS``: row
blocks of a full-batch pass on that many threads, see :mod:`flatnn.threads`).

Usage::

    FLATNN_DATA=/work/shared/data flock /tmp/flatnn-cpu.lock \\
        python experiments/bench_sklearn.py --solvers adam,rmsprop   # merges into results
    FLATNN_DATA=/work/shared/data flock /tmp/flatnn-cpu.lock \\
        python experiments/bench_sklearn.py --solvers lbfgs
    python experiments/bench_sklearn.py --quick --out /tmp/b        # seconds, smoke test
    FLATNN_DATA=/work/shared/data flock /tmp/flatnn-cpu.lock \\
        python experiments/bench_sklearn.py --solvers lbfgs --sparse     # + sparse rows

``--sparse`` adds rows on a text-like sparse problem (CSR, 20 stored entries per
row, rows scaled to unit norm as tf-idf rows are, 5 classes given by a random
linear teacher): each of ``--sparse-solvers`` (default ``lbfgs`` for 50
iterations and ``adam`` for 10 epochs) on the same CSR matrix in both libraries,
stored under ``sparse_rows``. Before its timed fits a sparse row fits each library
once, untimed, in full: the first full fit in a process pays 0.3-0.8 s more (lazy
imports, and L-BFGS-B's update of its 200 MB of work arrays on 1M parameters runs
slower the first time), which would otherwise fall on whichever library the first
seed runs first. A one-iteration warm-up was not enough: after it, the first timed
``lbfgs`` fit still spent 0.4-0.5 s more in SciPy's update, whichever library ran it.

A full run merges its rows into ``experiments/results/bench_sklearn.json`` (rows
of other solvers are kept) and rewrites ``bench_sklearn.md`` from all rows.
``--quick`` (2000 images, a 784-20-10 network, a few epochs, one repetition)
writes only where ``--out`` says.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # experiments/common.py
import common  # noqa: E402
import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "experiments" / "results"
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "FLATNN_NUM_THREADS")

SOLVERS = {  # solver -> (parameters beyond scikit-learn's defaults, both libraries?)
    "adam": ({"solver": "adam", "max_iter": 10}, True),
    "lbfgs": ({"solver": "lbfgs", "max_iter": 50}, True),
    "rmsprop": ({"solver": "rmsprop", "max_iter": 10}, False),
}
QUICK_ITERS = {"adam": 3, "lbfgs": 10, "rmsprop": 3}
DTYPES = ("float64", "float32")


def reexec_if_needed(args, argv, script=__file__):
    """Re-run ``script`` with the BLAS variables set (OpenBLAS reads them only when loaded)."""
    env = {v: str(args.threads) for v in THREAD_VARS}
    env["OPENBLAS_CORETYPE"] = None if args.coretype == "auto" else args.coretype
    if all(os.environ.get(k) == v for k, v in env.items()):
        return
    new = dict(os.environ)
    for k, v in env.items():
        if v is None:
            new.pop(k, None)
        else:
            new[k] = v
    os.execve(sys.executable, [sys.executable, os.path.abspath(script), *argv], new)


def machine():
    """CPU model, versions and the BLAS kernels in use."""
    import scipy
    import sklearn

    cpu = common.cpu_model()
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "auto"),
        "threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0")) or None,
    }
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def host():
    """The machine a row ran on (without the thread count, which is the row's own) and when."""
    info = {k: v for k, v in machine().items() if k != "threads"}
    return dict(info, date=datetime.datetime.now().isoformat(timespec="seconds"))


def load(dtype, quick):
    from flatnn.datasets import load_mnist

    d = load_mnist(dtype=np.dtype(dtype))
    if quick:
        return d.X_train[:2000], d.y_train[:2000], d.X_test[:1000], d.y_test[:1000]
    return d.X_train, d.y_train, d.X_test, d.y_test


def fit_once(Estimator, params, seed, data):
    X, y, X_test, y_test = data
    est = Estimator(**params, random_state=seed)
    with warnings.catch_warnings():
        # the iteration budgets are fixed on purpose: no convergence is expected
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "accuracy": float(est.score(X_test, y_test)),
        "n_iter": int(est.n_iter_),
        "loss": float(est.loss_),
        "dtype": str(est.coefs_[0].dtype),
    }


def run_row(solver, dtype, args):
    from sklearn.neural_network import MLPClassifier as SkMLP

    from flatnn.sklearn import MLPClassifier as FlatMLP

    params, both = SOLVERS[solver]
    params = dict(params, hidden_layer_sizes=(20,) if args.quick else (100,))
    if args.quick:
        params["max_iter"] = QUICK_ITERS[solver]
    data = load(dtype, args.quick)
    libs = {"flatnn": FlatMLP, "sklearn": SkMLP} if both else {"flatnn": FlatMLP}
    runs = {lib: [] for lib in libs}
    for seed in range(args.repeat):
        # alternate who goes first, so that a busy neighbour slows both alike
        order = list(libs) if seed % 2 == 0 else list(libs)[::-1]
        for lib in order:
            runs[lib].append(fit_once(libs[lib], params, seed, data))
    row = {
        "solver": solver,
        "dtype": dtype,
        "threads": args.threads,
        "machine": host(),
        "m": int(data[0].shape[0]),
        "m_test": int(data[2].shape[0]),
        "params": params,
        "repeat": args.repeat,
    }
    for lib, rs in runs.items():
        # the dtype the weights end in: scikit-learn's lbfgs computes in float32
        # on float32 input but keeps scipy's float64 result as its weights
        row[lib] = {
            "weights_dtype": sorted({r["dtype"] for r in rs}),
            "median_s": statistics.median(r["seconds"] for r in rs),
            "median_accuracy": statistics.median(r["accuracy"] for r in rs),
            "n_iter": [r["n_iter"] for r in rs],
            "runs": rs,
        }
    if both:
        row["speedup"] = row["sklearn"]["median_s"] / row["flatnn"]["median_s"]
        row["accuracy_gain"] = row["flatnn"]["median_accuracy"] - row["sklearn"]["median_accuracy"]
    return row


def sparse_data(dtype, quick, seed=0):
    """A tf-idf-like CSR problem: ``(X, y, X_test, y_test)``."""
    from scipy import sparse

    m, n, nnz, k = (1500, 2000, 20, 5) if quick else (20000, 20000, 20, 5)
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(m), nnz)
    cols = rng.integers(0, n, m * nnz)
    vals = rng.exponential(1.0, m * nnz)
    X = sparse.csr_matrix((vals, (rows, cols)), shape=(m, n), dtype=np.dtype(dtype))
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sparse.csr_matrix(sparse.diags(1.0 / norms) @ X, dtype=np.dtype(dtype))
    y = np.asarray(X @ rng.normal(size=(n, k))).argmax(axis=1)
    split = m * 4 // 5
    return X[:split], y[:split], X[split:], y[split:]


def run_sparse_row(solver, dtype, args):
    from sklearn.neural_network import MLPClassifier as SkMLP

    from flatnn.sklearn import MLPClassifier as FlatMLP

    params = dict(SOLVERS[solver][0], hidden_layer_sizes=(10,) if args.quick else (50,))
    if args.quick:
        params["max_iter"] = QUICK_ITERS[solver]
    data = sparse_data(dtype, args.quick)
    libs = {"flatnn": FlatMLP, "sklearn": SkMLP}
    for Estimator in libs.values():  # warm-up, untimed: see the module docstring
        fit_once(Estimator, params, 0, data)
    runs = {lib: [] for lib in libs}
    for seed in range(args.repeat):
        order = list(libs) if seed % 2 == 0 else list(libs)[::-1]
        for lib in order:
            runs[lib].append(fit_once(libs[lib], params, seed, data))
    X = data[0]
    row = {
        "solver": solver,
        "dtype": dtype,
        "threads": args.threads,
        "machine": host(),
        "m": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "density": X.nnz / (X.shape[0] * X.shape[1]),
        "params": params,
        "repeat": args.repeat,
    }
    for lib, rs in runs.items():
        row[lib] = {
            "median_s": statistics.median(r["seconds"] for r in rs),
            "median_accuracy": statistics.median(r["accuracy"] for r in rs),
            "runs": rs,
        }
    row["speedup"] = row["sklearn"]["median_s"] / row["flatnn"]["median_s"]
    row["accuracy_gain"] = row["flatnn"]["median_accuracy"] - row["sklearn"]["median_accuracy"]
    return row


def sparse_markdown(rows):
    if not rows:
        return []
    lines = [
        "## Sparse X (text-like CSR, the same matrix in both libraries, 50 hidden units)",
        "",
        "| machine | threads | solver | iterations | m | features | density | dtype | flatnn fit | "
        "scikit-learn fit | speed-up | flatnn test acc. | scikit-learn test acc. |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        solver = r.get("solver", "lbfgs")
        lines.append(
            f"| {machine_label(r['machine'])} | {r['threads']} | {solver} "
            f"| {r['params']['max_iter']} | {r['m']} "
            f"| {r['n_features']} | {r['density']:.2%} "
            f"| {r['dtype']} | {r['flatnn']['median_s']:.2f} s | {r['sklearn']['median_s']:.2f} s "
            f"| {r['speedup']:.2f}× | {100 * r['flatnn']['median_accuracy']:.2f}% "
            f"| {100 * r['sklearn']['median_accuracy']:.2f}% |"
        )
    return [*lines, ""]


def machine_label(m):
    """A row's machine in a table cell: its CPU and the day."""
    return f"{m['cpu']}, {m['date'][:10]}"


def machine_lines(rows):
    """One line per machine the rows ran on."""
    seen = {}
    for r in rows:
        m = r["machine"]
        seen.setdefault(
            machine_label(m),
            f"- {machine_label(m)}: {m['cores']} cores, Python {m['python']}, NumPy {m['numpy']} "
            f"({m.get('blas', 'BLAS ?')}, {m['openblas_coretype']} kernels), SciPy {m['scipy']}, "
            f"scikit-learn {m['scikit-learn']}.",
        )
    return ["Machines (threads: each row's own):", "", *seen.values(), ""]


def markdown(result):
    rows = sorted(
        result["rows"],
        key=lambda r: (
            r.get("threads", 1),
            list(SOLVERS).index(r["solver"]),
            DTYPES.index(r["dtype"]),
        ),
    )
    lines = [
        "| machine | threads | solver | iterations | dtype | flatnn fit | scikit-learn fit "
        "| speed-up | flatnn test acc. | scikit-learn test acc. |",
        "|---|---:|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        sk = r.get("sklearn")
        sk_time = f"{sk['median_s']:.2f} s" if sk else "—"
        if sk and sk["weights_dtype"] != [r["dtype"]]:
            sk_time += f" (weights {'/'.join(sk['weights_dtype'])})"
        sk_acc = f"{100 * sk['median_accuracy']:.2f}%" if sk else "—"
        speedup = f"{r['speedup']:.2f}×" if sk else "—"
        lines.append(
            f"| {machine_label(r['machine'])} | {r.get('threads', 1)} | {r['solver']} "
            f"| {r['params']['max_iter']} "
            f"| {r['dtype']} "
            f"| {r['flatnn']['median_s']:.2f} s | {sk_time} | {speedup} "
            f"| {100 * r['flatnn']['median_accuracy']:.2f}% | {sk_acc} |"
        )
    return "\n".join(
        [
            "# flatnn.sklearn.MLPClassifier against sklearn.neural_network.MLPClassifier on MNIST",
            "",
            f"{rows[0]['m'] if rows else '?'} training and {rows[0]['m_test'] if rows else '?'} "
            f"test images, 784-{rows[0]['params']['hidden_layer_sizes'][0] if rows else '?'}-10 "
            "relu, scikit-learn's defaults otherwise; median of the repetitions (seeds 0, 1, ...), "
            "fit time only. speed-up = scikit-learn's time / flatnn's.",
            "",
            *lines,
            "",
            *sparse_markdown(result.get("sparse_rows", [])),
            *machine_lines([*rows, *result.get("sparse_rows", [])]),
            "Commands:",
            "",
            *[f"    {c}" for c in result["commands"]],
            "",
        ]
    )


def write_atomic(path, text):
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--solvers", default=",".join(SOLVERS), help=f"comma-separated, from {list(SOLVERS)}"
    )
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--repeat", type=int, default=None, help="fits per library (default 3)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="2000 images, 784-20-10, a few epochs, one fit; writes only to --out",
    )
    p.add_argument("--sparse", action="store_true", help="also the sparse rows (text-like CSR)")
    p.add_argument("--sparse-solvers", default="lbfgs,adam", help="solvers of the sparse rows")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--coretype", default="auto", help="OPENBLAS_CORETYPE, or 'auto' to let OpenBLAS detect"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"results folder (default {RESULTS.relative_to(REPO)} for full runs)",
    )
    args = p.parse_args(argv)
    solvers = [s for s in args.solvers.split(",") if s]
    dtypes = [d for d in args.dtypes.split(",") if d]
    bad = [s for s in solvers if s not in SOLVERS] + [d for d in dtypes if d not in DTYPES]
    if bad:
        p.error(f"unknown solver or dtype {bad}; solvers {list(SOLVERS)}, dtypes {list(DTYPES)}")
    args.repeat = args.repeat or (1 if args.quick else 3)
    reexec_if_needed(args, argv)
    sys.path.insert(0, str(REPO))

    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    previous = {"rows": [], "commands": []}
    if out is not None and (out / "bench_sklearn.json").exists() and not args.quick:
        previous = json.loads((out / "bench_sklearn.json").read_text())
    for r in [*previous["rows"], *previous.get("sparse_rows", [])]:
        if "machine" not in r:  # a file from before rows carried their machine: the file's
            m = {k: v for k, v in previous["machine"].items() if k != "threads"}
            r["machine"] = dict(m, date=previous["date"])
    rows = [
        r
        for r in previous["rows"]
        if (r["solver"], r["dtype"], r.get("threads", 1))
        not in {(s, d, args.threads) for s in solvers for d in dtypes}
    ]
    for solver in solvers:
        for dtype in dtypes:
            row = run_row(solver, dtype, args)
            rows.append(row)
            sk = row.get("sklearn")
            print(
                f"{solver:8s} {dtype}  flatnn {row['flatnn']['median_s']:.2f}s "
                f"{100 * row['flatnn']['median_accuracy']:.2f}%"
                + (
                    f"  sklearn {sk['median_s']:.2f}s {100 * sk['median_accuracy']:.2f}%  "
                    f"speed-up {row['speedup']:.2f}x"
                    if sk
                    else ""
                ),
                flush=True,
            )
    sparse_solvers = [s for s in args.sparse_solvers.split(",") if s] if args.sparse else []
    redone = {(s, d, args.threads) for s in sparse_solvers for d in dtypes}
    sparse_rows = [
        r
        for r in previous.get("sparse_rows", [])
        if (r.get("solver", "lbfgs"), r["dtype"], r["threads"]) not in redone
    ]
    for solver, dtype in [(s, d) for s in sparse_solvers for d in dtypes]:
        row = run_sparse_row(solver, dtype, args)
        sparse_rows.append(row)
        print(
            f"sparse {solver:5s} {dtype}  flatnn {row['flatnn']['median_s']:.2f}s "
            f"{100 * row['flatnn']['median_accuracy']:.2f}%  sklearn "
            f"{row['sklearn']['median_s']:.2f}s {100 * row['sklearn']['median_accuracy']:.2f}%  "
            f"speed-up {row['speedup']:.2f}x",
            flush=True,
        )
    command = " ".join(["python experiments/bench_sklearn.py", shlex.join(argv)]).rstrip()
    commands = [c for c in previous.get("commands", []) if c != command] + [command]
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "commands": commands,
        "rows": rows,
        "sparse_rows": sparse_rows,
    }
    print(f"machine: {result['machine']}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "bench_sklearn.json", json.dumps(result, indent=1) + "\n")
        write_atomic(out / "bench_sklearn.md", markdown(result))
        print(f"wrote {out / 'bench_sklearn.json'} and {out / 'bench_sklearn.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
