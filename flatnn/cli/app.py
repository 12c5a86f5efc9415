"""The ``flatnn`` command line: the list of commands, and the one place errors become exit statuses.

``flatnn COMMAND --help`` describes each command. Each command is a module of
:mod:`flatnn.cli` listed in :data:`COMMANDS`, exposing
``add_parser(subparsers) -> None`` and ``run(args, out) -> int``; a module may set
``INTERMIXED = True`` (options among its positional arguments) or
``PASSTHROUGH = True`` (its arguments unparsed, as ``args.argv``) or
``WRITES_FILE = True`` (its product is a file: a stdout that cannot be written
is reported but does not change its exit status; for the other commands the
lost output is exit status 2).

Exit status (README's table): 0 on success, 1 when ``gradcheck`` finds an error
above ``--rtol`` or training diverged (the message says what to change), 2 for
bad input (one line on stderr, never a traceback), 130 when stopped with Ctrl-C.

The command modules are the only modules of flatnn that print; the library
reports progress through the training callback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from flatnn.base import threads
from flatnn.cli.output import Output
from flatnn.cli.parser import ArgumentParser, CLIError

__all__ = ["COMMANDS", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED", "run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

COMMANDS = (
    "train",
    "evaluate",
    "predict",
    "info",
    "export",
    "plot",
    "gradcheck",
    "compare",
    "curvature",
)
"""The command modules of :mod:`flatnn.cli`, in the order ``flatnn --help`` lists them."""


def command_module(name: str) -> ModuleType:
    """The module of command ``name`` (one of :data:`COMMANDS`)."""
    return importlib.import_module(f"flatnn.cli.{name}")


class _Version(argparse.Action):
    """``--version``: flatnn's version and those of what it runs on (NumPy, SciPy, BLAS)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        from flatnn.reports import environment

        for name, version in environment.versions().items():
            print(f"{name} {version}" if name == "flatnn" else f"{name}: {version}")
        parser.exit()


def build_parser() -> tuple[ArgumentParser, dict[str, Any]]:
    """The top-level parser, and each command's subparser by name."""
    parser = ArgumentParser(
        prog="flatnn",
        description="Multilayer perceptrons on one flat parameter vector.",
        epilog="Exit status: 0 ok, 1 gradcheck failed or training diverged, 2 bad input, 130 "
        "stopped by Ctrl-C (model saved). Data: $FLATNN_DATA/<dataset>/ or --data-dir.",
    )
    parser.add_argument(
        "--version",
        action=_Version,
        nargs=0,
        help="print the versions of flatnn, Python, NumPy, SciPy and the BLAS, and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    for name in COMMANDS:
        command_module(name).add_parser(sub)
    return parser, dict(sub.choices)


class _log_to_stderr:
    """Show the library's log messages (data downloads) on stderr as "flatnn: ..." lines.

    A context manager: the handler and level are removed again when the command
    ends, so that calling ``main`` in a process leaves its logging as it was.
    """

    def __init__(self, quiet: bool) -> None:
        self.logger = logging.getLogger("flatnn")
        self.level = logging.WARNING if quiet else logging.INFO

        class Stderr(logging.StreamHandler):
            # sys.stderr as it is when each message comes, not when main started
            stream = property(lambda self: sys.stderr, lambda self, value: None)

        self.handler = Stderr()
        self.handler.setFormatter(logging.Formatter("flatnn: %(message)s"))

    def __enter__(self) -> _log_to_stderr:
        self.previous = self.logger.level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(self.level)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.previous)


def parse(argv: list[str]) -> argparse.Namespace:
    """The parsed arguments of one command line (``args.command`` names the command)."""
    if argv and argv[0] in COMMANDS and getattr(command_module(argv[0]), "PASSTHROUGH", False):
        return argparse.Namespace(command=argv[0], argv=argv[1:])
    parser, subparsers = build_parser()
    if argv and argv[0] in subparsers and getattr(command_module(argv[0]), "INTERMIXED", False):
        args = subparsers[argv[0]].parse_intermixed_args(argv[1:])
        args.command = argv[0]
    else:
        args = parser.parse_args(argv)
    return args


def _check_thread_variable() -> None:
    """A one-line error for a FLATNN_NUM_THREADS that is not an integer >= 1."""
    try:
        threads.get_num_threads()
    except ValueError as exc:
        raise CLIError(f"{exc} (unset it, or pass --threads N)") from None


def run(argv: Sequence[str] | None = None) -> int:
    """Run the ``flatnn`` command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 gradcheck above ``--rtol`` or training diverged, 2 bad input, 130 Ctrl-C.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse(argv)
        if getattr(args, "threads", None) is None:
            _check_thread_variable()
        module = command_module(args.command)
        out = Output(sys.stdout)
        with (
            threads.using(getattr(args, "threads", None)),
            _log_to_stderr(quiet=getattr(args, "quiet", False)),
        ):
            code: int = module.run(args, out)
        if out.report() and code == EXIT_OK and not getattr(module, "WRITES_FILE", False):
            code = EXIT_USAGE
        return code
    except CLIError as exc:
        print(f"flatnn: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("flatnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        # the commands estimate what they need first; this is the backstop
        print(
            "flatnn: error: out of memory; use smaller layers, --batch-size or --limit",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except BrokenPipeError:
        # the reader went away (flatnn evaluate ... | head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
