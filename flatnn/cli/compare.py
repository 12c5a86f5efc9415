"""``flatnn compare``: the optimizer comparison (experiments/compare_optimizers.py).

A thin stand-in until the comparison lives in the package (:mod:`flatnn.compare`):
it runs the script of a source checkout, passing every argument through.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

from flatnn.cli.parser import CLIError

__all__ = ["add_parser", "run", "compare_script", "PASSTHROUGH"]

PASSTHROUGH = True
"""The arguments after ``compare`` are not parsed here: they arrive as ``args.argv``."""


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn compare`` to the command line's subparsers (for the list in --help)."""
    subparsers.add_parser(
        "compare",
        add_help=False,
        help="run the optimizer comparison "
        "(experiments/compare_optimizers.py; needs a source checkout)",
        description="All arguments go to experiments/compare_optimizers.py.",
    )


def compare_script() -> Path:
    """The path of experiments/compare_optimizers.py in the source checkout."""
    return Path(__file__).resolve().parents[2] / "experiments" / "compare_optimizers.py"


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run the comparison script with ``args.argv``; its exit status."""
    script = compare_script()
    if not script.is_file():
        raise CLIError(
            f"flatnn compare runs {script}, which is missing: it needs a source "
            f"checkout of flatnn (pip install -e <checkout>)"
        )
    # argv[0] "flatnn compare": argparse names the program after it in usage and --help
    # (runpy would set argv[0] back to the script's path)
    launcher = (
        "import os, sys; path = sys.argv.pop(1); sys.argv[0] = 'flatnn compare'; "
        "sys.path[0] = os.path.dirname(path); "
        "code = compile(open(path, 'rb').read(), path, 'exec'); "
        "exec(code, {'__name__': '__main__', '__file__': path})"
    )
    try:
        return subprocess.call([sys.executable, "-c", launcher, str(script), *args.argv])
    except KeyboardInterrupt:  # the child got the Ctrl-C too and reports on its own
        return 130
