"""Training progress on stderr: a bar fitted to the terminal, and one line per epoch.

On a terminal, a ``tqdm`` bar over the whole run (every batch of every epoch, or
every scipy iteration) shows the cost and the time remaining, fitted to the
terminal's width as it is now; each finished epoch leaves one line above it,
shortened to that width. When stderr is not a terminal (a log file, a pipe),
each epoch is one plain line and nothing else is written. ``--quiet``: nothing.
The first Ctrl-C sets a flag that stops the run at the next batch.

The library reports progress through the training callbacks only; this module
turns those calls into text.
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType
from typing import Any, TextIO

__all__ = ["Progress", "sigint_handler", "fit_fields", "terminal_width"]


def terminal_width(stream: TextIO, default: int = 80) -> int:
    """Columns of the terminal ``stream`` writes to (``default`` when it cannot be told)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or default
    except (AttributeError, OSError, ValueError):
        return default


def fit_fields(fields: list[str], width: int, keep: int = 2) -> str:
    """Join ``fields`` with two spaces, dropping fields from the end to fit in ``width - 1``.

    The first ``keep`` fields always stay; if even they do not fit, the line is cut.
    """
    while len(fields) > keep and len("  ".join(fields)) >= width:
        fields = fields[:-1]
    return "  ".join(fields)[: max(width - 1, 1)]


class Progress:
    """The progress of one training run, on ``stream`` (stderr).

    ``on_batch`` is :func:`flatnn.sgd`'s ``batch_callback`` and ``on_step`` the
    per-epoch (or per-iteration) ``callback``; after Ctrl-C either raises
    ``StopIteration``, which makes the training path return its best result.

    Parameters
    ----------
    stream : text stream
        Where the bar and the lines go.
    n_batches : int
        Batches per epoch (1 for a scipy method: the bar counts iterations).
    total : int
        Epochs, or the scipy method's iteration limit.
    quiet : bool
        No bar and no lines (the Ctrl-C flag still works).
    """

    def __init__(self, stream: TextIO, n_batches: int, total: int, quiet: bool) -> None:
        self.stream = stream
        self.n_batches = n_batches
        self.total = total
        self.quiet = quiet
        self.interrupted = False
        self.epoch_start = time.perf_counter()
        self.width = len(str(total))
        self.steps = 0  # epochs or iterations reported so far
        self.bar: Any = None
        if not quiet and _isatty(stream):
            self.bar = _make_bar(stream, n_batches * total)

    def write(self, line: str) -> None:
        """One line above the bar (fitted to the terminal), or a plain line."""
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def on_sigint(self, signum: int, frame: FrameType | None) -> None:
        """The SIGINT handler: the first Ctrl-C stops after this batch, the second aborts."""
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.write(
            "interrupted: stopping after this batch and saving the best model so far "
            "(Ctrl-C again to abort without saving)"
        )

    def on_batch(self, intermediate_result: Any) -> None:
        """``batch_callback``: the bar, and the stop after Ctrl-C."""
        if self.interrupted:
            raise StopIteration
        if self.bar is not None:
            r = intermediate_result
            self.bar.set_description_str(
                f"epoch {r.epoch + 1}/{self.total} cost {r.fun:.4f}", refresh=False
            )
            self.bar.update(1)

    def clear(self) -> None:
        """Remove the bar (at the end of the run, or before the last lines)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_step(self, intermediate_result: Any) -> None:
        """The training callback: one line per epoch (SGD) or iteration (scipy)."""
        r = intermediate_result
        now = time.perf_counter()
        self.steps += 1
        if not self.quiet:
            fields = self.fields(r, now - self.epoch_start)
            if self.bar is not None:
                if "epoch" not in r:  # scipy: the bar counts iterations
                    self.bar.set_description_str(f"iter {r.nit} cost {r.fun:.4f}", refresh=False)
                    self.bar.update(1)
                self.write(fit_fields(fields, terminal_width(self.stream)))
            else:
                self.write("  ".join(fields))
        self.epoch_start = now
        if self.interrupted:
            raise StopIteration

    def fields(self, r: Any, seconds: float) -> list[str]:
        """The parts of an epoch's line, most important first."""
        if "epoch" in r:
            head = f"epoch {r.epoch + 1:>{self.width}}/{self.total}"
            tail = [f"lr {r.learning_rate:<9.4g}", f"{seconds:6.1f}s"]
        else:
            head = f"iter {r.nit:>{self.width}}"
            tail = [f"nfev {r.nfev:<6d}", f"{r.seconds:7.1f}s"]
        fields = [head, f"cost {r.fun:9.4f}"]
        if "val_cost" in r:
            fields += [f"val_acc {100 * r.val_accuracy:6.2f}%", f"val_cost {r.val_cost:9.4f}"]
        return fields + tail


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def _make_bar(stream: TextIO, total: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # plain lines without it
        return None
    return tqdm(
        total=total,
        file=stream,
        dynamic_ncols=True,  # the terminal's width at each redraw
        leave=False,
        unit="batch",
        mininterval=0.1,
        # the time remaining before the bar's decorations: a narrow terminal cuts from the right
        bar_format="{desc} {remaining} left {percentage:3.0f}%|{bar}|",
    )


class sigint_handler:
    """Context manager installing a SIGINT handler (main thread only), restoring the previous."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.previous: Any = None

    def __enter__(self) -> sigint_handler:
        try:
            self.previous = signal.signal(signal.SIGINT, self.handler)
        except ValueError:  # not the main thread: keep the default behaviour
            self.previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
