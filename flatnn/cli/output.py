"""Standard output that cannot be written (``> /dev/full``, closed with ``>&-``) stops no command.

A command's results go to stdout. When stdout fails, the command still does its
work (``flatnn train`` still saves its model) and the failure is told once, on
stderr, at the end: :class:`Output` remembers the first error instead of raising
it. A reader that went away (``flatnn evaluate ... | head``) is different: the
``BrokenPipeError`` still ends the command quietly.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

__all__ = ["Output"]


class Output:
    """A text stream over ``stream`` whose write errors are kept in :attr:`error`.

    Parameters
    ----------
    stream : text stream or None
        ``sys.stdout``; None when the process started with stdout closed.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.error: str | None = None

    def _guard(self, text: str | None) -> None:
        if self.error is not None:
            return
        if self.stream is None:
            self.error = "it is closed"
            return
        try:
            if text is None:
                self.stream.flush()
            else:
                self.stream.write(text)
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:  # ValueError: "I/O operation on closed file"
            self.error = str(exc).strip() or type(exc).__name__
            self._discard()

    def _discard(self) -> None:
        # what is still buffered would fail again when Python flushes stdout at exit
        try:
            fileno = self.stream.fileno() if self.stream is not None else -1
        except (OSError, ValueError):
            return
        if fileno >= 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fileno)
            os.close(devnull)

    def write(self, text: str) -> int:
        """Write ``text``; after a failure, drop it."""
        self._guard(text)
        return len(text)

    def flush(self) -> None:
        """Flush; a failure is kept, not raised."""
        self._guard(None)

    def isatty(self) -> bool:
        """Whether the stream is a terminal (False once it failed or when it is closed)."""
        if self.error is not None or self.stream is None:
            return False
        try:
            return self.stream.isatty()
        except (OSError, ValueError):
            return False

    def report(self) -> bool:
        """Flush, and say on stderr if the output was lost; whether it was."""
        self.flush()
        if self.error is None:
            return False
        print(f"flatnn: cannot write the output to stdout: {self.error}", file=sys.stderr)
        return True
