"""Where an ``lbfgs`` fit on sparse ``X`` spends its time, flatnn's against scikit-learn's.

The sparse ``lbfgs`` row of ``bench_sklearn.py`` runs the same algorithm in both
libraries: SciPy's L-BFGS-B over the same 1M parameters, with one objective
evaluation (``cost_grad``) per function call. This script splits each fit into

- ``setulb``: SciPy's L-BFGS-B update (its compiled ``setulb``), the same code in both;
- ``objective``: flatnn's ``Network.cost_grad`` or scikit-learn's ``_loss_grad_lbfgs``;
- ``wrapper``: flatnn's :class:`flatnn.training.ScipyProblem` around its objective
  (the cache of recent points, the per-iteration record); 0 for scikit-learn;
- ``rest``: everything else (SciPy's own wrappers, the estimator's checks),

fitting each library once untimed and then ``--repeat`` times, alternating who goes
first. It then times single evaluations with cold caches (200 MB written between
calls, as L-BFGS-B's update does): flatnn's evaluation as SciPy calls it
(``ScipyProblem.fun``, then ``jac``), flatnn's bare ``cost_grad`` and scikit-learn's
``_loss_grad_lbfgs``, interleaved, median of ``--calls``.

It wraps private functions of SciPy and scikit-learn to time them: a profiling
tool for this machine and these versions, not a benchmark of the public API (that
is ``bench_sklearn.py --sparse``).

Usage::

    flock /tmp/flatnn-cpu.lock python experiments/profile_sparse_lbfgs.py
    python experiments/profile_sparse_lbfgs.py --quick --out /tmp/p   # seconds, smoke test
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # experiments/common.py
import bench_sklearn  # noqa: E402
import numpy as np  # noqa: E402

PARTS = ("setulb", "objective", "wrapper", "rest")


def _timed(acc, name, fn):
    def wrapped(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[name] = acc.get(name, 0.0) + time.perf_counter() - start

    return wrapped


def split_fits(data, params, repeat):
    """``{library: [{part: seconds, "fit": seconds}, ...]}`` over ``repeat`` timed fits."""
    import scipy.optimize._lbfgsb_py as lbfgsb
    from sklearn.neural_network import MLPClassifier as SkMLP
    from sklearn.neural_network import _multilayer_perceptron as skmlp

    from flatnn.core import network
    from flatnn.sklearn import MLPClassifier as FlatMLP
    from flatnn.training import scipy_bridge

    acc = {}
    lbfgsb._lbfgsb = types.SimpleNamespace(setulb=_timed(acc, "setulb", lbfgsb._lbfgsb.setulb))
    base = skmlp.BaseMultilayerPerceptron
    base._loss_grad_lbfgs = _timed(acc, "objective", base._loss_grad_lbfgs)
    network.Network.cost_grad = _timed(acc, "objective", network.Network.cost_grad)
    problem = scipy_bridge.ScipyProblem
    problem.fun = _timed(acc, "fun", problem.fun)
    problem.on_iteration = _timed(acc, "on_iteration", problem.on_iteration)

    libs = {"flatnn": FlatMLP, "sklearn": SkMLP}
    X, y = data[0], data[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 50 iterations on purpose: no convergence
        for Estimator in libs.values():
            Estimator(**params, random_state=0).fit(X, y)
        runs = {lib: [] for lib in libs}
        for seed in range(repeat):
            order = list(libs) if seed % 2 == 0 else list(libs)[::-1]
            for lib in order:
                acc.clear()
                start = time.perf_counter()
                libs[lib](**params, random_state=seed).fit(X, y)
                fit = time.perf_counter() - start
                wrapper = acc.get("fun", acc["objective"]) - acc["objective"]
                wrapper += acc.get("on_iteration", 0.0)
                parts = {"setulb": acc["setulb"], "objective": acc["objective"]}
                parts.update(wrapper=wrapper, rest=fit - sum(parts.values()) - wrapper)
                runs[lib].append(dict(parts, fit=fit))
    return runs


def cold_evaluations(data, params, calls):
    """Median milliseconds of one evaluation with cold caches: ``{name: ms}``."""
    from sklearn.neural_network import MLPClassifier as SkMLP
    from sklearn.preprocessing import LabelBinarizer

    import flatnn
    from flatnn.sklearn import MLPClassifier as FlatMLP
    from flatnn.training.driver import Recorder
    from flatnn.training.scipy_bridge import ScipyProblem

    X, y = data[0], data[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkMLP(**dict(params, max_iter=1), random_state=0).fit(X, y)
        fl = FlatMLP(**dict(params, max_iter=1), random_state=0).fit(X, y)
    net, alpha, m = fl.network_, float(params.get("alpha", 1e-4)), X.shape[0]
    Y = LabelBinarizer().fit_transform(y).astype(np.float64)
    if Y.shape[1] == 1:
        Y = np.hstack([1 - Y, Y])
    acts = [X] + [None] * (sk.n_layers_ - 1)
    deltas = [None] * (len(acts) - 1)
    coef_grads = [np.empty_like(c) for c in sk.coefs_]
    intercept_grads = [np.empty_like(c) for c in sk.intercepts_]
    work = fl.params_.dtype  # the estimator's weights: float32 on float32 data
    problem = ScipyProblem(flatnn.Objective(net, X, y, alpha), work, Recorder(None, None))
    # as L-BFGS-B calls it: fun and jac get copies of x, in the dtype of x0 (work)
    problem.builtin = problem.native = True
    rng = np.random.default_rng(0)
    points = [fl.params_ + 1e-3 * rng.normal(size=fl.params_.size) for _ in range(3)]
    cases = {
        "flatnn, as SciPy calls it": lambda x: (problem.fun(x), problem.jac(x)),
        "flatnn, bare cost_grad": lambda x: net.cost_grad(x, X, y, alpha),
        "scikit-learn _loss_grad_lbfgs": lambda x: sk._loss_grad_lbfgs(
            x, X, Y, np.ones(m), acts, deltas, coef_grads, intercept_grads
        ),
    }
    flush = np.zeros(25_000_000)  # 200 MB, as L-BFGS-B's work arrays on 1M parameters
    times = {name: [] for name in cases}
    for i in range(calls):
        for name, call in cases.items():
            flush += 1.0
            # a new point each time (no cache hit), cast as scipy casts it for either library
            x = (points[i % 3] + i * 1e-9).astype(work)
            start = time.perf_counter()
            call(x)
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def markdown(runs, evals, meta):
    lines = [
        "# An `lbfgs` fit on sparse X, split (flatnn against scikit-learn)",
        "",
        f"`python experiments/profile_sparse_lbfgs.py {meta['argv']}`, {meta['date']}, "
        f"{meta['cpu']}, one thread, {meta['dtype']}; the problem of `bench_sklearn.py --sparse` "
        f"({meta['m']} rows, {meta['n']} features, {meta['hidden']} hidden units, "
        f"{meta['iters']} iterations). "
        "Seconds per fit, median over the timed fits; each library fitted once untimed first.",
        "",
        "| library | fit | setulb | objective | wrapper | rest |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for lib, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("fit", *PARTS)}
        lines.append(
            f"| {lib} | {med['fit']:.3f} | " + " | ".join(f"{med[k]:.3f}" for k in PARTS) + " |"
        )
    lines += ["", "Every fit (seconds: fit = setulb + objective + wrapper + rest):", ""]
    for lib, rs in runs.items():
        for r in rs:
            lines.append(f"- {lib}: " + ", ".join(f"{k} {r[k]:.3f}" for k in ("fit", *PARTS)))
    lines += [
        "",
        f"One evaluation with cold caches, median of {meta['calls']} interleaved calls:",
        "",
        "| evaluation | ms |",
        "|---|---:|",
        *[f"| {name} | {ms:.2f} |" for name, ms in evals.items()],
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=4, help="timed fits per library (default 4)")
    p.add_argument("--calls", type=int, default=30, help="evaluations per kind (default 30)")
    p.add_argument("--dtype", default="float64", choices=bench_sklearn.DTYPES)
    p.add_argument("--quick", action="store_true", help="a small problem, seconds")
    p.add_argument("--out", type=Path, default=bench_sklearn.RESULTS)
    args = p.parse_args(argv)
    args.threads, args.coretype = 1, "auto"  # one BLAS thread, OpenBLAS's own kernels
    bench_sklearn.reexec_if_needed(args, argv, __file__)
    import datetime

    data = bench_sklearn.sparse_data(args.dtype, args.quick)
    iters = 5 if args.quick else 50
    params = {
        "solver": "lbfgs",
        "max_iter": iters,
        "hidden_layer_sizes": (10 if args.quick else 50,),
    }
    repeat, calls = (1, 3) if args.quick else (args.repeat, args.calls)
    runs = split_fits(data, params, repeat)
    evals = cold_evaluations(data, params, calls)
    meta = {
        "argv": " ".join(argv),
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "cpu": bench_sklearn.common.cpu_model(),
        "m": data[0].shape[0],
        "n": data[0].shape[1],
        "iters": iters,
        "dtype": args.dtype,
        "hidden": params["hidden_layer_sizes"][0],
        "calls": calls,
    }
    text = markdown(runs, evals, meta)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    name = (
        "profile_sparse_lbfgs.md"
        if args.dtype == "float64"
        else f"profile_sparse_lbfgs_{args.dtype}.md"
    )
    bench_sklearn.write_atomic(args.out / name, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
