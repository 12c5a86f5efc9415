"""Learning curves of a training run as a PNG (needs matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_learning_curves"]


def write_learning_curves(
    path: str | os.PathLike[str], history: Sequence[Mapping[str, Any]]
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

    epochs = [h["epoch"] + 1 if "epoch" in h else h["nit"] for h in history]
    fig, (ax_cost, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_cost.plot(
        epochs, [h["fun"] for h in history], label="training (J, mean of the batches as trained)"
    )
    if "val_cost" in history[0]:
        ax_cost.plot(epochs, [h["val_cost"] for h in history], label="validation (mean loss)")
    ax_cost.set_xlabel("epoch")
    ax_cost.set_ylabel("cost")
    ax_cost.set_yscale("log")
    ax_cost.legend()
    if "train_accuracy" in history[0]:
        ax_acc.plot(
            epochs,
            [100 * h["train_accuracy"] for h in history],
            label="training (first 10000 rows)",
        )
    if "val_accuracy" in history[0]:
        ax_acc.plot(epochs, [100 * h["val_accuracy"] for h in history], label="validation")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    if ax_acc.lines:
        ax_acc.legend()
    fig.tight_layout()
    tmp = f"{Path(path)}.{os.getpid()}.tmp.png"
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
