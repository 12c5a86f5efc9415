"""flatnn on an NVIDIA GPU (CuPy) against PyTorch CUDA on the same card, and against the CPU.

Three parts, on all 60000 MNIST training images (``--m`` for fewer):

1. ``cost_grad``: ``net.cost_grad(params, X, y)`` with CuPy arrays (the public
   call, input checks included) against forward + backward of the same layers
   in PyTorch CUDA (``addmm``, activation, ``cross_entropy``, gradients of weights
   and biases), for 784-100-10 sigmoid and 784-256-128-64-10 relu, float32 and
   float64; median of ``--repeat`` runs after two warm-up calls. Target on an
   H100: flatnn within 1.2x of PyTorch.
2. Full-batch training of 784-100-10 sigmoid/softmax, float32, ``lam`` 1:
   ``flatnn.minimize`` with L-BFGS-B (``maxiter`` ``--maxiter``, default 300;
   ``gtol`` ``--gtol``, ``ftol`` 0) and Newton-CG with the exact ``hessp``
   (``xtol`` ``--xtol``, at most ``--newton-maxiter`` iterations), over
   :class:`flatnn.gpu.GPUObjective` and, beside it, over the CPU's
   :class:`flatnn.Objective` (all cores; ``--no-cpu`` skips it). Seconds are end
   to end: building the objective (the copy of X to the GPU) included.
   Reported: seconds, iterations, ``cost_grad`` evaluations, ``hessp`` products,
   final cost. Target on an H100: L-BFGS-B for 300 iterations in under 3 s.
3. One SGD epoch (batch 64, learning rate 0.1, plain SGD, 784-100-10 sigmoid
   float32): ``flatnn.sgd`` on the CPU (all cores) and on the GPU (CuPy data:
   the whole loop on the device), each the second epoch of a two-epoch run,
   from the ``seconds`` of its history (the first epoch warms up: kernel
   compilation, BLAS threads); beside them a plain loop of ``net.cost_grad`` on
   device batches with ``params -= lr * grad``, and PyTorch CUDA doing that
   same loop. The final cost of each ``flatnn.sgd`` run is reported too (the
   GPU run must follow the CPU's, to float32 rounding).

Without CuPy or a GPU it exits with status 2 and one line saying what is
missing. Results go to ``experiments/results/bench_gpu.{json,md}`` (``--out``).

Usage (on a machine with an NVIDIA GPU, ``pip install -e '.[gpu]' torch``)::

    FLATNN_DATA=/work/shared/data python experiments/bench_gpu.py
    python experiments/bench_gpu.py --data random --m 2000 --maxiter 5 --out /tmp/b  # smoke
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "experiments" / "results"
NETS = (((784, 100, 10), "sigmoid"), ((784, 256, 128, 64, 10), "relu"))


def data_dir():
    """``$FLATNN_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("FLATNN_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_train(dtype, m, source):
    """MNIST training images ``(m, 784)`` in [0, 1] and int labels (or random ones)."""
    if source == "random":
        rng = np.random.default_rng(0)
        return rng.random((m or 60000, 784), dtype=dtype), rng.integers(0, 10, m or 60000)
    from flatnn.datasets import load_mnist

    splits = load_mnist(data_dir() / "mnist", download=False, validation=0, dtype=dtype)
    X, y = splits.X_train, splits.y_train
    if m is not None:
        X, y = np.ascontiguousarray(X[:m]), y[:m]
    return X, y


def median_seconds(fn, repeat, sync):
    fn(), fn()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# --------------------------------------------------------------- PyTorch CUDA
def torch_cuda():
    """The ``torch`` module when it sees a CUDA device, else a string saying why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    return torch


def torch_layers(torch, sizes, dtype, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = (torch.rand((n_out, n_in), generator=gen, dtype=dtype, device="cuda") - 0.5) * 0.1
        layers.append(
            [W.requires_grad_(), torch.zeros(n_out, dtype=dtype, device="cuda", requires_grad=True)]
        )
    return layers


def torch_cost_grad(torch, layers, hidden):
    act = {"sigmoid": torch.sigmoid, "relu": torch.relu}[hidden]
    params = [p for layer in layers for p in layer]

    def run(X, y):
        a = X
        for l, (W, b) in enumerate(layers):
            a = torch.addmm(b, a, W.t())
            if l < len(layers) - 1:
                a = act(a)
        loss = torch.nn.functional.cross_entropy(a, y)
        return loss, torch.autograd.grad(loss, params)

    return run


# ----------------------------------------------------------------------- parts
def part_cost_grad(xp, sync, args, torch):
    import flatnn

    rows = []
    for dtype in (np.float32, np.float64):
        X, y = load_train(dtype, args.m, args.data)
        Xd, yd = xp.asarray(X), xp.asarray(y)
        for sizes, hidden in NETS:
            net = flatnn.Network(sizes, hidden=hidden)
            pd = xp.asarray(net.init(0, dtype=dtype))
            flat = median_seconds(lambda: net.cost_grad(pd, Xd, yd), args.repeat, sync)
            row = {
                "net": f"{'-'.join(map(str, sizes))} {hidden}",
                "dtype": np.dtype(dtype).name,
                "flatnn_gpu_s": flat,
                "torch_cuda_s": None,
                "ratio": None,
            }
            if not isinstance(torch, str):
                tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
                run = torch_cost_grad(torch, torch_layers(torch, sizes, tdtype), hidden)
                Xt = torch.as_tensor(X, device="cuda")
                yt = torch.as_tensor(y.astype(np.int64), device="cuda")
                t = median_seconds(lambda: run(Xt, yt), args.repeat, torch.cuda.synchronize)
                row["torch_cuda_s"], row["ratio"] = t, flat / t
            rows.append(row)
    return rows


def part_training(xp, args):
    import flatnn
    from flatnn.gpu import GPUObjective

    X, y = load_train(np.float32, args.m, args.data)
    net = flatnn.Network((784, 100, 10), hidden="sigmoid")
    p0 = net.init(0, dtype=np.float32)
    runs = (
        ("L-BFGS-B", {"maxiter": args.maxiter, "gtol": args.gtol, "ftol": 0.0}),
        ("Newton-CG", {"maxiter": args.newton_maxiter, "xtol": args.xtol}),
    )
    rows = []
    for device in ("gpu", "cpu") if args.cpu else ("gpu",):
        for method, options in runs:
            t = time.perf_counter()
            obj = (
                GPUObjective(net, X, y, 1.0, xp=xp)
                if device == "gpu"
                else flatnn.Objective(net, X, y, 1.0)
            )
            res = flatnn.minimize(obj, p0, method=method, options=options)
            seconds = time.perf_counter() - t
            rows.append(
                {
                    "device": device,
                    "method": method,
                    "options": options,
                    "seconds": seconds,
                    "nit": int(res.nit),
                    "nfev": int(res.nfev),
                    "nhev": int(res.get("nhev", 0)),
                    "fun": float(res.fun),
                    "status": int(res.status),
                }
            )
    return rows


def part_sgd_epoch(xp, sync, args, torch):
    import flatnn

    X, y = load_train(np.float32, args.m, args.data)
    net = flatnn.Network((784, 100, 10), hidden="sigmoid")
    p0 = net.init(0, dtype=np.float32)
    batch, lr = 64, 0.1
    rows = []
    Xd, yd = xp.asarray(X), xp.asarray(y)
    for what, data in (("flatnn.sgd, CPU", (X, y)), ("flatnn.sgd, GPU", (Xd, yd))):
        res = flatnn.sgd(
            net, p0, *data, epochs=2, batch_size=batch, learning_rate=lr, method="sgd", rng=0
        )
        sync()
        first, second = res.history
        # a batch's cost comes to the host after every batch: the epoch's GPU work
        # has finished when its history entry is written
        rows.append(
            {"what": what, "seconds": second["seconds"] - first["seconds"], "fun": float(res.fun)}
        )

    order = xp.asarray(np.random.default_rng(0).permutation(X.shape[0]))

    def gpu_epoch():
        params = xp.asarray(p0)
        for lo in range(0, X.shape[0], batch):
            idx = order[lo : lo + batch]
            _, g = net.cost_grad(params, Xd[idx], yd[idx])
            params -= lr * g
        return params

    gpu_epoch()  # warm-up: kernel compilation
    sync()
    t = time.perf_counter()
    gpu_epoch()
    sync()
    rows.append({"what": "net.cost_grad loop, GPU", "seconds": time.perf_counter() - t})

    if not isinstance(torch, str):
        layers = torch_layers(torch, (784, 100, 10), torch.float32)
        run = torch_cost_grad(torch, layers, "sigmoid")
        Xt = torch.as_tensor(X, device="cuda")
        yt = torch.as_tensor(y.astype(np.int64), device="cuda")
        perm = torch.as_tensor(xp.asnumpy(order), device="cuda")
        params = [p for layer in layers for p in layer]

        def torch_epoch():
            for lo in range(0, X.shape[0], batch):
                idx = perm[lo : lo + batch]
                _, grads = run(Xt[idx], yt[idx])
                with torch.no_grad():
                    for p, g in zip(params, grads):
                        p -= lr * g

        torch_epoch()
        torch.cuda.synchronize()
        t = time.perf_counter()
        torch_epoch()
        torch.cuda.synchronize()
        rows.append({"what": "same loop, PyTorch CUDA", "seconds": time.perf_counter() - t})
    return rows


# -------------------------------------------------------------------- report
def fmt(x, spec=".4f"):
    return "n/a" if x is None else format(x, spec)


def markdown(result):
    lines = [
        f"# bench_gpu: {result['device']}",
        "",
        f"{result['date']}, m = {result['m']}, data {result['data']}, PyTorch: {result['torch']}",
        "",
        "## cost_grad (median seconds)",
        "",
        "| network | dtype | flatnn GPU | PyTorch CUDA | ratio |",
        "|---|---|---|---|---|",
    ]
    for r in result["cost_grad"]:
        lines.append(
            f"| {r['net']} | {r['dtype']} | {fmt(r['flatnn_gpu_s'])} | "
            f"{fmt(r['torch_cuda_s'])} | {fmt(r['ratio'], '.2f')} |"
        )
    lines += [
        "",
        "## Full batch, 784-100-10 sigmoid float32, lam 1 (seconds end to end)",
        "",
        "| device | method | options | seconds | nit | nfev | nhev | cost | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["training"]:
        lines.append(
            f"| {r['device']} | {r['method']} | {r['options']} | {r['seconds']:.2f} | "
            f"{r['nit']} | {r['nfev']} | {r['nhev']} | {r['fun']:.5f} | "
            f"{r['status']} |"
        )
    lines += [
        "",
        "## One SGD epoch, batch 64, 784-100-10 float32",
        "",
        "| what | seconds | cost after 2 epochs |",
        "|---|---|---|",
    ]
    for r in result["sgd_epoch"]:
        lines.append(f"| {r['what']} | {r['seconds']:.3f} | {fmt(r.get('fun'), '.5f')} |")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m", type=int, default=None, help="number of images (default 60000)")
    p.add_argument("--repeat", type=int, default=20, help="timed cost_grad calls (default 20)")
    p.add_argument("--maxiter", type=int, default=300, help="L-BFGS-B iterations (default 300)")
    p.add_argument("--gtol", type=float, default=1e-6, help="L-BFGS-B gtol (default 1e-6)")
    p.add_argument(
        "--newton-maxiter", type=int, default=50, help="Newton-CG iterations at most (default 50)"
    )
    p.add_argument("--xtol", type=float, default=1e-5, help="Newton-CG xtol (default 1e-5)")
    p.add_argument(
        "--no-cpu",
        dest="cpu",
        action="store_false",
        help="skip the CPU runs of the full-batch methods",
    )
    p.add_argument("--data", choices=("mnist", "random"), default="mnist")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    # runs everything but PyTorch through tests/stand_in_xp.py on the CPU: a smoke
    # test of this script on a machine without a GPU (its timings mean nothing)
    p.add_argument("--stand-in", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from flatnn import gpu
    from flatnn.base import namespace

    if args.stand_in:
        sys.path.insert(0, str(REPO / "tests"))
        import stand_in_xp

        namespace.register(stand_in_xp.ROOT, stand_in_xp.xp)
        xp, device, torch = (
            stand_in_xp.xp,
            "stand-in namespace on the CPU (smoke test)",
            "skipped (--stand-in)",
        )

        def sync():
            pass
    else:
        try:
            xp = gpu.require_cuda()
        except gpu.GPUUnavailable as exc:
            print(f"bench_gpu: no GPU: {exc}", file=sys.stderr)
            return 2
        device = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)["name"]
        device = device.decode() if isinstance(device, bytes) else str(device)
        torch = torch_cuda()

        def sync():
            xp.cuda.Device().synchronize()

    result = {
        "device": device,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "m": args.m or 60000,
        "data": args.data,
        "torch": torch if isinstance(torch, str) else torch.__version__,
    }
    result["cost_grad"] = part_cost_grad(xp, sync, args, torch)
    result["training"] = part_training(xp, args)
    result["sgd_epoch"] = part_sgd_epoch(xp, sync, args, torch)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("bench_gpu.json", json.dumps(result, indent=1)),
        ("bench_gpu.md", markdown(result)),
    ):
        tmp = args.out / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, args.out / name)
    print(markdown(result))
    print(f"wrote {args.out / 'bench_gpu.json'} and bench_gpu.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
