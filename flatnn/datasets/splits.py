"""Seeded validation splits, stratified by class for classification.

:func:`stratified_split` holds out a fraction of each class (so that a rare class
appears in both parts); for regression the rows are drawn at random. The same
``seed`` gives the same split.
"""

from __future__ import annotations

import numpy as np

from flatnn.base import checks

__all__ = ["stratified_split"]


def stratified_split(
    y: np.ndarray,
    fraction: float,
    seed: int | None = 0,
    *,
    stratify: bool = True,
    class_names: tuple = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, val)`` holding out ``fraction`` of the rows.

    Parameters
    ----------
    y : ndarray, shape (m,)
        Class indices (``stratify=True``) or any targets.
    fraction : float in (0, 1)
        The share of rows held out; per class when stratified (at least one row
        of each class in each part).
    seed : int or None
    stratify : bool, default True
    class_names : tuple, optional
        Names of the class indices, for the error messages.

    Returns
    -------
    train, val : ndarray of int64, sorted

    Raises
    ------
    ValueError
        When a class has a single row (it cannot be in both parts), or either
        part would be empty.
    """
    fraction = checks.real(fraction, "fraction", 0.0, 1.0, low_open=True, high_open=True)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (m,), got shape {y.shape}")
    m = y.shape[0]
    rng = np.random.default_rng(seed)
    if not stratify:
        n_val = int(round(fraction * m))
        if not 0 < n_val < m:
            raise ValueError(
                f"a validation fraction of {fraction} of {m} rows leaves {n_val} validation "
                f"and {m - n_val} training rows; both must be at least 1"
            )
        order = rng.permutation(m)
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    classes, counts = np.unique(y, return_counts=True)
    lonely = classes[counts < 2]
    if lonely.size:
        c = int(lonely[0])
        shown = repr(class_names[c]) if c < len(class_names) else f"index {c}"
        raise ValueError(
            f"class {shown} has 1 row; a stratified validation split needs at "
            f"least 2 rows of each class ({lonely.size} classes have 1)"
        )
    val = []
    for c, n in zip(classes, counts):
        rows = np.flatnonzero(y == c)
        k = min(max(int(round(fraction * n)), 1), n - 1)
        val.append(rng.permutation(rows)[:k])
    val_rows = np.sort(np.concatenate(val))
    mask = np.ones(m, dtype=bool)
    mask[val_rows] = False
    return np.flatnonzero(mask).astype(np.int64), val_rows.astype(np.int64)
