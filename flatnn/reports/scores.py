"""Scores of a trained model beyond plain accuracy, and where a flat index sits in the network."""

from __future__ import annotations

from typing import Any

import numpy as np

from flatnn import datasets
from flatnn.core.network import Network

__all__ = ["captcha_heldout_scores", "locate_parameter"]


def captcha_heldout_scores(
    net: Network, params: np.ndarray, dtype: Any = np.float64, limit: int | None = None
) -> dict[str, Any]:
    """Character and whole-captcha accuracy on the held-out captchas (``CAPTCHA_HELDOUT``).

    Parameters
    ----------
    net : Network
        A network of 260 inputs and 36 outputs.
    params : ndarray, shape (n_params,)
        Its parameters.
    dtype : dtype
        Precision the captchas are rendered in.
    limit : int, optional
        Characters of a quick run: only the first ``ceil(limit / 4)`` held-out
        captchas are rendered.

    Returns
    -------
    dict
        ``heldout_accuracy`` (characters), ``heldout_captcha_accuracy`` (all four
        characters right) and ``heldout_captchas`` (how many were rendered).
    """
    n = None if limit is None else min(-(-limit // 4), datasets.CAPTCHA_HELDOUT[1])
    held = datasets.load_captcha_heldout(n, dtype=dtype)
    predicted = net.predict(params, held.X)
    return {
        "heldout_accuracy": float(np.mean(predicted == held.y)),
        "heldout_captcha_accuracy": datasets.whole_captcha_accuracy(held.y, predicted),
        "heldout_captchas": held.n_captchas,
    }


def locate_parameter(net: Network, index: int) -> tuple[int, int, int]:
    """The layer and the entry of its theta that ``params[index]`` is.

    Parameters
    ----------
    net : Network
    index : int
        A position in the flat vector, ``0 <= index < net.n_params``.

    Returns
    -------
    (layer, row, column) : tuple of int
        ``params[index]`` is ``thetas[layer][row, column]``; column 0 is the bias.
    """
    if not 0 <= index < net.n_params:
        raise ValueError(f"index must be in [0, {net.n_params}), got {index}")
    layer = int(np.searchsorted(net.offsets, index, side="right")) - 1
    row, column = divmod(index - net.offsets[layer], net.shapes[layer][1])
    return layer, int(row), int(column)
