"""The command line's parser: argument types shared by the commands, and the one error type.

Every command module (:mod:`flatnn.cli.commands` lists them) adds its own
subparser with ``add_parser(subparsers)``; the types here turn a flag's text
into a value or into an :class:`argparse.ArgumentTypeError` naming what was
expected, which the parser reports as one line (exit status 2).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NoReturn

from flatnn import datasets
from flatnn.training import SCIPY_METHODS, rules

__all__ = [
    "CLIError",
    "ArgumentParser",
    "METHODS",
    "DATASETS",
    "DATA_HELP",
    "LIMIT_HELP",
    "sizes",
    "positive_int",
    "seed",
    "float_in",
    "method",
    "dataset",
    "add_threads_option",
    "add_data_options",
    "add_model_argument",
    "add_model_data_options",
]

DATASETS = datasets.NAMES
METHODS = tuple(rules.RULES) + tuple(SCIPY_METHODS)

DATA_HELP = (
    "folder holding one subfolder per data set (mnist/, fashion-mnist/), like "
    "$FLATNN_DATA; or the folder holding the files themselves"
)
LIMIT_HELP = (
    "use only the first N samples of each split: a quick smoke run (the full data when omitted)"
)


class CLIError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors become :class:`CLIError`."""

    def error(self, message: str) -> NoReturn:
        """Raise the usage error as a :class:`CLIError` (one line, exit status 2)."""
        raise CLIError(f"{message} (see '{self.prog} --help')")


def sizes(text: str) -> tuple[int, ...]:
    """Layer sizes from ``784-256-10`` (or ``784,256,10``)."""
    parts = text.replace(",", "-").split("-")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layer sizes like 784-256-10, got {text!r}"
        ) from None
    if len(values) < 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected at least two sizes >= 1 like 784-256-10, got {text!r}"
        )
    return values


def _integer_at_least(text: str, low: int, integer: str, bounded: str) -> int:
    """``text`` as an integer >= ``low``; the errors say ``expected {integer}`` or
    ``expected {bounded} >= {low}``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {integer}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {bounded} >= {low}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _integer_at_least(text, 1, "an integer", "an integer")


def seed(text: str) -> int:
    """A seed: an integer >= 0."""
    return _integer_at_least(text, 0, "an integer seed", "a seed")


def float_in(
    low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """A parser of finite numbers in the interval from ``low`` to ``high``.

    Parameters
    ----------
    low, high : float
        The bounds.
    low_open, high_open : bool
        Whether the bound itself is excluded; the error names the interval as
        ``[low, high]``, ``(low, high]``, ``[low, high)`` or ``(low, high)``.
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        above = low < value if low_open else low <= value
        below = value < high if high_open else value <= high
        if not (above and below) or math.isnan(value) or math.isinf(value):
            interval = (
                f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
                if math.isfinite(high)
                else f"{'(' if low_open else '['}{low:g}, inf)"
            )
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
        return value

    return parse


def method(text: str) -> str:
    """An update rule or scipy method name, case-insensitive."""
    for name in METHODS:
        if text.lower() == name.lower():
            return name
    raise argparse.ArgumentTypeError(
        f"unknown method {text!r}; expected one of {', '.join(METHODS)}"
    )


def dataset(text: str) -> str:
    """A built-in data set's name."""
    if text not in DATASETS:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {text!r}; expected one of {', '.join(DATASETS)}"
        )
    return text


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads N`` (threads of the full-batch evaluations) to a command."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="threads for full-batch evaluations (default: "
        "$FLATNN_NUM_THREADS, else every core this process may use)",
    )


def add_data_options(parser: argparse.ArgumentParser, **limit: Any) -> None:
    """Add ``--data-dir``, ``--no-download`` and ``--limit`` to a command."""
    parser.add_argument("--data-dir", metavar="DIR", help=DATA_HELP)
    parser.add_argument(
        "--no-download", action="store_true", help="fail instead of downloading missing data files"
    )
    parser.add_argument("--limit", type=positive_int, metavar="N", help=LIMIT_HELP, **limit)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """Add the positional ``MODEL``: a model file written by ``flatnn train``."""
    parser.add_argument("model", metavar="MODEL", help="a model file written by flatnn train")


def add_model_data_options(parser: argparse.ArgumentParser, split: str) -> None:
    """Add ``MODEL``, ``--dataset`` and ``--split`` (default ``split``) to a command.

    The arguments of a command that applies a saved model to a built-in data set
    (the one its file records unless ``--dataset`` names another), read by
    :func:`flatnn.cli.common.model_data`.
    """
    add_model_argument(parser)
    parser.add_argument(
        "--dataset", type=dataset, help=f"one of {', '.join(DATASETS)} (default: the model's)"
    )
    splits = ("train", "val", "test")
    parser.add_argument("--split", choices=splits, default=split, help=f"default {split}")
