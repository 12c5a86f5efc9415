"""Time ``Network.cost_grad`` on MNIST against the BLAS floor, PyTorch and scikit-learn.

For each thread count (``--threads``, default 1, 2, 4, 8, 16 up to the cores
this process may use), each network (784-100-10 sigmoid/softmax,
784-256-128-64-10 relu/softmax) and each dtype (float32, float64) this times,
in one process per count with BLAS at that many threads:

* ``flatnn``: ``net.cost_grad(params, X, y)`` on all the training images, the
  public call, validation included, with ``flatnn.set_num_threads(count)``;
* ``floor``: the bare matrix products that pass has to do, on arrays of the same
  shapes and dtype, by a BLAS with ``count`` threads: ``a_{l-1} @ W_lᵀ`` for every
  layer (forward), ``δ_lᵀ @ a_{l-1}`` for every layer and ``δ_l @ W_l`` for every
  layer but the first (backward).

and, each in a process of its own (PyTorch loaded next to NumPy slows NumPy's
BLAS down here) and only when installed, with ``count`` threads:

* ``torch``: forward + backward of the same layers (``addmm``, activation,
  ``cross_entropy``), gradients for the weights only, on the CPU;
* ``sklearn``: ``MLPClassifier._loss_grad_lbfgs`` (the loss+gradient function its
  L-BFGS solver calls), private API: reported as not available if it moved.

Every timing is the median of ``--repeat`` runs (the best is recorded too);
``flatnn`` and ``floor`` runs alternate so that a busy neighbour slows both. Each
timed ``flatnn`` call follows an untimed one: OpenBLAS's own threads keep
spinning for about 0.1 s after the floor's multi-threaded products and would
otherwise share the cores with flatnn's threads, an artefact of the
interleaving. Results go to ``experiments/results/bench_cost_grad.{json,md}``.

OpenBLAS picks its kernels once, when it is loaded, from ``OPENBLAS_CORETYPE``,
and its thread count from ``OPENBLAS_NUM_THREADS``: ``--coretype`` (default
``SkylakeX``, the AVX-512 kernels; ``auto`` lets OpenBLAS detect) and the count
are therefore applied by running each count in a process started with those
variables set.

Usage::

    FLATNN_DATA=/work/shared/data flock /tmp/flatnn-cpu.lock \\
        python experiments/bench_cost_grad.py            # full run, writes results
    python experiments/bench_cost_grad.py --quick --out /tmp/b   # seconds, smoke test
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # experiments/common.py
import common  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "experiments" / "results"

NETS = {
    "784-100-10 sigmoid": ((784, 100, 10), "sigmoid"),
    "784-256-128-64-10 relu": ((784, 256, 128, 64, 10), "relu"),
}
DTYPES = ("float32", "float64")
TARGETS = {"float32": 1.15, "float64": 1.2}
TORCH_TARGET = 1.2  # flatnn at least this much faster than PyTorch at every count
SWEEP = (1, 2, 4, 8, 16)
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------- environment
def wanted_env(coretype, threads):
    """The environment variables this run needs, ``None`` meaning unset."""
    env = {v: str(threads) for v in THREAD_VARS}
    env["OPENBLAS_CORETYPE"] = None if coretype == "auto" else coretype
    return env


def reexec_if_needed(args, argv):
    """Re-run this script with the BLAS variables set, unless they already are.

    OpenBLAS reads them once, when NumPy loads it, so setting them now (NumPy is
    imported) would be too late. The re-executed process finds them set and runs.
    """
    env = wanted_env(args.coretype, args.threads[0])
    if all(os.environ.get(k) == v for k, v in env.items()):
        return
    new = dict(os.environ)
    for k, v in env.items():
        if v is None:
            new.pop(k, None)
        else:
            new[k] = v
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], new)


def blas_info():
    """OpenBLAS version, kernel family and thread count, read from the library."""
    info = {"numpy": np.__version__}
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{cfg.get('name')} {cfg.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        pass
    info["coretype"] = _openblas_corename() or os.environ.get("OPENBLAS_CORETYPE", "unknown")
    info["threads"] = int(os.environ.get("OPENBLAS_NUM_THREADS", "0")) or None
    return info


def _openblas_corename():
    """The kernel family OpenBLAS actually chose (``SkylakeX``, ``Haswell``, ...)."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line and ".so" in line}
    except OSError:
        return None
    for lib in libs:
        try:
            dll = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in (
            "scipy_openblas_get_corename64_",
            "scipy_openblas_get_corename",
            "openblas_get_corename64_",
            "openblas_get_corename",
        ):
            fn = getattr(dll, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


cpu_model = common.cpu_model


# ----------------------------------------------------------------------- data
data_dir = common.data_root


def load_train(dtype, m=None, source="mnist"):
    """The MNIST training images ``(m, 784)`` in [0, 1] and their int labels.

    ``source="random"`` gives uniform pixels and random labels instead (for
    smoke tests on a machine without the files).
    """
    if source == "random":
        rng = np.random.default_rng(0)
        m = m or 60000
        return rng.random((m, 784), dtype=dtype), rng.integers(0, 10, m)
    from flatnn.datasets import load_mnist

    splits = load_mnist(data_dir() / "mnist", download=False, validation=0, dtype=dtype)
    X, y = splits.X_train, splits.y_train
    if m is not None:
        X, y = np.ascontiguousarray(X[:m]), y[:m]
    return X, y


# -------------------------------------------------------------------- timing
def best_and_median(times):
    return min(times), statistics.median(times)


def floor_fn(sizes, m, dtype, rng, allocate=False):
    """A function doing exactly the GEMMs of one forward + backward pass.

    Outputs are preallocated so that only the products are timed; with
    ``allocate`` every product writes a fresh array instead (``a @ W.T``), as
    a pass that keeps its activations must: the difference is the cost of
    first touching new memory (page faults), which no pure function avoids.
    """
    acts = [rng.random((m, sizes[0]), dtype=dtype)]
    acts += [rng.random((m, n), dtype=dtype) for n in sizes[1:]]
    Ws = [
        rng.standard_normal((n_out, n_in)).astype(dtype) * 0.01
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
    deltas = [rng.standard_normal((m, n)).astype(dtype) for n in sizes[1:]]
    gWs = [np.empty_like(W) for W in Ws]
    back = [np.empty((m, n), dtype=dtype) for n in sizes[1:-1]]
    L = len(Ws)

    def run():
        for l in range(L):
            np.matmul(acts[l], Ws[l].T, out=acts[l + 1])
        for l in range(L - 1, -1, -1):
            np.matmul(deltas[l].T, acts[l], out=gWs[l])
            if l > 0:
                np.matmul(deltas[l], Ws[l], out=back[l - 1])

    def run_allocating():
        outs = [acts[0]]
        for l in range(L):
            outs.append(outs[l] @ Ws[l].T)
        for l in range(L - 1, -1, -1):
            deltas[l].T @ outs[l]
            if l > 0:
                deltas[l] @ Ws[l]

    return run_allocating if allocate else run


def time_numpy(sizes, hidden, X, y, repeat, threads):
    """Best/median seconds of ``cost_grad`` and of its BLAS floor, interleaved."""
    import flatnn

    threaded = hasattr(flatnn, "set_num_threads")  # also times a flatnn from before them
    if threaded:
        flatnn.set_num_threads(threads)
    dtype = X.dtype
    net = flatnn.Network(sizes, hidden=hidden)
    params = net.init(0, dtype=dtype)
    floor = floor_fn(sizes, X.shape[0], dtype, np.random.default_rng(1))
    floor_alloc = floor_fn(sizes, X.shape[0], dtype, np.random.default_rng(1), allocate=True)
    cost, grad = net.cost_grad(params, X, y)  # warm-up (thread pool, preallocated pages)
    assert grad.dtype == dtype, (grad.dtype, dtype)
    floor()
    floor_alloc()
    t_net, t_floor, t_alloc = [], [], []
    for _ in range(repeat):
        net.cost_grad(params, X, y)  # untimed: lets OpenBLAS's spinning threads go idle
        t0 = time.perf_counter()
        net.cost_grad(params, X, y)
        t1 = time.perf_counter()
        floor()
        t2 = time.perf_counter()
        floor_alloc()
        t3 = time.perf_counter()
        t_net.append(t1 - t0)
        t_floor.append(t2 - t1)
        t_alloc.append(t3 - t2)
    return {
        "flatnn": best_and_median(t_net),
        "floor": best_and_median(t_floor),
        "floor_alloc": best_and_median(t_alloc),
        "cost": float(cost),
        "flatnn_threads": flatnn.threads.threads_for(X.shape[0]) if threaded else 1,
    }


def time_torch(sizes, hidden, X, y, repeat, threads):
    import torch

    torch.set_num_threads(threads)
    dtype = {np.float32: torch.float32, np.float64: torch.float64}[X.dtype.type]
    gen = torch.Generator().manual_seed(0)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(np.int64))
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = (torch.rand((n_out, n_in), generator=gen, dtype=dtype) - 0.5) * 0.1
        b = torch.zeros(n_out, dtype=dtype)
        layers.append((W.requires_grad_(), b.requires_grad_()))
    act = {"sigmoid": torch.sigmoid, "relu": torch.relu}[hidden]

    def run():
        a = Xt
        for l, (W, b) in enumerate(layers):
            a = torch.addmm(b, a, W.t())
            if l < len(layers) - 1:
                a = act(a)
        loss = torch.nn.functional.cross_entropy(a, yt)
        grads = torch.autograd.grad(loss, [p for layer in layers for p in layer])
        return float(loss), grads

    run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return {"seconds": best_and_median(times), "version": torch.__version__}


def time_sklearn(sizes, hidden, X, y, repeat):
    import inspect
    import warnings

    import sklearn
    from sklearn.neural_network import MLPClassifier
    from sklearn.neural_network._multilayer_perceptron import _pack

    clf = MLPClassifier(
        hidden_layer_sizes=sizes[1:-1],
        activation={"sigmoid": "logistic", "relu": "relu"}[hidden],
        solver="lbfgs",
        alpha=0.0,
        max_iter=1,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X[:1000], y[:1000])  # sets up the layout, label binarizer, weights
    Y = clf._label_binarizer.transform(y).astype(X.dtype)
    units = list(sizes)
    activations = [X] + [None] * (len(units) - 1)
    deltas = [None] * (len(activations) - 1)
    coef_grads = [np.empty((a, b), dtype=X.dtype) for a, b in zip(units[:-1], units[1:])]
    intercept_grads = [np.empty(b, dtype=X.dtype) for b in units[1:]]
    # The solver unpacks views of this vector into its weights, so float32 here
    # gives a float32 pass even where the fit above chose float64 weights.
    packed = _pack(clf.coefs_, clf.intercepts_).astype(X.dtype)
    args = (X, Y)
    if "sample_weight" in inspect.signature(clf._loss_grad_lbfgs).parameters:
        args += (None,)
    args += (activations, deltas, coef_grads, intercept_grads)

    def run():
        return clf._loss_grad_lbfgs(packed, *args)

    _, grad = run()
    if grad.dtype != X.dtype:
        raise RuntimeError(f"the gradient came out {grad.dtype} for {X.dtype} data")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return {"seconds": best_and_median(times), "version": sklearn.__version__}


def run_worker(args):
    """``--worker numpy|torch|sklearn``: time one library at one count, print one JSON line."""
    count = args.threads[0]
    out = {}
    for dtype in DTYPES:
        X, y = load_train(np.dtype(dtype), args.m, args.data)
        for name, (sizes, hidden) in NETS.items():
            if args.worker == "numpy":  # errors here are bugs: let them fail the run
                out[f"{name} {dtype}"] = time_numpy(sizes, hidden, X, y, args.repeat, count)
                continue
            try:
                if args.worker == "torch":
                    r = time_torch(sizes, hidden, X, y, args.repeat, count)
                else:
                    r = time_sklearn(sizes, hidden, X, y, args.repeat)
            except Exception as e:  # noqa: BLE001 - reported, not fatal
                r = {"error": f"{type(e).__name__}: {e}"}
            out[f"{name} {dtype}"] = r
    if args.worker == "numpy":
        out["blas"] = blas_info()
    print(json.dumps(out))


def spawn_worker(kind, args, count):
    """Run one ``--worker`` process at ``count`` threads; its JSON, or ``{"error": ...}``."""
    module = {"numpy": "numpy", "torch": "torch", "sklearn": "sklearn"}[kind]
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return {"error": f"{module} is not installed"}
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        kind,
        "--repeat",
        str(args.repeat),
        "--threads",
        str(count),
        "--coretype",
        args.coretype,
        "--data",
        args.data,
    ]
    if args.m is not None:
        cmd += ["--m", str(args.m)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        if kind == "numpy":
            raise RuntimeError(f"the numpy worker failed:\n{proc.stderr}")
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"worker exited with {proc.returncode}: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------- report
def fmt_s(x):
    return "n/a" if x is None else f"{x:.4f}"


def fmt_x(x):
    return "n/a" if x is None else f"{x:.2f}x"


def markdown(meta, rows):
    lines = [
        "# cost_grad on MNIST: flatnn vs the BLAS floor, PyTorch, scikit-learn",
        "",
        f"`{meta['command']}`",
        "",
        f"{meta['date']}, {meta['cpu']} ({meta['cores']} cores available), "
        f"{meta['blas'].get('blas', 'BLAS')} kernels `{meta['blas']['coretype']}`, "
        f"numpy {meta['blas']['numpy']}, m = {meta['m']} ({meta['data']}), "
        f"median of {meta['repeat']} (best in the JSON).",
        "",
        "| threads | network | dtype | flatnn s | floor s | ratio | target | floor, allocating s "
        "| ratio to it | torch s | torch / flatnn | sklearn s |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['threads']} | {r['net']} | {r['dtype']} | {fmt_s(r['flatnn_s'])} "
            f"| {fmt_s(r['floor_s'])} | {r['ratio']:.2f}x | {r['target']:.2f}x "
            f"| {fmt_s(r['floor_alloc_s'])} | {r['ratio_alloc']:.2f}x | {fmt_s(r['torch_s'])} "
            f"| {fmt_x(r['torch_speedup'])} | {fmt_s(r['sklearn_s'])} |"
        )
    lines += [
        "",
        "threads: flatnn's threads (`set_num_threads`), BLAS threads of the floor and "
        "scikit-learn, PyTorch's `set_num_threads`. floor: the GEMMs of the pass into "
        "preallocated outputs; floor, allocating: the same products as plain `a @ W.T` "
        "expressions, each writing fresh memory. torch / flatnn: how many times faster "
        f"flatnn is (target >= {TORCH_TARGET}x).",
    ]
    notes = {k: v for k, v in meta["other"].items() if v}
    if notes:
        lines += ["", *[f"- {k}: {v}" for k, v in notes.items()]]
    return "\n".join(lines) + "\n"


def status(others, kind, skipped):
    if skipped:
        return "skipped (--no-others)"
    found = set()
    errors = []
    for count, res in others.items():
        res = res[kind]
        if "error" in res:
            errors.append(f"{count} thread(s): not available: {res['error']}")
            continue
        found |= {v["version"] for v in res.values() if "version" in v}
        errors += [
            f"{count} thread(s), {k}: not available ({v['error']})"
            for k, v in res.items()
            if "error" in v
        ]
    return "; ".join([*(f"{kind} {v}" for v in sorted(found)), *errors])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="m=2000, one repetition, write nothing unless --out is given",
    )
    p.add_argument("--m", type=int, default=None, help="number of images (default 60000)")
    p.add_argument("--repeat", type=int, default=None, help="repetitions (default 7)")
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="thread counts to sweep (default 1 2 4 8 16, those this process may use)",
    )
    p.add_argument(
        "--coretype", default="auto", help="OPENBLAS_CORETYPE, or 'auto' to let OpenBLAS detect"
    )
    p.add_argument("--data", choices=("mnist", "random"), default="mnist")
    p.add_argument("--no-others", action="store_true", help="skip PyTorch and scikit-learn")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"results folder (default {RESULTS.relative_to(REPO)} for full runs)",
    )
    p.add_argument("--worker", choices=("numpy", "torch", "sklearn"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.m = args.m or 2000
        args.repeat = args.repeat or 1
    args.repeat = args.repeat or 7
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if args.threads is None:
        args.threads = [c for c in SWEEP if c <= cores]
    if any(c < 1 for c in args.threads):
        p.error(f"--threads must be >= 1, got {args.threads}")

    if args.worker:
        reexec_if_needed(args, argv)
        run_worker(args)
        return 0

    rows, others, blas = [], {}, None
    for count in args.threads:
        numpy_res = spawn_worker("numpy", args, count)
        blas = numpy_res.pop("blas")
        others[count] = {
            kind: ({} if args.no_others else spawn_worker(kind, args, count))
            for kind in ("torch", "sklearn")
        }
        for dtype in DTYPES:
            for name, (sizes, hidden) in NETS.items():
                key = f"{name} {dtype}"
                r = numpy_res[key]
                row = {
                    "threads": count,
                    "flatnn_threads": r["flatnn_threads"],
                    "net": name,
                    "sizes": list(sizes),
                    "hidden": hidden,
                    "dtype": dtype,
                    "flatnn_s": r["flatnn"][1],
                    "flatnn_best_s": r["flatnn"][0],
                    "floor_s": r["floor"][1],
                    "floor_best_s": r["floor"][0],
                    "floor_alloc_s": r["floor_alloc"][1],
                    "ratio": r["flatnn"][1] / r["floor"][1],
                    "ratio_best": r["flatnn"][0] / r["floor"][0],
                    "target": TARGETS[dtype],
                    "ratio_alloc": r["flatnn"][1] / r["floor_alloc"][1],
                    "cost": r["cost"],
                }
                for kind in ("torch", "sklearn"):
                    res = others[count][kind].get(key, {})
                    row[f"{kind}_s"] = res["seconds"][1] if "seconds" in res else None
                    row[f"{kind}_best_s"] = res["seconds"][0] if "seconds" in res else None
                row["torch_speedup"] = (
                    None if row["torch_s"] is None else row["torch_s"] / row["flatnn_s"]
                )
                rows.append(row)
                print(
                    f"{count:2d} thr  {name:24s} {dtype}  flatnn {row['flatnn_s']:.4f}s  "
                    f"floor {row['floor_s']:.4f}s  ratio {row['ratio']:.2f}x (target "
                    f"{row['target']:.2f}x; {row['ratio_alloc']:.2f}x allocating)  "
                    f"torch {fmt_s(row['torch_s'])}s ({fmt_x(row['torch_speedup'])})  "
                    f"sklearn {fmt_s(row['sklearn_s'])}s",
                    flush=True,
                )

    meta = {
        "command": " ".join(["python experiments/bench_cost_grad.py", *argv]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": cores,
        "python": platform.python_version(),
        "blas": blas,
        "threads": list(args.threads),
        "m": args.m or 60000,
        "data": args.data,
        "repeat": args.repeat,
        "timing": "median (and best) of repeat; flatnn and floor interleaved, "
        "an untimed flatnn call before each timed one",
        "other": {kind: status(others, kind, args.no_others) for kind in ("torch", "sklearn")},
    }
    print(
        f"BLAS kernels: {blas['coretype']}; torch: {meta['other']['torch']}; "
        f"sklearn: {meta['other']['sklearn']}"
    )
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(
            out / "bench_cost_grad.json", json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n"
        )
        write_atomic(out / "bench_cost_grad.md", markdown(meta, rows))
        print(f"wrote {out / 'bench_cost_grad.json'} and bench_cost_grad.md")
    return 0


def write_atomic(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
