"""Learning curves of a training run as a PNG (needs matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_learning_curves"]


def write_learning_curves(
    path: str | os.PathLike[str],
    history: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
) -> None:
    """Draw the cost and accuracy per epoch (or iteration) of one run, written atomically.

    Parameters
    ----------
    path : str or path-like
        The PNG to write; it appears complete or not at all (a temporary file
        beside it is renamed).
    history : sequence of mapping
        ``OptimizeResult.history`` entries: ``fun`` and ``epoch`` (SGD) or ``nit``
        (scipy), optionally ``val_cost``, ``val_accuracy`` and ``train_accuracy``
        (the first 10000 training rows).
    title : str, optional
        A line above the plots (data set, network, method, test figure).

    Notes
    -----
    Epoch (or iteration) ticks are integers; the best epoch (lowest ``val_cost``,
    else lowest ``fun``) is marked on both plots. The training cost is ``J`` as
    trained (L2 and dropout included) and is labelled so, not to be read against
    the plain validation loss.

    Raises
    ------
    ImportError
        Without matplotlib.
    OSError
        When the file cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] + 1 if "epoch" in h else h["nit"] for h in history]
    fig, (ax_cost, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    _draw_costs(ax_cost, epochs, history)
    _draw_accuracies(ax_acc, epochs, history)
    _mark_best(ax_cost, ax_acc, epochs, history)
    for ax in (ax_cost, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_cost.legend()
    if ax_acc.lines:
        ax_acc.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = f"{Path(path)}.{os.getpid()}.tmp.png"
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def _draw_costs(ax: Any, epochs: list[int], history: Sequence[Mapping[str, Any]]) -> None:
    ax.plot(epochs, [h["fun"] for h in history], label="training (J as trained: with L2, dropout)")
    if "val_cost" in history[0]:
        ax.plot(epochs, [h["val_cost"] for h in history], label="validation (mean loss)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost")
    ax.set_yscale("log")


def _draw_accuracies(ax: Any, epochs: list[int], history: Sequence[Mapping[str, Any]]) -> None:
    if "train_accuracy" in history[0]:
        ax.plot(
            epochs,
            [100 * h["train_accuracy"] for h in history],
            label="training (first 10000 rows)",
        )
    if "val_accuracy" in history[0]:
        ax.plot(epochs, [100 * h["val_accuracy"] for h in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")


def _mark_best(
    ax_cost: Any, ax_acc: Any, epochs: list[int], history: Sequence[Mapping[str, Any]]
) -> None:
    """A dotted line at the best epoch: lowest val_cost, else lowest fun (finite only)."""
    key = "val_cost" if "val_cost" in history[0] else "fun"
    scores = [float(h[key]) for h in history]
    finite = [(s, i) for i, s in enumerate(scores) if s == s and abs(s) != float("inf")]
    if finite:
        best = epochs[min(finite)[1]]
        for ax in (ax_cost, ax_acc):
            ax.axvline(best, color="grey", linestyle=":", label=f"best epoch {best} ({key})")
