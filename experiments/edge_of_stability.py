"""Edge of stability (Cohen, Kaur, Li, Kolter & Talwalkar, ICLR 2021), on MNIST.

    python experiments/edge_of_stability.py                   # full run, a few minutes
    python experiments/edge_of_stability.py --quick --out DIR # seconds (the tests)

Full-batch gradient descent with a fixed step ``η`` on a 5000-image MNIST
subset, the sharpness (the top eigenvalue of the training Hessian, by
:class:`flatnn.curvature.Sharpness`: Lanczos over exact Hessian-vector
products, warm-started) recorded every ``--every`` steps. The paper's finding:
the sharpness rises ("progressive sharpening") until it reaches ``2/η``, the
largest value at which gradient descent is stable on a quadratic, and then
hovers just above it while the loss keeps falling, non-monotonically.

The setting follows the paper's ``fc-tanh`` with the square loss: a fully
connected tanh network (here 784-32-32-32-10) with a linear output, the loss
``½‖f(x) − onehot(y)‖²`` averaged over the images, the inputs centred and
scaled (per-pixel mean, one global standard deviation), and PyTorch's default
initialisation (every weight and bias uniform in ``±1/√n_in``), which the paper
used. Three steps ``η``, each with ``2/η`` above the initial sharpness.

Results go to ``experiments/results/edge_of_stability.{json,md,png}`` (full run
only); ``--quick`` writes to ``--out`` or a temporary folder.
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
from flatnn import curvature  # noqa: E402
from flatnn.datasets import load_mnist  # noqa: E402

HERE = Path(__file__).resolve().parent
FULL = {"images": 5000, "sizes": "784-32-32-32-10", "etas": "0.5,0.4,0.33", "steps": 500}
QUICK = {"images": 500, "sizes": "784-16-10", "etas": "0.5", "steps": 12}

PAPER = (
    "Cohen et al. (2021), Figure 1: full-batch GD on a 5000-example subset of CIFAR-10 "
    "with the square loss and a fully connected tanh network, several step sizes η; "
    "the training loss (left) falls non-monotonically over the long run, and the "
    "sharpness (right) rises until it reaches 2/η (dashed lines) and then hovers just "
    "above it instead of continuing to rise."
)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, for the tests")
    p.add_argument("--out", type=Path, help="results folder (default: experiments/results)")
    p.add_argument("--images", type=int, help="training images (full: 5000)")
    p.add_argument("--sizes", help="layer sizes (full: 784-32-32-32-10)")
    p.add_argument("--etas", help="comma-separated steps (full: 0.5,0.4,0.33)")
    p.add_argument("--steps", type=int, help="gradient-descent steps per η (full: 500)")
    p.add_argument("--every", type=int, default=10, help="sharpness every this many steps")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def data(images):
    """The first ``images`` MNIST training images, centred and scaled; one-hot targets."""
    splits = load_mnist(common.mnist_path(), validation=0)
    X = splits.X_train[:images]
    X = (X - X.mean(axis=0)) / X.std()
    return np.ascontiguousarray(X), np.eye(10)[splits.y_train[:images]]


def torch_init(net, rng):
    """PyTorch's default ``nn.Linear`` initialisation: weights and biases U(±1/√n_in)."""
    params = np.zeros(net.n_params)
    for theta in net.unpack(params):
        bound = 1.0 / np.sqrt(theta.shape[1] - 1)
        theta[...] = rng.uniform(-bound, bound, theta.shape)
    return params


def run_one(net, params0, X, Y, eta, steps, every):
    """One gradient-descent run: the loss every step, the sharpness every ``every``."""
    sharpness = curvature.Sharpness(net, X, Y, every=every, tol=1e-4, rng=0)
    start = time.perf_counter()
    result = flatnn.sgd(
        net,
        params0,
        X,
        Y,
        epochs=steps,
        batch_size=X.shape[0],
        learning_rate=eta,
        shuffle=False,
        callback=sharpness,
    )
    return {
        "eta": eta,
        "threshold": 2.0 / eta,
        "loss": [entry["fun"] for entry in result.history],
        # the callback of step nit sees the parameters after nit steps
        "sharpness_steps": [nit for nit, _ in sharpness.values],
        "sharpness": [value for _, value in sharpness.values],
        "message": result.message,
        "seconds": time.perf_counter() - start,
    }


def summary(run):
    """Where the sharpness first reached 95 % of 2/η, and its mean afterwards."""
    values = np.array(run["sharpness"])
    reached = np.flatnonzero(values >= 0.95 * run["threshold"])
    if reached.size == 0:
        return None, None, float(values.max())
    first = int(reached[0])
    return run["sharpness_steps"][first], float(values[first:].mean()), float(values.max())


def write_markdown(path, args, runs, setup):
    lines = [
        "# Edge of stability (Cohen et al. 2021) on MNIST",
        "",
        f"Command: `python experiments/edge_of_stability.py{' --quick' if args.quick else ''}`.",
        f"Setup: {setup}.",
        "",
        f"**The paper's figure.** {PAPER}",
        "",
        "**Ours** (`edge_of_stability.png`): the same two panels, one colour per η; the "
        "loss after each step, the sharpness every few steps (between measurements it "
        "may peak unseen).",
        "",
        "| η | 2/η | sharpness after step 1 | step reaching 0.95·2/η | mean after "
        "| max | max / (2/η) |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        step, mean, top = summary(run)
        after = "never" if step is None else str(step)
        mean_s = "-" if mean is None else f"{mean:.3f}"
        lines.append(
            f"| {run['eta']:g} | {run['threshold']:.3f} | {run['sharpness'][0]:.3f} | "
            f"{after} | {mean_s} | {top:.3f} | {top * run['eta'] / 2:.2f} |"
        )
    lines += ["", f"Machine: {common.cpu_model()}; seconds per run: "]
    lines[-1] += ", ".join(f"{run['seconds']:.0f}" for run in runs) + "."
    path.write_text("\n".join(lines) + "\n")


def plot(path, runs):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for run in runs:
        (line,) = left.plot(run["loss"], label=f"η = {run['eta']:g}")
        right.plot(run["sharpness_steps"], run["sharpness"], color=line.get_color())
        right.axhline(run["threshold"], color=line.get_color(), linestyle="--", linewidth=0.8)
    left.set(xlabel="step", ylabel="training loss", yscale="log")
    right.set(xlabel="step", ylabel="sharpness (top Hessian eigenvalue)")
    left.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv=None):
    args = parse_args(argv)
    out = args.out or (Path(tempfile.mkdtemp()) if args.quick else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    sizes = tuple(int(s) for s in args.sizes.split("-"))
    etas = [float(e) for e in args.etas.split(",")]
    net = flatnn.Network(sizes, hidden="tanh", output="identity", loss="squared_error")
    X, Y = data(args.images)
    params0 = torch_init(net, np.random.default_rng(args.seed))
    setup = (
        f"{args.images} MNIST images, Network({args.sizes}, tanh, linear output, square loss), "
        f"{args.steps} full-batch steps per η, sharpness every {args.every} steps, seed {args.seed}"
    )
    runs = []
    for eta in etas:
        runs.append(run_one(net, params0, X, Y, eta, args.steps, args.every))
        step, mean, _ = summary(runs[-1])
        print(f"η {eta:g}: 2/η {2 / eta:.3f}, reached at step {step}, mean after {mean}")
    record = {"setup": setup, "paper": PAPER, "runs": runs}
    (out / "edge_of_stability.json").write_text(json.dumps(record, indent=1))
    write_markdown(out / "edge_of_stability.md", args, runs, setup)
    plot(out / "edge_of_stability.png", runs)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
