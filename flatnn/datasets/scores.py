"""Scores of a model's predictions on a table, as ``flatnn evaluate`` reports them.

Classification (from the confusion matrix ``C``, rows true, columns predicted):
``precision_c = C[c, c] / Σ_i C[i, c]``, ``recall_c = C[c, c] / Σ_j C[c, j]``,
``F1_c = 2 · precision_c · recall_c / (precision_c + recall_c)`` (0 where
undefined, as scikit-learn's ``zero_division=0``), accuracy ``trace(C) / m``.

Regression: ``R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²``, ``MAE = mean |y − ŷ|``,
``RMSE = sqrt(mean (y − ŷ)²)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flatnn.core.metrics import confusion_matrix

__all__ = ["classification_scores", "regression_scores"]


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
        "recall", "f1", "support"}, ...], "confusion": [[...], ...]}`` (plain JSON data).
    """
    k = len(class_names)
    C = confusion_matrix(np.asarray(y_true), np.asarray(y_pred), k)
    tp = np.diag(C).astype(np.float64)
    predicted, support = C.sum(axis=0), C.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        both = precision + recall
        f1 = np.where(both > 0, 2 * precision * recall / np.where(both > 0, both, 1), 0.0)
    m = int(C.sum())
    return {
        "task": "classify",
        "m": m,
        "accuracy": float(tp.sum() / m) if m else float("nan"),
        "classes": [
            {
                "class": name,
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c, name in enumerate(class_names)
        ],
        "confusion": C.tolist(),
    }


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
