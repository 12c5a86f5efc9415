"""The SGD loop's speed: flatnn.sgd against a careful NumPy loop and PyTorch (CPU).

    python experiments/bench_sgd.py                 # full grid, about 6 minutes
    python experiments/bench_sgd.py --threads 1     # one thread count only
    python experiments/bench_sgd.py --quick         # seconds (used by the tests)

Every cell trains on the 60000 MNIST training images in float32, lam 0, and
reports the median wall-clock time of one epoch (epochs 2 to ``--epochs``; the
first one warms up). Each implementation runs in a process of its own, with
the BLAS thread count (and PyTorch's ``set_num_threads``) fixed before NumPy
or PyTorch is imported:

* **flatnn**: ``flatnn.sgd(net, p0, X, y, method=rule, ...)``, timed through its
  per-epoch callback.
* **numpy**: the loop a careful NumPy user writes by hand, in this file: one flat
  parameter vector with per-layer views, one permuted copy of ``X`` per epoch
  sliced into batches, forward and backward with matrix products into the same
  arrays, a log-sum-exp cross-entropy, and the update written in place.
* **torch**: ``nn.Sequential`` of ``nn.Linear`` layers, ``F.cross_entropy``,
  ``torch.optim.SGD`` / ``SGD(momentum=0.9)`` / ``Adam``, batches indexed out of
  one tensor with a ``randperm`` per epoch (the usual PyTorch loop without a
  ``DataLoader``, which would only add to its time). Skipped with a note when
  PyTorch is not installed (``pip install torch==2.13.0``; never a dependency
  of flatnn).

Targets (issue 9): flatnn <= 1.10x the NumPy loop in every cell, >= 1.3x faster
than PyTorch at batch 10 and not slower at 128 and 1000.

Results go to ``experiments/results/bench_sgd.{md,json}``; ``--quick`` writes to
a temporary folder (or ``--out``) and never over the committed results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # experiments/common.py
import common  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# (batch size, network, hidden activation, learning rate per rule)
CASES = [
    (10, (784, 100, 10), "sigmoid", {"sgd": 0.1, "momentum": 0.01, "adam": 0.001}),
    (128, (784, 256, 10), "relu", {"sgd": 0.1, "momentum": 0.05, "adam": 0.001}),
    (1000, (784, 100, 10), "sigmoid", {"sgd": 0.5, "momentum": 0.1, "adam": 0.003}),
]
RULES = ("sgd", "momentum", "adam")
IMPLS = ("flatnn", "numpy", "torch")
BETA = 0.9


def case_name(batch, sizes, hidden):
    return f"{'-'.join(map(str, sizes))} {hidden}, batch {batch}"


# ------------------------------------------------------------------- workers
def load_data(m):
    import numpy as np

    from flatnn.datasets import load_mnist

    splits = load_mnist(
        common.data_root() / "mnist", download=False, validation=0, dtype=np.float32
    )
    X, y = splits.X_train, splits.y_train
    if m is not None:
        X, y = np.ascontiguousarray(X[:m]), y[:m]
    return X, y


def work_flatnn(sizes, hidden, X, y, batch, rule, lr, epochs):
    import numpy as np

    import flatnn

    net = flatnn.Network(sizes, hidden=hidden)
    p0 = net.init(0, dtype=np.float32)
    method = {
        "sgd": flatnn.optimizers.sgd(),
        "momentum": flatnn.optimizers.momentum(BETA),
        "adam": flatnn.optimizers.adam(),
    }[rule]
    stamps = [time.perf_counter()]
    res = flatnn.sgd(
        net,
        p0,
        X,
        y,
        epochs=epochs,
        batch_size=batch,
        learning_rate=lr,
        method=method,
        rng=0,
        callback=lambda intermediate_result: stamps.append(time.perf_counter()),
    )
    return [b - a for a, b in zip(stamps, stamps[1:])], res.history[-1]["fun"]


def work_numpy(sizes, hidden, X, y, batch, rule, lr, epochs):
    """A careful hand-written loop: flat vector, in-place update, one permuted copy per epoch."""
    import numpy as np

    import flatnn  # only for the same initial weights as the flatnn run

    params = flatnn.Network(sizes, hidden=hidden).init(0, dtype=np.float32)
    shapes = [(n_out, n_in + 1) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    offsets = np.cumsum([0] + [a * b for a, b in shapes])

    def views(flat):
        return [flat[offsets[i] : offsets[i + 1]].reshape(s) for i, s in enumerate(shapes)]

    grad = np.empty_like(params)
    thetas, grads = views(params), views(grad)
    velocity = np.zeros_like(params)
    mu, nu, scratch = np.zeros_like(params), np.zeros_like(params), np.empty_like(params)
    m = X.shape[0]
    rng = np.random.default_rng(0)
    L = len(shapes)
    t = 0
    times, epoch_cost = [], 0.0
    Xp, yp = np.empty_like(X), np.empty_like(y)  # one permuted copy per epoch, in reused memory
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(m)
        np.take(X, order, axis=0, out=Xp)
        np.take(y, order, out=yp)
        total = 0.0
        for lo in range(0, m, batch):
            xb, yb = Xp[lo : lo + batch], yp[lo : lo + batch]
            b = xb.shape[0]
            acts = [xb]
            a = xb
            for i, theta in enumerate(thetas):
                z = a @ theta[:, 1:].T
                z += theta[:, 0]
                if i < L - 1:
                    if hidden == "sigmoid":
                        np.negative(z, out=z)
                        np.exp(z, out=z)
                        z += 1.0
                        np.reciprocal(z, out=z)
                    else:
                        np.maximum(z, 0, out=z)
                    acts.append(z)
                a = z
            z -= z.max(axis=1, keepdims=True)
            rows = np.arange(b)
            picked = z[rows, yb].sum()
            np.exp(z, out=z)
            s = z.sum(axis=1, keepdims=True)
            total += float(np.log(s).sum() - picked)
            z /= s
            z[rows, yb] -= 1.0
            delta = z
            delta *= 1.0 / b
            for i in range(L - 1, -1, -1):
                np.matmul(delta.T, acts[i], out=grads[i][:, 1:])
                delta.sum(axis=0, out=grads[i][:, 0])
                if i == 0:
                    break
                d = delta @ thetas[i][:, 1:]
                a = acts[i]
                if hidden == "sigmoid":
                    d *= a
                    a -= 1.0
                    np.negative(a, out=a)
                    d *= a
                else:
                    d *= a > 0
                delta = d
            if rule == "sgd":
                grad *= -lr
                params += grad
            elif rule == "momentum":
                grad *= -lr
                velocity *= BETA
                velocity += grad
                params += velocity
            else:
                t += 1
                np.square(grad, out=scratch)
                scratch *= 0.001
                nu *= 0.999
                nu += scratch
                grad *= 0.1
                mu *= 0.9
                mu += grad
                np.sqrt(nu, out=scratch)
                scratch *= 1.0 / (1.0 - 0.999**t) ** 0.5
                scratch += 1e-8
                np.multiply(mu, -lr / (1.0 - 0.9**t), out=grad)
                grad /= scratch
                params += grad
        times.append(time.perf_counter() - start)
        epoch_cost = total / m
    return times, epoch_cost


def work_torch(sizes, hidden, X, y, batch, rule, lr, epochs, threads):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.Sigmoid() if hidden == "sigmoid" else torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    if rule == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    elif rule == "momentum":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=BETA)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype("int64"))
    m = Xt.shape[0]
    times, epoch_cost = [], 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        perm = torch.randperm(m)
        total = 0.0
        for lo in range(0, m, batch):
            idx = perm[lo : lo + batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        times.append(time.perf_counter() - start)
        epoch_cost = total / m
    return times, epoch_cost


def run_worker(args):
    X, y = load_data(args.m)
    batch, sizes, hidden, rates = CASES[args.case]
    lr = rates[args.rule]
    if args.worker == "torch":
        times, cost = work_torch(
            sizes, hidden, X, y, batch, args.rule, lr, args.epochs, args.threads
        )
    else:
        fn = work_flatnn if args.worker == "flatnn" else work_numpy
        times, cost = fn(sizes, hidden, X, y, batch, args.rule, lr, args.epochs)
    print(json.dumps({"times": times, "cost": cost}))


# ----------------------------------------------------------------- driver
def spawn(impl, case, rule, threads, args):
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "FLATNN_NUM_THREADS"):
        env[var] = str(threads)
    if args.coretype != "auto":
        env["OPENBLAS_CORETYPE"] = args.coretype
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        impl,
        "--case",
        str(case),
        "--rule",
        rule,
        "--threads",
        str(threads),
        "--epochs",
        str(args.epochs),
    ]
    if args.m is not None:
        cmd += ["--m", str(args.m)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return None, last
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    timed = out["times"][1:] or out["times"]
    return {"median_s": statistics.median(timed), "times": out["times"], "cost": out["cost"]}, None


def torch_available():
    try:
        import importlib.util

        return importlib.util.find_spec("torch") is not None
    except Exception:  # noqa: BLE001
        return False


def machine():
    import platform

    import numpy as np

    info = {
        "cpu": common.cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if torch_available():
        import importlib.metadata

        info["torch"] = importlib.metadata.version("torch")
    return info


def markdown(meta, rows):
    lines = [
        "# SGD epoch: flatnn.sgd against a NumPy loop and PyTorch",
        "",
        f"`{meta['command']}` on {meta['machine']['cpu']} ({meta['machine']['cores']} cores), "
        f"{meta['date']}; MNIST {meta['m']} images, float32, lam 0, median of epochs 2-"
        f"{meta['epochs']}; OPENBLAS_CORETYPE={meta['coretype']}.",
        "",
        "| case | rule | threads | flatnn | NumPy loop | flatnn / NumPy | PyTorch | "
        "PyTorch / flatnn |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        f, n, t = r["flatnn"], r["numpy"], r["torch"]
        fs = f"{f['median_s']:.3f} s" if f else "—"
        ns = f"{n['median_s']:.3f} s" if n else "—"
        ratio = f"{f['median_s'] / n['median_s']:.2f}×" if f and n else "—"
        ts = f"{t['median_s']:.3f} s" if t else "—"
        speed = f"{t['median_s'] / f['median_s']:.2f}×" if f and t else "—"
        lines.append(
            f"| {r['case']} | {r['rule']} | {r['threads']} | {fs} | {ns} | {ratio} | "
            f"{ts} | {speed} |"
        )
    if meta.get("notes"):
        lines += ["", *[f"- {note}" for note in meta["notes"]]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2", help="BLAS thread counts (default 1,2)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    p.add_argument("--m", type=int, help="training images (default all 60000)")
    p.add_argument(
        "--cases", default="0,1,2", help="case indices (default all: batch 10, 128, 1000)"
    )
    p.add_argument("--rules", default=",".join(RULES))
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument(
        "--coretype",
        default="auto",
        help="OPENBLAS_CORETYPE of the workers (default auto: OpenBLAS detects; SkylakeX: AVX-512)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="2000 images, 2 epochs, batch 128 only, 1 thread (the tests)",
    )
    p.add_argument(
        "--out",
        help="folder for bench_sgd.{md,json} (default experiments/results; "
        "--quick: a temporary folder)",
    )
    p.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--case", type=int, help=argparse.SUPPRESS)
    p.add_argument("--rule", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        args.threads = int(args.threads)
        return run_worker(args)
    if args.quick:
        args.m, args.epochs, args.cases, args.threads = args.m or 2000, 2, "1", "1"
    out = (
        Path(args.out)
        if args.out
        else (Path(tempfile.mkdtemp(prefix="bench_sgd-")) if args.quick else HERE / "results")
    )
    out.mkdir(parents=True, exist_ok=True)
    threads = [int(t) for t in args.threads.split(",")]
    cases = [int(c) for c in args.cases.split(",")]
    rules = args.rules.split(",")
    impls = args.impls.split(",")
    notes = []
    if "torch" in impls and not torch_available():
        impls.remove("torch")
        notes.append(
            "PyTorch is not installed here: its column is empty (pip install torch==2.13.0)."
        )
    rows = []
    for case in cases:
        batch, sizes, hidden, _ = CASES[case]
        for rule in rules:
            for t in threads:
                row = {"case": case_name(batch, sizes, hidden), "rule": rule, "threads": t}
                for impl in IMPLS:
                    row[impl] = None
                    if impl in impls:
                        row[impl], err = spawn(impl, case, rule, t, args)
                        if err:
                            notes.append(f"{impl} failed on {row['case']} {rule}: {err}")
                f, n, tt = row["flatnn"], row["numpy"], row["torch"]
                print(
                    f"{row['case']:32s} {rule:9s} {t} thr  flatnn "
                    f"{f['median_s'] if f else float('nan'):.3f} s  numpy "
                    f"{n['median_s'] if n else float('nan'):.3f} s  torch "
                    f"{tt['median_s'] if tt else float('nan'):.3f} s",
                    flush=True,
                )
                rows.append(row)
    meta = {
        "command": "python experiments/bench_sgd.py " + " ".join(argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "m": args.m or 60000,
        "epochs": args.epochs,
        "coretype": args.coretype,
        "notes": notes,
    }
    (out / "bench_sgd.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (out / "bench_sgd.md").write_text(markdown(meta, rows))
    print(f"wrote {out / 'bench_sgd.md'} and {out / 'bench_sgd.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
