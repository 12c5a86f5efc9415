"""The ``flatnn`` console script's entry point.

It lives outside the ``flatnn`` package on purpose: importing anything inside
the package first imports NumPy and SciPy (about half a second), and a Ctrl-C
in that time would print a ``KeyboardInterrupt`` traceback from the generated
script. Here the import is inside a ``try``, so it exits 130 with one line,
like a Ctrl-C at any later moment.
"""

import sys

EXIT_INTERRUPTED = 130


def main():
    """Import the command line and run it; exit 130 without a traceback on Ctrl-C."""
    try:
        from flatnn.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("flatnn: interrupted\n")
        return EXIT_INTERRUPTED
    try:
        return cli_main()
    except KeyboardInterrupt:  # between cli.main's own handlers and here
        sys.stderr.write("flatnn: interrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
