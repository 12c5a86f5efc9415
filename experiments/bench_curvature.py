"""The speed of flatnn.curvature: the top Hessian eigenvalue of an MNIST network.

    flock /tmp/flatnn-cpu.lock python experiments/bench_curvature.py   # about a minute
    python experiments/bench_curvature.py --quick --out DIR            # seconds

Target (issue 23): the top eigenvalue of the Hessian of the 784-100-10 network
(sigmoid, softmax, cross-entropy, lam 0) on 10000 MNIST training images, to
1e-4 relative, in under 10 s. The parameters are those after 3 epochs of SGD
(batch 10, rate 0.5, seed 0) on the same images. The reference is an
independent Lanczos run (``k=3``, another start vector); each timed call is
``flatnn.curvature.eigs(net, params, X, y, rng=seed)`` with its default
(machine-precision) tolerance, and ``Sharpness(..., tol=1e-4).measure(params)``
(the training callback's cold estimate). Median of ``--repeat`` calls, with the
number of Hessian-vector products each took.

Results go to ``experiments/results/bench_curvature.{md,json}`` (full run only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy

sys.path.insert(0, str(Path(__file__).resolve().parent))  # experiments/common.py
import common  # noqa: E402

import flatnn  # noqa: E402
from flatnn import curvature  # noqa: E402
from flatnn.datasets import load_mnist  # noqa: E402

HERE = Path(__file__).resolve().parent


class Counting:
    """An objective that counts its Hessian-vector products."""

    def __init__(self, objective):
        self.objective = objective
        self.n_params = objective.n_params
        self.products = 0

    def cost_grad(self, params):
        return self.objective.cost_grad(params)

    def hessp(self, params, v):
        self.products += 1
        return self.objective.hessp(params, v)


def timed(call, counting, repeat):
    times, products, values = [], [], []
    for seed in range(repeat):
        counting.products = 0
        start = time.perf_counter()
        values.append(call(seed))
        times.append(time.perf_counter() - start)
        products.append(counting.products)
    return {"median_s": statistics.median(times), "times": times, "products": products}, values


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path)
    p.add_argument("--images", type=int)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    images = args.images or (500 if args.quick else 10000)
    out = args.out or (Path(tempfile.mkdtemp()) if args.quick else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    splits = load_mnist(common.mnist_path(), validation=0)
    X, y = splits.X_train[:images], splits.y_train[:images]
    net = flatnn.Network((784, 100, 10))
    params = flatnn.sgd(net, net.init(0), X, y, epochs=3, batch_size=10, learning_rate=0.5, rng=0).x
    objective = flatnn.Objective(net, X, y)
    reference = float(curvature.eigs(objective, params, k=3, rng=12345)[0][0])
    counting = Counting(objective)
    rows = {}
    calls = {
        "eigs (default tolerance)": lambda s: curvature.eigs(counting, params, rng=s)[0][0],
        "Sharpness(tol=1e-4).measure": lambda s: curvature.Sharpness(
            counting, tol=1e-4, rng=s
        ).measure(params),
    }
    for name, call in calls.items():
        row, values = timed(call, counting, args.repeat)
        row["max_rel_error"] = max(abs(v - reference) / abs(reference) for v in values)
        rows[name] = row
        print(f"{name}: {row['median_s']:.2f} s, {row['products']} products, "
              f"rel. error {row['max_rel_error']:.1e}")  # fmt: skip
    record = {
        "case": f"784-100-10 sigmoid, {images} MNIST images, after 3 SGD epochs",
        "reference_top_eigenvalue": reference,
        "machine": f"{common.cpu_model()}, {os.cpu_count()} cores, flatnn threads "
        f"{flatnn.get_num_threads()}, Python {platform.python_version()}, NumPy {np.__version__}, "
        f"SciPy {scipy.__version__}; 1-minute load average {os.getloadavg()[0]:.1f} at the end "
        "(this benchmark's own threads included)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows,
    }
    (out / "bench_curvature.json").write_text(json.dumps(record, indent=1))
    lines = [
        "# Top Hessian eigenvalue: speed",
        "",
        f"{record['case']}; top eigenvalue {reference:.10g}; {record['machine']}; "
        f"{record['date']}.",
        "Command: `flock /tmp/flatnn-cpu.lock python experiments/bench_curvature.py`. "
        "Target: the top eigenvalue to 1e-4 relative in under 10 s.",
        "",
        "| call | median s | Hessian-vector products | max rel. error |",
        "|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['median_s']:.2f} | {row['products']} | {row['max_rel_error']:.1e} |"
        )
    (out / "bench_curvature.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
