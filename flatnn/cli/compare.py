"""``flatnn compare``: the optimizer comparison of :mod:`flatnn.compare`.

The arguments after ``compare`` go to :func:`flatnn.compare.main` as they are
(its own parser, ``flatnn compare --help``); it reports bad input as one line
on stderr with exit status 2 and prints the run folder last.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

__all__ = ["add_parser", "run", "PASSTHROUGH"]

PASSTHROUGH = True
"""The arguments after ``compare`` are parsed by :func:`flatnn.compare.main`."""


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn compare`` to the command line's subparsers (for the list in --help)."""
    subparsers.add_parser(
        "compare",
        add_help=False,
        help="compare optimizers: each tuned on validation within a budget of passes, "
        "the best rerun with several seeds (flatnn compare --help)",
        description="All arguments go to flatnn.compare.main.",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run the comparison with ``args.argv``; its exit status (0, or 2 for bad input)."""
    from flatnn.compare.command import main

    return main(args.argv, out)
