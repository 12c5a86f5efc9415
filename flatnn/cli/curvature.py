"""``flatnn curvature``: the top Hessian eigenvalues and the trace of a saved model."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from flatnn import curvature
from flatnn.base import checks
from flatnn.cli import common
from flatnn.cli import parser as types
from flatnn.cli.parser import CLIError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn curvature`` and its options to the command line's subparsers."""
    parser = subparsers.add_parser(
        "curvature",
        help="top Hessian eigenvalues and trace of a saved model",
        description="The top eigenvalues (Lanczos) and the trace (Hutch++) of the Hessian, or "
        "of the Gauss-Newton matrix, of a saved model's training objective on its data set "
        "(taken from the model file; --dataset overrides), from exact curvature products.",
    )
    types.add_model_data_options(parser, split="train")
    parser.add_argument(
        "--subset",
        type=types.positive_int,
        default=10000,
        metavar="N",
        help="use N rows of the split drawn by --seed (default 10000; all when fewer)",
    )
    parser.add_argument("-k", type=types.positive_int, default=3, help="eigenvalues (default 3)")
    parser.add_argument(
        "--curvature",
        choices=curvature.CURVATURES,
        default="hessian",
        help="the matrix (default hessian)",
    )
    parser.add_argument(
        "--lam", type=types.float_in(0), help="L2 strength (default: the model's, else 0)"
    )
    parser.add_argument(
        "--trace-products",
        type=types.positive_int,
        default=100,
        metavar="N",
        help="curvature products for the trace estimate (default 100, at least 3)",
    )
    parser.add_argument("--seed", type=types.seed, default=0, help="seed (default 0)")
    types.add_data_options(parser)
    types.add_threads_option(parser)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``flatnn curvature``; return the exit status."""
    net, params, meta = common.load_model(args.model)
    dataset, data = common.model_data(args, net, params.dtype, meta)
    X, y = data["X_" + args.split], data["y_" + args.split]
    if len(y) == 0:
        raise CLIError(f"the {args.split} split of {dataset} is empty; choose another --split")
    lam = args.lam if args.lam is not None else float(meta.get("lam", 0.0))
    if args.k >= net.n_params:
        raise CLIError(f"-k must be below the model's {net.n_params} parameters, got {args.k}")
    if args.trace_products < 3:
        raise CLIError(f"--trace-products must be at least 3 (Hutch++), got {args.trace_products}")
    rows = min(args.subset, len(y))
    try:
        values, _ = curvature.eigs(
            net, params, X, y, lam, k=args.k, curvature=args.curvature, rng=args.seed,
            subset=rows,
        )  # fmt: skip
        total = curvature.trace(
            net,
            params,
            X,
            y,
            lam,
            curvature=args.curvature,
            n_products=args.trace_products,
            rng=args.seed,
            subset=rows,
        )
    except checks.NotFiniteError as exc:
        raise common.unusable_model(args.model, params, exc) from None
    matrix = "Hessian" if args.curvature == "hessian" else "Gauss-Newton matrix"
    print(
        f"{args.model}: {net!r} on {dataset} {args.split} ({rows} of {len(y)} samples, "
        f"seed {args.seed}), lam {lam:g}",
        file=out,
    )
    print(f"top {args.k} eigenvalues of the {matrix}: " + ", ".join(f"{v:.6g}" for v in values),
          file=out)  # fmt: skip
    print(f"trace (Hutch++, {args.trace_products} products): {total:.6g}", file=out)
    return 0
