"""``flatnn gradcheck``: backpropagation against finite differences on a random network."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import numpy as np

from flatnn.cli import common
from flatnn.cli import parser as types
from flatnn.core.gradcheck import check_grad
from flatnn.reports import scores

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn gradcheck`` and its options to the command line's subparsers."""
    parser = subparsers.add_parser(
        "gradcheck",
        help="check backpropagation against finite differences",
        description="Compare the analytic gradient of a random network on random data "
        "with fourth-order central differences in float64; print the worst "
        "relative error. Exit 1 if it exceeds --rtol.",
    )
    parser.add_argument(
        "--sizes",
        type=types.sizes,
        default=(5, 4, 3),
        metavar="N-N-...",
        help="layer sizes (default 5-4-3)",
    )
    parser.add_argument(
        "--hidden", default="sigmoid", help="hidden activation(s) (default sigmoid)"
    )
    parser.add_argument("--output", help="output activation (default softmax / sigmoid)")
    parser.add_argument("--loss", default="cross_entropy", help="default cross_entropy")
    parser.add_argument(
        "--lam", type=types.float_in(0), default=0.1, help="L2 strength (default 0.1)"
    )
    parser.add_argument(
        "--samples", type=types.positive_int, default=8, help="random samples (default 8)"
    )
    parser.add_argument(
        "--coords",
        type=types.positive_int,
        metavar="N",
        help="check only N random coordinates (default all)",
    )
    parser.add_argument("--seed", type=types.seed, default=0, help="seed (default 0)")
    parser.add_argument(
        "--rtol",
        type=types.float_in(0),
        default=1e-6,
        help="largest acceptable relative error (default 1e-6)",
    )
    types.add_threads_option(parser)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``flatnn gradcheck``; return the exit status (1 above ``--rtol``)."""
    net = common.network(args.sizes, args.hidden, args.output, args.loss)
    # float64: the parameters, the analytic and the numerical gradient, a perturbed copy
    common.check_memory(
        net,
        8,
        5,
        args.samples,
        f"checking their gradient on {args.samples} samples",
        "Use smaller layers or fewer --samples.",
    )
    rng = np.random.default_rng(args.seed)
    X = rng.normal(size=(args.samples, net.sizes[0]))
    k = net.sizes[-1]
    y = rng.integers(0, max(k, 2), size=args.samples)
    params = net.init(rng)
    result = check_grad(net, params, X, y, args.lam, n_coords=args.coords, rng=rng)
    layer, r, c = scores.locate_parameter(net, result.worst_index)
    ok = result.ok(args.rtol)
    print(
        f"{net!r}, lam {args.lam:g}, {args.samples} samples: max relative error "
        f"{result.max_rel_error:.3g} at params[{result.worst_index}] (layer {layer}, "
        f"theta[{r}, {c}]) over {len(result.indices)} coordinates; "
        f"{'OK' if ok else 'FAILED'} (rtol {args.rtol:g})",
        file=out,
    )
    return 0 if ok else 1
