"""Metrics: the confusion matrix, the report ``flatnn evaluate`` prints, and table scores.

The scores of a model's predictions on a table (:func:`classification_scores`,
:func:`regression_scores`):

Classification (from the confusion matrix ``C``, rows true, columns predicted):
``precision_c = C[c, c] / Σ_i C[i, c]``, ``recall_c = C[c, c] / Σ_j C[c, j]``,
``F1_c = 2 · precision_c · recall_c / (precision_c + recall_c)`` (0 where
undefined, as scikit-learn's ``zero_division=0``), accuracy ``trace(C) / m``.

Regression: ``R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²``, ``MAE = mean |y − ŷ|``,
``RMSE = sqrt(mean (y − ŷ)²)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from flatnn.base import checks

__all__ = [
    "confusion_matrix",
    "evaluation_report",
    "Report",
    "classification_scores",
    "regression_scores",
]


def _labels(a, name, k):
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be labels of shape (m,), got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer labels, got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= k):
        bad = a.min() if a.min() < 0 else a.max()
        raise ValueError(f"{name} must lie in [0, {k}), got the label {bad}")
    return a


def confusion_matrix(y_true: Any, y_pred: Any, k: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (m,)
        Labels in ``[0, k)``.
    k : int
        Number of classes.

    Returns
    -------
    ndarray of int64, shape (k, k)
        ``C[i, j]`` = samples of class ``i`` predicted as ``j``; rows sum to
        each class's support, the diagonal holds the correct predictions.
    """
    k = checks.integer(k, "k (the number of classes)", 1)
    y_true = _labels(y_true, "y_true", k)
    y_pred = _labels(y_pred, "y_pred", k)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}"
        )
    return np.bincount(y_true.astype(np.int64) * k + y_pred, minlength=k * k).reshape(k, k)


def _as_tuple(names: Any) -> tuple[str, ...]:
    return tuple(names)


@attrs.frozen(eq=False)
class Report:
    """Accuracy overall and per class, precision, recall and F1, with the confusion matrix.

    Attributes
    ----------
    class_names : tuple
        ``class_names[c]`` names class ``c``.
    confusion : ndarray of int64, shape (k, k)
        Rows: true class; columns: predicted class.
    """

    class_names: tuple[Any, ...] = attrs.field(converter=_as_tuple)
    confusion: np.ndarray = attrs.field(repr=False)

    @property
    def support(self) -> np.ndarray:
        """ndarray of int64, shape (k,): samples of each class."""
        return self.confusion.sum(axis=1)

    @property
    def correct(self) -> np.ndarray:
        """ndarray of int64, shape (k,): correct predictions of each class."""
        return np.diag(self.confusion).copy()

    @property
    def m(self) -> int:
        """int: number of samples."""
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        """float: fraction of samples predicted right (NaN for no samples)."""
        return float(self.correct.sum() / self.m) if self.m else float("nan")

    @property
    def class_accuracy(self) -> np.ndarray:
        """ndarray, shape (k,): accuracy within each class; NaN for a class with no samples."""
        return _ratio(self.correct, self.support, np.nan)

    @property
    def precision(self) -> np.ndarray:
        """ndarray, shape (k,): right among the predictions of each class (0 where none)."""
        return _ratio(self.correct, self.confusion.sum(axis=0), 0.0)

    @property
    def recall(self) -> np.ndarray:
        """ndarray, shape (k,): the class accuracy, 0 for a class with no samples."""
        return _ratio(self.correct, self.support, 0.0)

    @property
    def f1(self) -> np.ndarray:
        """ndarray, shape (k,): the harmonic mean of precision and recall (0 where both are 0)."""
        p, r = self.precision, self.recall
        return _ratio(2 * p * r, p + r, 0.0)

    def scores(self) -> dict:
        """The report as plain JSON data: see :func:`classification_scores`."""
        precision, recall, f1, support = self.precision, self.recall, self.f1, self.support
        return {
            "task": "classify",
            "m": self.m,
            "accuracy": self.accuracy,
            "classes": [
                {
                    "class": name,
                    "precision": float(precision[c]),
                    "recall": float(recall[c]),
                    "f1": float(f1[c]),
                    "support": int(support[c]),
                }
                for c, name in enumerate(self.class_names)
            ],
            "confusion": self.confusion.tolist(),
        }


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """``num / den`` elementwise, ``empty`` where ``den`` is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), empty)


def evaluation_report(y_true: Any, y_pred: Any, class_names: Any) -> Report:
    """Accuracy, per-class accuracy and the confusion matrix of a set of predictions.

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (m,)
        Labels in ``[0, len(class_names))``, e.g. ``net.predict(params, X)``.
    class_names : sequence
        ``class_names[c]`` names class ``c``.

    Returns
    -------
    Report
    """
    names = tuple(class_names)
    return Report(names, confusion_matrix(np.asarray(y_true), np.asarray(y_pred), len(names)))


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence) -> dict:
    """Accuracy, per-class precision, recall, F1 and support, and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (m,)
        Class indices into ``class_names``.
    class_names : sequence

    Returns
    -------
    dict
        ``{"task": "classify", "m", "accuracy", "classes": [{"class", "precision",
        "recall", "f1", "support"}, ...], "confusion": [[...], ...]}`` (plain JSON data):
        ``evaluation_report(y_true, y_pred, class_names).scores()``.
    """
    return evaluation_report(y_true, y_pred, class_names).scores()


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """R², MAE and RMSE of real predictions.

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (m,) or (m, k)

    Returns
    -------
    dict
        ``{"task": "regress", "m", "r2", "mae", "rmse"}``; ``r2`` is NaN when
        ``y_true`` is constant.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)
    if y_true.shape[0] == 0:
        raise ValueError("no rows to score")
    resid = y_true - y_pred
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum()
    return {
        "task": "regress",
        "m": int(y_true.shape[0]),
        "r2": float(1.0 - (resid**2).sum() / total) if total > 0 else float("nan"),
        "mae": float(np.abs(resid).mean()),
        "rmse": float(np.sqrt((resid**2).mean())),
    }
