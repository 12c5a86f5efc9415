"""Monotone linear interpolation (Goodfellow, Vinyals & Saxe, ICLR 2015), on MNIST.

    python experiments/monotone_interpolation.py                   # full run, about a minute
    python experiments/monotone_interpolation.py --quick --out DIR # seconds (the tests)

Train one network from one initial point twice, with minibatch SGD and with
L-BFGS, then evaluate the cost on the straight line
``θ(α) = (1 − α)·θ_init + α·θ_trained`` (:func:`flatnn.landscape.line`), on the
training images and on test images. The paper's finding: along that line the
cost falls monotonically from the initial to the trained parameters, with no
barrier; the path the optimizer took was far from straight, but a straight one
was there.

Results go to ``experiments/results/monotone_interpolation.{json,md,png}`` (full
run only); ``--quick`` writes to ``--out`` or a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # experiments/common.py
import common  # noqa: E402

import flatnn  # noqa: E402
from flatnn import landscape  # noqa: E402
from flatnn.datasets import load_mnist  # noqa: E402

HERE = Path(__file__).resolve().parent
FULL = {"images": 10000, "test_images": 10000, "sizes": "784-100-10", "epochs": 10, "maxiter": 300}
QUICK = {"images": 500, "test_images": 200, "sizes": "784-16-10", "epochs": 1, "maxiter": 10}

PAPER = (
    "Goodfellow, Vinyals & Saxe (2015), the linear path experiment (first on their MNIST "
    "maxout network, then on other architectures): the cost on the straight line from the "
    "initial to the final parameters, plotted against α; it falls from α = 0 to α = 1 "
    "without any significant obstacle (no bump, no barrier) on the way to the solution."
)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, for the tests")
    p.add_argument("--out", type=Path, help="results folder (default: experiments/results)")
    p.add_argument("--images", type=int, help="training images (full: 10000)")
    p.add_argument("--test-images", type=int, dest="test_images", help="(full: 10000)")
    p.add_argument("--sizes", help="layer sizes (full: 784-100-10)")
    p.add_argument("--epochs", type=int, help="SGD epochs (full: 10)")
    p.add_argument("--maxiter", type=int, help="L-BFGS iterations (full: 300)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def train(net, params0, X, y, args):
    """``{name: (trained params, seconds)}`` for minibatch SGD and L-BFGS."""
    out = {}
    start = time.perf_counter()
    result = flatnn.sgd(
        net,
        params0,
        X,
        y,
        epochs=args.epochs,
        batch_size=32,
        learning_rate=0.1,
        method="momentum",
        rng=args.seed,
    )
    out["SGD (momentum 0.9, batch 32, rate 0.1)"] = (result.x, time.perf_counter() - start)
    start = time.perf_counter()
    result = flatnn.minimize(
        net, params0, X, y, method="L-BFGS-B", options={"maxiter": args.maxiter}
    )
    out[f"L-BFGS ({args.maxiter} iterations)"] = (result.x, time.perf_counter() - start)
    return out


def monotone_violations(costs, alphas):
    """How many steps on ``0 <= α <= 1`` go up (beyond rounding)."""
    inside = costs[(alphas >= 0) & (alphas <= 1)]
    rises = np.diff(inside) > 1e-9 * np.abs(inside[:-1]).max()
    return int(rises.sum())


def write_markdown(path, args, curves, setup):
    quick = " --quick" if args.quick else ""
    lines = [
        "# Monotone linear interpolation (Goodfellow et al. 2015) on MNIST",
        "",
        f"Command: `python experiments/monotone_interpolation.py{quick}`.",
        f"Setup: {setup}.",
        "",
        f"**The paper's figure.** {PAPER}",
        "",
        "**Ours** (`monotone_interpolation.png`): training (solid) and test (dashed) cost "
        "along the line, one colour per optimizer.",
        "",
        "| optimizer | J(0) | J(1) train | J(1) test | rises on [0, 1] (train / test) | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for c in curves:
        alphas, train, test = (np.array(c[k]) for k in ("alphas", "train", "test"))
        zero, one = int(np.argmin(np.abs(alphas))), int(np.argmin(np.abs(alphas - 1.0)))
        lines.append(
            f"| {c['optimizer']} | {train[zero]:.4f} | {train[one]:.4f} | {test[one]:.4f} | "
            f"{monotone_violations(train, alphas)} / {monotone_violations(test, alphas)} | "
            f"{c['seconds']:.1f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def plot(path, curves):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for c in curves:
        (line,) = ax.plot(c["alphas"], c["train"], label=f"{c['optimizer']}: train")
        ax.plot(c["alphas"], c["test"], "--", color=line.get_color(), label="test")
    ax.axvline(1.0, color="grey", linewidth=0.6)
    ax.set(xlabel="α (0: initial, 1: trained)", ylabel="cost J", yscale="log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv=None):
    args = parse_args(argv)
    out = args.out or (Path(tempfile.mkdtemp()) if args.quick else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    splits = load_mnist(common.mnist_path(), validation=0)
    X, y = splits.X_train[: args.images], splits.y_train[: args.images]
    X_test, y_test = splits.X_test[: args.test_images], splits.y_test[: args.test_images]
    net = flatnn.Network(tuple(int(s) for s in args.sizes.split("-")))
    params0 = net.init(args.seed)
    alphas = np.linspace(-0.25, 1.5, 36)
    setup = (
        f"{args.images} MNIST training and {args.test_images} test images, "
        f"Network({args.sizes}, sigmoid, softmax, cross-entropy), lam 0, Glorot "
        f"initialisation (seed {args.seed}), cost at {alphas.size} points of α in [-0.25, 1.5]"
    )
    curves = []
    for name, (params, seconds) in train(net, params0, X, y, args).items():
        a, train_cost = landscape.line(net, params0, params, X, y, alphas=alphas)
        _, test_cost = landscape.line(net, params0, params, X_test, y_test, alphas=alphas)
        curves.append(
            {
                "optimizer": name,
                "alphas": a.tolist(),
                "train": train_cost.tolist(),
                "test": test_cost.tolist(),
                "seconds": seconds,
            }
        )
        print(f"{name}: rises on [0, 1]: {monotone_violations(train_cost, a)} (train)")
    record = {"setup": setup, "paper": PAPER, "curves": curves}
    (out / "monotone_interpolation.json").write_text(json.dumps(record, indent=1))
    write_markdown(out / "monotone_interpolation.md", args, curves, setup)
    plot(out / "monotone_interpolation.png", curves)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
