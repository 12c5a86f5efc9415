"""Encoding integer class labels."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from flatnn.base import checks

__all__ = ["one_hot"]


def one_hot(labels: ArrayLike, k: int, dtype: DTypeLike = np.float64) -> np.ndarray:
    """One-hot encode integer class labels.

    Parameters
    ----------
    labels : array_like of int, shape (m,)
        Class labels in ``0 .. k - 1``. Floats are accepted only if they are
        whole numbers (``3.0``), so that labels read as floats still work.
    k : int
        Number of classes.
    dtype : numpy dtype, default float64

    Returns
    -------
    numpy.ndarray, shape (m, k)
        ``Y[i, labels[i]] = 1``, zeros elsewhere.

    Raises
    ------
    ValueError
        If a label is not a whole number or lies outside ``[0, k)``, or
        `labels` is not one-dimensional.
    """
    k = checks.integer(k, "k (the number of classes)", 1)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (m,), got shape {labels.shape}")
    if labels.dtype == np.bool_ or not (
        np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)
    ):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if np.issubdtype(labels.dtype, np.floating):
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"labels must be whole numbers, got labels[{i}] = {labels[i].item()!r}"
            )
    out = (labels < 0) | (labels >= k)
    if out.any():
        i = int(np.argmax(out))
        raise ValueError(f"labels must lie in [0, {k}), got labels[{i}] = {labels[i].item()!r}")
    Y = np.zeros((labels.shape[0], k), dtype=dtype)
    Y[np.arange(labels.shape[0]), labels.astype(np.intp)] = 1
    return Y
