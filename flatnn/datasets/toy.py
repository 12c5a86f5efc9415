"""The XOR toy problem."""

from __future__ import annotations

import numpy as np

__all__ = ["xor"]


def xor() -> tuple[np.ndarray, np.ndarray]:
    """The four points of the XOR problem and their labels.

    Returns
    -------
    X : numpy.ndarray of float64, shape (4, 2)
        ``[[0, 0], [0, 1], [1, 0], [1, 1]]``.
    y : numpy.ndarray of int64, shape (4,)
        ``[0, 1, 1, 0]``: ``y = x0 xor x1``.
    """
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return X, y
