"""Where splitting rows over threads starts to pay: ``cost_grad`` on m rows, 1 block vs n.

For each network and batch size ``m`` this times, interleaved, in one process:

* ``one``: one block on the calling thread, BLAS as the process has it (what
  :mod:`flatnn.threads` does below its threshold);
* ``split``: ``n`` row blocks on ``n`` threads with a one-thread BLAS each (the
  threshold is lowered to 1 row for the measurement).

Each is timed in blocks of calls (the first 0.3 s of a block are not timed),
three blocks each, alternating; the median of the blocks' medians is reported,
and the ratio ``split / one``.
Data: uniform random pixels (the timing does not depend on the values).

Usage::

    OPENBLAS_CORETYPE=SkylakeX flock /tmp/flatnn-cpu.lock python experiments/bench_threshold.py \\
        | tee experiments/results/bench_threshold.txt
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import flatnn
from flatnn import threads

NETS = {
    "784-30-10 sigmoid": ((784, 30, 10), "sigmoid"),
    "784-100-10 sigmoid": ((784, 100, 10), "sigmoid"),
    "784-256-128-64-10 relu": ((784, 256, 128, 64, 10), "relu"),
}
SIZES = (128, 512, 1024, 2048, 3072, 4096, 6144, 8192, 16384)


def median_time(fn, repeat, warmup=0.3):
    """Median of ``repeat`` calls after ``warmup`` seconds of untimed ones.

    The warm-up matters: OpenBLAS's own threads keep spinning for about 0.1 s
    after a multi-threaded BLAS call (the ``one`` runs), and split calls made
    in that time share the cores with them (1.4-1.8x slower here). This
    measures the steady state of each mode.
    """
    t_end = time.perf_counter() + warmup
    while time.perf_counter() < t_end:
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=threads.available_cores())
    p.add_argument(
        "--dtype", choices=("float32", "float64"), nargs="+", default=["float64", "float32"]
    )
    p.add_argument("--repeat", type=int, default=41)
    p.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    args = p.parse_args()
    threads.MIN_ROWS_PER_THREAD = 1
    rng = np.random.default_rng(0)
    for dtype in map(np.dtype, args.dtype):
        print(
            f"{dtype.name}, {args.threads} threads, median of {args.repeat}; "
            f"'one' = 1 block, BLAS as configured; 'split' = {args.threads} blocks"
        )
        print(f"{'network':24s} {'m':>6s} {'one ms':>9s} {'split ms':>9s} {'split/one':>9s}")
        for name, (sizes, hidden) in NETS.items():
            net = flatnn.Network(sizes, hidden=hidden)
            params = net.init(0, dtype=dtype)
            for m in args.sizes:
                X = rng.random((m, sizes[0]), dtype=dtype)
                y = rng.integers(0, sizes[-1], m)

                def one():
                    with threads.using(1):
                        net.cost_grad(params, X, y)

                def split():
                    with threads.using(args.threads):
                        net.cost_grad(params, X, y)

                t_one, t_split = [], []
                for _ in range(3):  # alternate so that a busy neighbour slows both
                    t_one.append(median_time(one, args.repeat // 3 + 1))
                    t_split.append(median_time(split, args.repeat // 3 + 1))
                a, b = statistics.median(t_one), statistics.median(t_split)
                print(f"{name:24s} {m:6d} {a * 1e3:9.3f} {b * 1e3:9.3f} {b / a:9.2f}", flush=True)


if __name__ == "__main__":
    main()
