"""``flatnn compare``: the command line of :func:`flatnn.compare.compare`.

:func:`add_arguments` fills a parser, :func:`run` runs parsed arguments and
:func:`main` does both; ``flatnn compare`` and ``python -m flatnn.compare``
call them. Bad input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from flatnn.compare.plots import have_matplotlib, write_plots
from flatnn.compare.problems import NAMES
from flatnn.compare.results import write_results
from flatnn.compare.runner import Settings, compare

__all__ = ["DESCRIPTION", "add_arguments", "parser", "run", "main", "default_folder"]

DESCRIPTION = (
    "Compare optimizers under one protocol: each method's learning rate tuned on a "
    "log-spaced grid (seed 0) within a budget in passes over the data, the best point "
    "rerun with several seeds; results, summary and plots into a run folder."
)


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _grid(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LOW:HIGH such as 1e-4:1, got {text!r}"
        ) from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"expected 0 < LOW <= HIGH, got {text!r}")
    return low, high


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``flatnn compare``'s options to ``parser``."""
    parser.add_argument(
        "--problem",
        type=_names,
        action="extend",
        help=f"comma-separated problems: {', '.join(NAMES)}, or module:attr naming a "
        "flatnn.compare.Problem (or a function returning one); repeatable",
    )
    parser.add_argument(
        "--methods",
        type=_names,
        default=None,
        help="comma-separated methods: SGD rules (sgd, momentum, ...), scipy methods "
        "(L-BFGS-B, ...) or module:attr (a rule or a minimize-like callable); default: all",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="passes over the data per run (default: per problem)",
    )
    parser.add_argument(
        "--grid-points", type=int, default=None, help="learning rates per method (7; quick 3)"
    )
    parser.add_argument(
        "--grid",
        type=_grid,
        default=None,
        metavar="LOW:HIGH",
        help="one learning-rate range for all",
    )
    parser.add_argument(
        "--seeds", type=int, default=None, help="seeds of the best point (5; quick 2)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder (default: a new folder here); reuse to resume",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small data and budgets, 3 grid points, 2 seeds (tests)",
    )
    parser.add_argument(
        "--eval-share",
        type=float,
        default=0.005,
        help="share of the budget the validation checkpoints may cost (0.005); more "
        "checkpoints resolve the time to target finer, at that overhead",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG files")


def _package_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def default_folder(problems: list[str], cwd: Path | None = None) -> Path:
    """A new run folder: ``./flatnn-compare-<problems>-<time>``, or in tmp inside a source tree.

    Inside flatnn's own source tree (the folder above the package, when it
    holds ``pyproject.toml``) the folder goes to the temporary directory, so
    that a run never writes into the source tree.
    """
    cwd = Path.cwd() if cwd is None else cwd
    tag = "-".join(p.replace(":", ".") for p in problems)[:60]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    source = _package_dir().parent
    if (source / "pyproject.toml").exists() and _inside(cwd, source):
        return Path(tempfile.mkdtemp(prefix=f"flatnn-compare-{tag}-{stamp}-"))
    base = cwd / f"flatnn-compare-{tag}-{stamp}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def _settings(args: Any) -> Settings:
    return Settings(
        budget=args.budget,
        grid_points=args.grid_points,
        grid_range=args.grid,
        seeds=args.seeds,
        eval_share=args.eval_share,
        quick=args.quick,
    )


def run(args: Any, out: TextIO | None = None) -> int:
    """Run parsed arguments; print a line per run, the files, and the folder last.

    Returns 0. Raises ValueError/TypeError/FileNotFoundError for bad input.
    """
    out = sys.stdout if out is None else out
    problems = args.problem or ["xor"]
    settings = _settings(args)
    folder = args.out if args.out is not None else default_folder(problems)
    if _inside(folder, _package_dir()):
        raise ValueError(f"--out {folder} is inside the flatnn package; choose another folder")
    try:
        results = compare(
            problems,
            args.methods,
            folder=folder,
            settings=settings,
            progress=lambda line: print(line, file=out, flush=True),
        )
    except KeyboardInterrupt:
        if folder.exists():
            print(f"finished runs are in {folder}; rerun with --out {folder} to resume", file=out)
        raise
    for name, problem in results["problems"].items():
        for line in problem["skipped"]:
            print(f"{name}: skipped {line}", file=out)
    files = write_results(results, folder)
    if not args.no_plots:
        if have_matplotlib():
            files += write_plots(results, folder)
        else:
            print("plots skipped: matplotlib is not installed (pip install flatnn[plot])", file=out)
    budgets = ", ".join(
        f"{name} {next(iter(p['methods'].values()))['budget_passes']:g}"
        for name, p in results["problems"].items()
        if p["methods"]
    )
    print(
        f"protocol: budget in passes per run ({budgets}), learning-rate grid of "
        f"{settings.n_points} log-spaced points (seed 0), best point x {settings.n_seeds} seeds; "
        f"wrote {', '.join(p.name for p in files)}",
        file=out,
    )
    print(f"{folder}", file=out)
    return 0


class _Usage(Exception):
    """A usage error of the command line (reported as one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Usage(f"{message} (see '{self.prog} --help')")


def parser() -> argparse.ArgumentParser:
    """The parser of ``flatnn compare`` (its usage errors raise instead of exiting)."""
    p = _Parser(prog="flatnn compare", description=DESCRIPTION)
    add_arguments(p)
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``flatnn compare`` as a function: parse ``argv``, run, return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after ``compare`` (default ``sys.argv[1:]``).
    out : text stream, optional
        Where the progress lines and the folder go (default ``sys.stdout``).

    Returns
    -------
    int
        0 on success (``--help`` included); 2 for bad input, reported as one line on
        stderr, never a traceback.
    """
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else list(argv))
        return run(args, out)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except (_Usage, ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        message = " ".join(str(exc).split())  # one line, also for multi-line messages
        print(f"flatnn compare: error: {message}", file=sys.stderr)
        return 2
