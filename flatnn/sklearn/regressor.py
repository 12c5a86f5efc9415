"""``MLPRegressor``: scikit-learn's multi-layer perceptron regressor on flatnn's engine."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if

from flatnn.sklearn.base import BaseMLP, with_base_parameters
from flatnn.sklearn.constraints import REGRESSOR_CONSTRAINTS

__all__ = ["MLPRegressor"]


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's interface, flatnn's engine.

    One or several targets. The parameters and attributes are those of
    :class:`MLPClassifier`, plus ``loss``: ``"squared_error"`` (identity output,
    half the squared error) or ``"poisson"`` (exponential output, the log link,
    and half the Poisson deviance as scikit-learn defines it; targets >= 0),
    without ``classes_`` and ``predict_proba``; ``validation_scores_`` holds
    R² (sample-weighted).
    """

    _parameter_constraints: dict = REGRESSOR_CONSTRAINTS
    _target_dtype = np.float64

    @with_base_parameters
    def __init__(self, loss: str = "squared_error", *args: Any, **params: Any) -> None:
        self.loss = loss
        super().__init__(*args, **params)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _n_outputs(self, target: np.ndarray) -> int:
        return 1 if target.ndim == 1 else target.shape[1]

    def _output_and_loss(self, n_outputs: int) -> tuple[str, str]:
        if self.loss == "poisson":  # log link: exp output, half Poisson deviance
            return "exp", "poisson"
        return "identity", "squared_error"

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool, classes: Any = None
    ) -> tuple[Any, np.ndarray]:
        X, y = self._validate_data_and_target(X, y, reset, y_numeric=True)
        return X, y.astype(self._work_dtype(X), copy=False)

    def _predict_params(self, params: np.ndarray, X: Any) -> np.ndarray:
        out = self._outputs(params, X)
        return out.ravel() if out.shape[1] == 1 else out

    def _score_params(self, params: np.ndarray, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The held-out score of ``params``; nan where the predictions are not finite."""
        pred = self._predict_params(params, X)
        if not np.isfinite(pred).all():
            return math.nan
        return float(r2_score(y, pred, sample_weight=sample_weight))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples,) or (n_samples, n_outputs)."""
        X = self._validate_X(X)
        return self._predict_params(self.params_, X)

    @available_if(BaseMLP._partial_fit_available)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch of the SGD family over ``X, y``, continuing the optimizer.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like, shape (n_samples,), optional
            Per-sample weights, as in :meth:`fit`.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    # ---------------------------------------------------------- files
    def _label_state(self) -> dict[str, Any]:
        return {}

    def _restore_labels(self, state: dict[str, Any], net: Any, where: str) -> None:
        """A regressor has no labels."""
