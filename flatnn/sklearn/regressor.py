"""``MLPRegressor``: scikit-learn's multi-layer perceptron regressor on flatnn's engine."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d, validate_data

from flatnn.sklearn.base import BaseMLP
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

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: Any = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: float = 10,
        max_fun: int = 15000,
        dtype: Any = None,
        method_options: dict | None = None,
        init: str = "sklearn",
        device: str = "cpu",
    ) -> None:
        self.loss = loss
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dtype=dtype,
            method_options=method_options,
            init=init,
            device=device,
        )

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
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y.astype(self._work_dtype(X), copy=False)

    def _score_target(self, y: Any, rows: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        return y[rows]

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
