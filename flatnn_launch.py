"""The ``flatnn`` console script's entry point.

It lives outside the ``flatnn`` package on purpose: importing anything inside
the package first imports NumPy and SciPy (about half a second), and a Ctrl-C
in that time would print a ``KeyboardInterrupt`` traceback from the generated
script. Here the import is inside a ``try``, so it exits 130 with one line,
like a Ctrl-C at any later moment.
"""

import signal
import sys

EXIT_INTERRUPTED = 130


def main():
    """Import the command line and run it; exit 130 without a traceback on Ctrl-C."""
    try:
        cli_main = _import_cli()
    except BaseException as exc:
        # A Ctrl-C inside an extension module's initialisation comes back as
        # "ImportError: initialization failed" caused by the KeyboardInterrupt.
        if not _caused_by_ctrl_c(exc):
            raise
        sys.stderr.write("flatnn: interrupted\n")
        return EXIT_INTERRUPTED
    try:
        return cli_main()
    except KeyboardInterrupt:  # between cli.main's own handlers and here
        sys.stderr.write("flatnn: interrupted\n")
        return EXIT_INTERRUPTED


def _import_cli():
    # SIGINT is held back while NumPy and SciPy load: a KeyboardInterrupt inside
    # an extension module's initialisation can surface as an unrelated ImportError
    # ('PyCapsule_Import could not import module "datetime"') with no trace of the
    # Ctrl-C. Unblocking delivers a pending SIGINT at once, as a KeyboardInterrupt
    # raised by pthread_sigmask itself, after the imports are complete.
    block = getattr(signal, "pthread_sigmask", None)
    if block is not None:
        block(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        from flatnn.cli import main as cli_main
    finally:
        if block is not None:
            block(signal.SIG_UNBLOCK, {signal.SIGINT})
    return cli_main


def _caused_by_ctrl_c(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
