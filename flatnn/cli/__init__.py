"""The ``flatnn`` command line: parse, call the library, print.

:func:`main` is the console script's entry point and ``python -m flatnn``'s. It
imports the commands (and with them NumPy and SciPy, about half a second) only
after it has taken charge of Ctrl-C, so an interrupt at any moment of start-up
exits 130 with one line, never a traceback.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence

__all__ = ["main", "EXIT_INTERRUPTED"]

EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; exit 130 without a traceback on Ctrl-C.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status (README's table).
    """
    try:
        run = _import_commands()
    except BaseException as exc:
        # A Ctrl-C inside an extension module's initialisation comes back as
        # "ImportError: initialization failed" caused by the KeyboardInterrupt.
        if not _caused_by_ctrl_c(exc):
            raise
        sys.stderr.write("flatnn: interrupted\n")
        return EXIT_INTERRUPTED
    try:
        return run(argv)
    except KeyboardInterrupt:  # between the commands' own handlers and here
        sys.stderr.write("flatnn: interrupted\n")
        return EXIT_INTERRUPTED


def _import_commands() -> Callable[[Sequence[str] | None], int]:
    # SIGINT is held back while NumPy and SciPy load: a KeyboardInterrupt inside
    # an extension module's initialisation can surface as an unrelated ImportError
    # ('PyCapsule_Import could not import module "datetime"') with no trace of the
    # Ctrl-C. Unblocking delivers a pending SIGINT at once, as a KeyboardInterrupt
    # raised by pthread_sigmask itself, after the imports are complete.
    block = getattr(signal, "pthread_sigmask", None)
    if block is not None:
        block(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        from flatnn.cli.app import run
    finally:
        if block is not None:
            block(signal.SIG_UNBLOCK, {signal.SIGINT})
    return run


def _caused_by_ctrl_c(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
