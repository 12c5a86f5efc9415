"""Compare optimizers on XOR, captcha characters and MNIST: same network, same start, same lam.

Usage::

    python experiments/compare_optimizers.py --problem all     # in full (about 12 minutes)
    python experiments/compare_optimizers.py --problem mnist --budget 30
    python experiments/compare_optimizers.py --quick           # seconds (used by the tests)

For each problem every optimizer starts from the same ``params0`` and
minimizes the same objective ``J`` (same network, data and ``lam``), until it
converges, reaches ``max_iter`` iterations (epochs for the SGD family) or
spends its wall-clock budget. Written to ``--out``; without it a full run
(every method, no ``--quick``) writes ``experiments/results`` and a ``--quick``
or ``--methods`` run a new temporary folder, so that a partial run never
replaces the committed results; the last line says where. Files:
``compare_<problem>.json`` (settings, every curve
thinned to about 300 points, the summary), ``compare_<problem>.md`` (the table) and, with matplotlib
installed (``pip install flatnn[plot]``), ``compare_<problem>.png``.

What is measured, and how
-------------------------
* **cost**: the full training objective ``J`` at the iterate (scipy reports it
  at each iteration; for the SGD family it is recomputed on all training data at
  the end of each epoch, outside the clock).
* **seconds**: wall-clock time spent by the optimizer. The bookkeeping done at
  each iteration (``J`` for SGD, held-out accuracy for all) is timed and
  subtracted, so it does not penalise methods that take many cheap iterations.
* **gradient evaluations**: full-data ``cost_grad`` passes. An SGD epoch touches
  every training row once, so it counts as one (a batch of ``b`` rows counts as
  ``b/m``). Hessian-vector products (Newton-CG, trust-ncg) are counted apart, as
  ``Hv``; each costs about one more forward and backward pass, and the plots'
  x-axis adds them: *passes = cost_grad + Hv*.
* **time to target**: the first moment the held-out accuracy reaches the
  problem's target (XOR: all four points right; captcha: the target below on
  held-out captchas; MNIST: 95% on the 10000 validation images). The test set
  is only used for the final figure.

BFGS runs on XOR only: it keeps a dense ``n_params × n_params`` inverse Hessian
(for the MNIST network, 23860² float64 = 4.6 GB, and O(n²) work per
iteration). The SGD family's learning rates are the seeds' (plain SGD) or
common defaults scaled alike (momentum and Nesterov: the SGD rate × (1 − 0.9),
the same long-run step; Adam: 0.001 on the larger problems); they are not tuned
per method, so read the table as "out of the box", not "best possible".

Budget caveat: scipy's Newton-CG and trust-ncg check the callback only between
outer iterations. Once the budget is spent, the Hessian-vector product answers
zero, which ends scipy's inner CG loop at once, so that an optimizer overshoots
its budget by at most one line search.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # experiments/common.py
import common  # noqa: E402
import numpy as np

import flatnn
from flatnn import datasets

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"

SGD_METHODS = ("sgd", "momentum", "nesterov", "adam")
SCIPY_METHODS = ("CG", "BFGS", "L-BFGS-B", "Newton-CG", "trust-ncg")
BFGS_MAX_PARAMS = 2000  # dense inverse Hessian: n² float64


# --------------------------------------------------------------- problems
_data_dir = common.mnist_path


def make_problem(name, quick, seed, budget=None):
    """Return the problem's settings and data as a dict.

    Keys: ``net``, ``X``, ``y``, ``lam``, ``heldout`` and ``test`` (pairs), the
    held-out ``target`` accuracy, ``budget`` (seconds per optimizer),
    ``max_iter``, ``batch_size``, ``rates`` (learning rate per SGD method),
    ``methods``, ``describe`` (prose for the table).
    """
    if name == "xor":
        X, y = datasets.xor()
        net = flatnn.Network((2, 4, 1), hidden="sigmoid", output="sigmoid")
        p = dict(
            net=net,
            X=X,
            y=y,
            lam=0.0,
            heldout=(X, y),
            test=(X, y),
            target=1.0,
            budget=1.0 if quick else 10.0,
            max_iter=500 if quick else 3000,
            batch_size=4,
            rates={"sgd": 1.0, "momentum": 0.1, "nesterov": 0.1, "adam": 0.05},
            describe="the four XOR points (held-out = test = training set), "
            "full-batch SGD family (batch 4)",
        )
    elif name == "captcha":
        n_train, n_val, n_test = (15, 10, 10) if quick else (60, 100, 250)
        train = datasets.load_captcha(n_train, rng=seed)
        val = datasets.load_captcha(n_val, rng=seed + 1000)
        test = datasets.load_captcha(n_test, rng=seed + 2000)
        net = flatnn.Network((260, 200, 200, 36), hidden="sigmoid", output="sigmoid")
        p = dict(
            net=net,
            X=train.X,
            y=train.y,
            lam=0.1,
            heldout=(val.X, val.y),
            test=(test.X, test.y),
            target=0.8,
            budget=0.5 if quick else 20.0,
            max_iter=1000,
            batch_size=10,
            rates={"sgd": 1.0, "momentum": 0.1, "nesterov": 0.1, "adam": 0.001},
            describe=f"{4 * n_train} characters of {n_train} rendered captchas for "
            f"training, {4 * n_val} held out, {4 * n_test} for test; batch 10",
        )
    elif name == "mnist":
        d = datasets.load_mnist(_data_dir(), download=False)
        rows, held = (2000, 1000) if quick else (None, None)
        net = flatnn.Network((784, 30, 10), hidden="sigmoid", output="softmax")
        p = dict(
            net=net,
            X=d.X_train[:rows],
            y=d.y_train[:rows],
            lam=5.0,
            heldout=(d.X_val[:held], d.y_val[:held]),
            test=(d.X_test[:held], d.y_test[:held]),
            target=0.95,
            budget=0.5 if quick else 60.0,
            max_iter=10000,
            batch_size=50,
            rates={"sgd": 3.0, "momentum": 0.3, "nesterov": 0.3, "adam": 0.001},
            describe=f"{d.X_train[:rows].shape[0]} training images, "
            f"{d.X_val[:held].shape[0]} validation (held-out), "
            f"{d.X_test[:held].shape[0]} test; batch 50",
        )
    else:
        raise ValueError(f"unknown problem {name!r}; expected xor, captcha or mnist")
    if budget is not None:
        p["budget"] = budget
    small = p["net"].n_params <= BFGS_MAX_PARAMS
    p["methods"] = [m for m in (*SGD_METHODS, *SCIPY_METHODS) if m != "BFGS" or small]
    p["params0"] = p["net"].init(seed)
    p["name"] = name
    return p


# ------------------------------------------------------------- measuring
class CountedObjective:
    """An objective-like wrapper that counts full ``cost_grad`` and ``hessp`` passes.

    After ``expired()`` turns true, ``hessp`` answers zeros, which ends scipy's
    inner CG loops (Newton-CG, trust-ncg) at once; see the module docstring.
    """

    def __init__(self, objective, expired):
        self.objective = objective
        self.expired = expired
        self.nfev = 0
        self.nhev = 0

    @property
    def n_params(self):
        return self.objective.n_params

    @property
    def net(self):
        return self.objective.net

    def cost_grad(self, params):
        self.nfev += 1
        return self.objective.cost_grad(params)

    def hessp(self, params, v):
        if self.expired():
            return np.zeros_like(v)
        self.nhev += 1
        return self.objective.hessp(params, v)


class Clock:
    """Wall-clock seconds of the optimizer alone: bookkeeping is timed and subtracted."""

    def __init__(self):
        self.start = time.perf_counter()
        self.excluded = 0.0

    def seconds(self):
        return time.perf_counter() - self.start - self.excluded

    def exclude_since(self, t0):
        self.excluded += time.perf_counter() - t0


def run_method(problem, method, objective):
    """Run one optimizer from ``problem['params0']``; return its record (a dict)."""
    net, params0 = problem["net"], problem["params0"]
    X_held, y_held = problem["heldout"]
    budget = problem["budget"]
    curve = [
        {
            "seconds": 0.0,
            "grad_evals": 0.0,
            "hv": 0,
            "cost": objective.cost(params0),
            "heldout_accuracy": net.accuracy(params0, X_held, y_held),
        }
    ]
    clock = Clock()
    counted = CountedObjective(objective, lambda: clock.seconds() > budget)
    stopped = {"by": None}

    def record(params, cost, grad_evals, hv):
        seconds = clock.seconds()
        t0 = time.perf_counter()
        if cost is None:  # SGD: the epoch's J on all training data, outside the clock
            cost = objective.cost(params)
        curve.append(
            {
                "seconds": seconds,
                "grad_evals": float(grad_evals),
                "hv": hv,
                "cost": float(cost),
                "heldout_accuracy": net.accuracy(params, X_held, y_held),
            }
        )
        clock.exclude_since(t0)
        if seconds > budget:
            stopped["by"] = f"budget of {budget:g} s"
            raise StopIteration

    if method in SGD_METHODS:

        def callback(intermediate_result):
            record(intermediate_result.x, None, intermediate_result.nit, 0)

        clock.start = time.perf_counter()
        res = flatnn.sgd(
            objective,
            params0,
            epochs=problem["max_iter"],
            batch_size=min(problem["batch_size"], problem["X"].shape[0]),
            learning_rate=problem["rates"][method],
            method=method,
            rng=0,
            callback=callback,
        )
        settings = {
            "learning_rate": problem["rates"][method],
            "batch_size": problem["batch_size"],
            "epochs_max": problem["max_iter"],
        }
    else:

        def callback(intermediate_result):
            record(intermediate_result.x, intermediate_result.fun, counted.nfev, counted.nhev)

        options = {"maxiter": problem["max_iter"]}
        clock.start = time.perf_counter()
        res = flatnn.minimize(counted, params0, method=method, options=options, callback=callback)
        settings = {"options": options}
    total = clock.seconds()
    X_test, y_test = problem["test"]
    final = {
        "cost": float(objective.cost(res.x)),
        "train_accuracy": net.accuracy(res.x, problem["X"], problem["y"]),
        "heldout_accuracy": net.accuracy(res.x, X_held, y_held),
        "test_accuracy": net.accuracy(res.x, X_test, y_test),
    }
    hit = next((row for row in curve if row["heldout_accuracy"] >= problem["target"]), None)
    last = curve[-1]
    return {
        "method": method,
        "settings": settings,
        "iterations": len(curve) - 1,
        "grad_evals": last["grad_evals"],
        "hv": last["hv"],
        "seconds": total,
        "stopped_by": stopped["by"] or str(res.message),
        "final": final,
        "time_to_target": None if hit is None else hit["seconds"],
        "grad_evals_to_target": None if hit is None else hit["grad_evals"] + hit["hv"],
        "curve": curve,
    }


# ------------------------------------------------------------------ output
def thin(curve, limit=300):
    """At most about ``limit`` rows of a curve for the JSON file, numbers to 6 digits.

    Rows are log- and evenly spaced; the first and last are always kept. The
    summaries and plots use the full curve.
    """
    n = len(curve)
    keep = {0, n - 1}
    if n <= limit:
        keep.update(range(n))
    else:
        keep.update(np.geomspace(1, n - 1, limit // 2).astype(int).tolist())
        keep.update(np.linspace(0, n - 1, limit // 2).astype(int).tolist())
    return [
        {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in curve[i].items()}
        for i in sorted(keep)
    ]


def machine():
    """One line naming the machine: CPU, cores, Python, NumPy, BLAS threads."""
    cpu = common.cpu_model()
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, SciPy {__import__('scipy').__version__}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )


def _fmt(x, spec):
    return "—" if x is None else format(x, spec)


def markdown_table(problem, records):
    """The comparison table of one problem, as markdown lines."""
    target = problem["target"]
    lines = [
        f"| method | iterations | grad evals | Hv | seconds | final J | train | "
        f"held-out | test | s to {100 * target:g}% | passes to {100 * target:g}% | "
        f"stopped by |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in records:
        f = r["final"]
        lines.append(
            f"| {r['method']} | {r['iterations']} | {r['grad_evals']:.0f} | {r['hv']} | "
            f"{r['seconds']:.3g} | {f['cost']:.4g} | {100 * f['train_accuracy']:.2f}% | "
            f"{100 * f['heldout_accuracy']:.2f}% | {100 * f['test_accuracy']:.2f}% | "
            f"{_fmt(r['time_to_target'], '.2f')} | {_fmt(r['grad_evals_to_target'], '.0f')} | "
            f"{r['stopped_by']} |"
        )
    return lines


def write_markdown(path, problem, records, command, plot_note):
    net = problem["net"]
    text = [
        f"# Optimizers on {problem['name']}",
        "",
        f"{net!r}, {net.n_params} parameters, lam {problem['lam']:g}, one start "
        f"(`net.init(seed)`) for all; {problem['describe']}; budget "
        f"{problem['budget']:g} s or {problem['max_iter']} iterations (epochs) per optimizer.",
        "",
        *markdown_table(problem, records),
        "",
        "Iterations are epochs for the SGD family. *grad evals*: full-data cost_grad "
        "passes (an SGD epoch counts as one); *Hv*: Hessian-vector products; *passes* = "
        "grad evals + Hv. Seconds exclude the per-iteration bookkeeping.",
        "",
        f"Produced by `{command}` on: {machine()}.",
        "",
        plot_note,
        "",
    ]
    path.write_text("\n".join(text))


def plot(path, problem, records):
    """Write the three-panel PNG; return a note saying what was done."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "Plots skipped: matplotlib is not installed (`pip install flatnn[plot]`)."
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for r in records:
        c = r["curve"]
        t = [row["seconds"] for row in c]
        passes = [row["grad_evals"] + row["hv"] for row in c]
        cost = [max(row["cost"], 1e-12) for row in c]
        acc = [100 * row["heldout_accuracy"] for row in c]
        style = "--" if r["method"] in SGD_METHODS else "-"
        axes[0].plot(t, cost, style, label=r["method"])
        axes[1].plot(passes, cost, style, label=r["method"])
        axes[2].plot(t, acc, style, label=r["method"])
    axes[0].set(xlabel="seconds", ylabel="training cost J", yscale="log")
    axes[1].set(
        xlabel="passes (cost_grad + Hv; an SGD epoch = 1)", ylabel="training cost J", yscale="log"
    )
    axes[1].set_xscale("symlog", linthresh=1.0)
    axes[1].set_xlim(left=0)
    axes[2].set(xlabel="seconds", ylabel="held-out accuracy (%)")
    axes[2].axhline(100 * problem["target"], color="grey", lw=0.8)
    lo = min(
        min(100 * row["heldout_accuracy"] for row in r["curve"][1:] or r["curve"]) for r in records
    )
    axes[2].set_ylim(max(lo - 2, 0), 100.5)
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    net = problem["net"]
    fig.suptitle(f"{problem['name']}: {net!r}, lam {problem['lam']:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"Plot: `{path.name}`."


def run_problem(name, args):
    problem = make_problem(name, args.quick, args.seed, args.budget)
    objective = flatnn.Objective(problem["net"], problem["X"], problem["y"], problem["lam"])
    records = []
    for method in problem["methods"]:
        if args.methods and method.lower() not in args.methods:
            continue
        r = run_method(problem, method, objective)
        records.append(r)
        print(
            f"{name:8s} {method:10s} {r['seconds']:7.1f} s  J {r['final']['cost']:.4g}  "
            f"held-out {100 * r['final']['heldout_accuracy']:.2f}%  "
            f"test {100 * r['final']['test_accuracy']:.2f}%  "
            f"to target {_fmt(r['time_to_target'], '.2f')} s",
            flush=True,
        )
    out = args.out
    note = plot(out / f"compare_{name}.png", problem, records)
    write_markdown(out / f"compare_{name}.md", problem, records, args.command, note)
    net = problem["net"]
    summary = {
        "problem": name,
        "network": net.to_dict(),
        "n_params": net.n_params,
        "lam": problem["lam"],
        "m_train": int(problem["X"].shape[0]),
        "m_heldout": int(problem["heldout"][0].shape[0]),
        "m_test": int(problem["test"][0].shape[0]),
        "target": problem["target"],
        "budget_seconds": problem["budget"],
        "max_iter": problem["max_iter"],
        "quick": args.quick,
        "seed": args.seed,
        "command": args.command,
        "machine": machine(),
        "results": [
            {**r, "curve_rows": len(r["curve"]), "curve": thin(r["curve"])} for r in records
        ],
    }
    (out / f"compare_{name}.json").write_text(json.dumps(summary) + "\n")
    print(note)
    return records


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--problem", choices=("xor", "captcha", "mnist", "all"), default="all")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small data and half a second per optimizer (used by the tests)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the common start")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="wall-clock seconds per optimizer (default: per problem, "
        "10 / 20 / 60 s for xor / captcha / mnist)",
    )
    p.add_argument(
        "--methods",
        type=lambda s: [m.strip().lower() for m in s.split(",")],
        default=None,
        help="comma-separated subset, e.g. adam,L-BFGS-B",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default experiments/results for a full run; a new "
        "temporary folder with --quick or --methods)",
    )
    args = p.parse_args(argv)
    if args.budget is not None and not (args.budget > 0 and math.isfinite(args.budget)):
        p.error(f"--budget must be a positive number of seconds, got {args.budget}")
    known = {m.lower() for m in (*SGD_METHODS, *SCIPY_METHODS)}
    if args.methods and not set(args.methods) <= known:
        p.error(
            f"unknown methods {sorted(set(args.methods) - known)}; choose from "
            f"{[*SGD_METHODS, *SCIPY_METHODS]}"
        )
    args.command = (
        "python experiments/compare_optimizers.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
    ).strip()
    return args


def main(argv=None):
    """Run the comparison (see the module docstring); return the exit code, 0 on success."""
    args = parse_args(argv)
    if args.out is None:
        # the committed tables come from full runs only: a quick or partial run
        # must not replace them
        args.out = (
            Path(tempfile.mkdtemp(prefix="flatnn-compare-"))
            if args.quick or args.methods
            else DEFAULT_OUT
        )
    args.out.mkdir(parents=True, exist_ok=True)
    names = ("xor", "captcha", "mnist") if args.problem == "all" else (args.problem,)
    for name in names:
        run_problem(name, args)
    print(f"wrote {', '.join(f'compare_{n}.*' for n in names)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
