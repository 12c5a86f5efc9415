"""Training progress as lines: one per epoch (or scipy iteration), a bar within the epoch on
terminals, and the Ctrl-C flag that stops a run at the next batch.

The library reports progress through the training callbacks only; this module
turns those calls into text.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import Any, TextIO

__all__ = ["Progress", "sigint_handler"]


class Progress:
    """Per-epoch lines, an in-epoch bar on terminals, and the Ctrl-C flag.

    ``on_batch`` is :func:`flatnn.sgd`'s ``batch_callback`` and ``on_step`` the
    per-epoch (or per-iteration) ``callback``; after Ctrl-C either raises
    ``StopIteration``, which makes the training path return its best result.

    Parameters
    ----------
    out : text stream
        Where the lines go.
    n_batches : int
        Batches per epoch.
    total : int
        Epochs, or the scipy method's iteration limit.
    quiet : bool
        No lines at all (the Ctrl-C flag still works).
    """

    def __init__(self, out: TextIO, n_batches: int, total: int, quiet: bool) -> None:
        self.out = out
        self.n_batches = n_batches
        self.total = total
        self.quiet = quiet
        self.bar = (not quiet) and out.isatty()
        self.interrupted = False
        self.last_draw = 0.0
        self.epoch_start = time.perf_counter()
        self.width = len(str(total))
        self.steps = 0  # epochs or iterations reported so far

    def on_sigint(self, signum: int, frame: FrameType | None) -> None:
        """The SIGINT handler: the first Ctrl-C stops after this batch, the second aborts."""
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.clear()
        print(
            "interrupted: stopping after this batch and saving the best model so far "
            "(Ctrl-C again to abort without saving)",
            file=sys.stderr,
            flush=True,
        )

    def on_batch(self, intermediate_result: Any) -> None:
        """``batch_callback``: the bar, and the stop after Ctrl-C."""
        if self.interrupted:
            raise StopIteration
        if not self.bar:
            return
        r = intermediate_result
        now = time.perf_counter()
        done_batches = r.batch + 1
        if now - self.last_draw > 0.1 or done_batches == self.n_batches:
            self.last_draw = now
            width = 30
            done = int(width * done_batches / self.n_batches)
            self.out.write(
                f"\repoch {r.epoch + 1:>{self.width}}/{self.total} "
                f"[{'=' * done}{' ' * (width - done)}] "
                f"{done_batches}/{self.n_batches}  cost {r.fun:.4f}  "
                f"{now - self.epoch_start:5.1f}s"
            )
            self.out.flush()

    def clear(self) -> None:
        """Erase the bar, if one is drawn."""
        if self.bar:
            self.out.write("\r" + " " * 100 + "\r")
            self.out.flush()

    def on_step(self, intermediate_result: Any) -> None:
        """The training callback: one line per epoch (SGD) or iteration (scipy)."""
        r = intermediate_result
        now = time.perf_counter()
        self.steps += 1
        if not self.quiet:
            self.clear()
            if "epoch" in r:
                head = f"epoch {r.epoch + 1:>{self.width}}/{self.total}"
                tail = f"lr {r.learning_rate:<9.4g} {now - self.epoch_start:6.1f}s"
            else:
                head = f"iter {r.nit:>{self.width}}"
                tail = f"nfev {r.nfev:<6d} {r.seconds:7.1f}s"
            line = f"{head}  cost {r.fun:9.4f}"
            if "val_cost" in r:
                line += f"  val_cost {r.val_cost:9.4f}  val_acc {100 * r.val_accuracy:6.2f}%"
            print(f"{line}  {tail}", file=self.out, flush=True)
        self.epoch_start = now
        if self.interrupted:
            raise StopIteration


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
