"""``MLPClassifier``: scikit-learn's multi-layer perceptron classifier on flatnn's engine.

Labels go through scikit-learn's ``LabelBinarizer``: a multiclass target
trains as class indices (softmax output; never expanded to one-hot), a binary
one as one logistic unit, a multi-label indicator matrix as one logistic unit
per label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)

from flatnn.sklearn.base import BaseMLP, with_base_parameters
from flatnn.sklearn.persistence import FORMAT, StateError

__all__ = ["MLPClassifier"]

_Y_TYPES = ("binary", "multiclass", "multilabel-indicator")


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's interface, flatnn's engine.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Units of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default "relu"
        Hidden-layer activation (flatnn's ``"sigmoid"`` and ``"leaky_relu"`` too).
    solver : str or update rule, default "adam"
        scikit-learn's ``"lbfgs"``, ``"sgd"`` (momentum / Nesterov from
        ``momentum`` and ``nesterovs_momentum``), ``"adam"``; flatnn's
        ``"momentum"``, ``"nesterov"``, ``"rmsprop"``, a rule object from
        :mod:`flatnn.optimizers`, or any scipy method of :func:`flatnn.minimize`
        (``"CG"``, ``"BFGS"``, ``"L-BFGS-B"``, ``"TNC"``, ``"SLSQP"``,
        ``"Newton-CG"``, ``"trust-ncg"``, ``"trust-krylov"``, ``"trust-constr"``).
    alpha : float, default 1e-4
        L2 strength, scaled exactly as scikit-learn does (see the module notes).
    batch_size : int or "auto", default "auto"
        Rows per batch of the SGD family; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        Schedule of the SGD family except adam.
    learning_rate_init, power_t : float
        The first learning rate (SGD family); the exponent of ``invscaling``.
    max_iter : int, default 200
        Epochs (SGD family) or iterations (scipy solvers).
    shuffle : bool, default True
    random_state : None, int or RandomState
        Initial weights, the early-stopping split and the shuffling.
    tol, n_iter_no_change : float, int or inf
        SGD family: stop when the training loss (or the validation score) has
        not improved by ``tol`` for more than ``n_iter_no_change`` consecutive
        epochs (``np.inf``: never stop for lack of improvement).
        scipy solvers: ``tol`` is the gradient tolerance.
    verbose : bool
        Print the loss of each epoch or iteration.
    warm_start : bool
        Continue from the fitted weights.
    momentum, nesterovs_momentum : float, bool
        solver ``"sgd"`` (and ``momentum`` of ``"momentum"``/``"nesterov"``).
    early_stopping, validation_fraction : bool, float
        SGD family: hold out ``validation_fraction`` of the data (stratified),
        stop on its accuracy, keep the best weights.
    beta_1, beta_2, epsilon : float
        Adam (``epsilon`` also rmsprop).
    max_fun : int, default 15000
        Objective evaluations allowed to ``L-BFGS-B`` and ``TNC``.
    dtype : None, "float32" or "float64", default None
        Precision of the weights and of the work; None follows ``X`` (float32
        stays float32, anything else becomes float64).
    method_options : dict, optional
        Extra scipy options for a scipy solver (``{"maxcor": 20}``), over those
        derived from ``max_iter``, ``tol`` and ``max_fun``.
    init : str, default "sklearn"
        ``"sklearn"``: scikit-learn's initial weights (the same draws from
        ``random_state``); or a :meth:`flatnn.Network.init` scheme.
    device : {"cpu", "cuda"}, default "cpu"
        Where ``fit`` and the predictions compute. ``"cuda"``: on an NVIDIA GPU
        through CuPy (``pip install "flatnn[gpu]"``; :class:`flatnn.gpu.GPUUnavailable`
        from ``fit`` when CuPy or a GPU is missing). The data is copied to the GPU
        once per call; the SGD family runs :func:`flatnn.sgd` there, the scipy
        solvers a :class:`flatnn.gpu.GPUObjective`. Fitted attributes and
        predictions are NumPy arrays either way.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    params_ : ndarray, shape (n_params,)
        The one flat weight vector.
    network_ : flatnn.Network
    coefs_, intercepts_ : list of ndarray
        Views into ``params_``: ``coefs_[i]`` (n_in, n_out), ``intercepts_[i]`` (n_out,).
    optimizer_state_ : object
        The update rule's state after the last fit (NumPy arrays; ``partial_fit``
        continues from it), None after ``load``.
    n_iter_, t_ : int
        Epochs or iterations of the last fit; samples seen by the SGD family.
    loss_, best_loss_, loss_curve_ :
        scikit-learn's loss (with its L2 term) at the end, the best, and at every
        epoch or iteration (``nan`` for the epochs after a diverging run stopped).
    validation_scores_, best_validation_score_ :
        Accuracy on the held-out data per epoch (``early_stopping``), else None.
    n_features_in_, feature_names_in_, n_outputs_, n_layers_, out_activation_
    result_ : scipy.optimize.OptimizeResult
        flatnn's result of the last fit, with ``history``.
    """

    _is_classifier = True
    classes_: np.ndarray

    @with_base_parameters
    def __init__(self, *args: Any, **params: Any) -> None:
        super().__init__(*args, **params)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _n_outputs(self, target: np.ndarray) -> int:
        if self._label_binarizer.y_type_ == "multiclass":
            return len(self.classes_)
        return target.shape[1]

    def _output_and_loss(self, n_outputs: int) -> tuple[str, str]:
        y_type = self._label_binarizer.y_type_
        return ("softmax" if y_type == "multiclass" else "sigmoid"), "cross_entropy"

    def _set_labels(self, y: Any, incremental: bool, classes: Any) -> bool:
        """Fit the label binarizer where this call defines the classes.

        Return True when ``y`` must still be checked against ``classes_`` (a
        later call, or partial_fit's first call with ``classes``).
        """
        if incremental and _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(self.classes_)
            return True
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            return False
        return True

    def _check_labels(self, y: Any, incremental: bool) -> None:
        found = unique_labels(y)
        if self.warm_start and not incremental:
            if set(found) != set(self.classes_):
                raise ValueError(
                    f"warm_start can only be used where `y` has the same "
                    f"classes as in the previous call to fit. Previously got "
                    f"{self.classes_}, `y` has {found}"
                )
        elif len(np.setdiff1d(found, self.classes_, assume_unique=True)):
            raise ValueError(
                f"`y` has classes not in `self.classes_`. `self.classes_` "
                f"has {self.classes_}. 'y' has {found}."
            )

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool, classes: Any = None
    ) -> tuple[Any, np.ndarray]:
        X, y = self._validate_data_and_target(X, y, reset)
        check_classification_targets(y)
        if self._set_labels(y, incremental, classes):
            self._check_labels(y, incremental)
        if self._label_binarizer.y_type_ == "multiclass":
            # class indices (m,): flatnn never expands them to one-hot
            return X, np.searchsorted(self.classes_, y)
        # binary (m, 1) or multi-label (m, k) indicators
        return X, self._label_binarizer.transform(y).astype(self._work_dtype(X))

    def _predict_params(self, params: np.ndarray, X: Any) -> np.ndarray:
        out = self._outputs(params, X)
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def _score_params(self, params: np.ndarray, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The held-out score of ``params``; nan where the predictions are not finite."""
        return float(
            accuracy_score(y, self._predict_params(params, X), sample_weight=sample_weight)
        )

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes, shape (n_samples,) (or (n_samples, n_classes) for multi-label)."""
        X = self._validate_X(X)
        return self._predict_params(self.params_, X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        X = self._validate_X(X)
        out = self._outputs(self.params_, X)
        if self.n_outputs_ == 1:
            p = out[:, 0]
            return np.vstack([1 - p, p]).T
        return out

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``, shape (n_samples, n_classes)."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    @available_if(BaseMLP._partial_fit_available)
    def partial_fit(
        self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
    ) -> MLPClassifier:
        """One epoch of the SGD family over ``X, y``, continuing the optimizer.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_classes)
        sample_weight : array-like, shape (n_samples,), optional
            Per-sample weights, as in :meth:`fit`.
        classes : array-like, shape (n_classes,)
            Every class, required on the first call (as in scikit-learn); ``y``
            is checked against it (ValueError for a label not in it).

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    # ---------------------------------------------------------- files
    def _label_state(self) -> dict[str, Any]:
        lb = self._label_binarizer
        classes = self.classes_.tolist()
        return {"classes": classes, "y_type": lb.y_type_, "classes_dtype": self.classes_.dtype.str}

    def _restore_labels(self, state: dict[str, Any], net: Any, where: str) -> None:
        """Rebuild the label binarizer from the stored classes; they must fit ``net``."""
        y_type, classes = state.get("y_type"), state.get("classes")
        if y_type not in _Y_TYPES:
            raise StateError(
                f"{where}: field {FORMAT}.y_type is {y_type!r}; expected one of {_Y_TYPES}"
            )
        if not isinstance(classes, list) or not classes:
            raise StateError(f"{where}: field {FORMAT}.classes is {classes!r}; expected a list")
        try:
            dtype = np.dtype(state.get("classes_dtype"))
            values = np.asarray(classes, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise StateError(f"{where}: field {FORMAT}.classes_dtype: {exc}") from None
        if values.ndim != 1 or len(np.unique(values)) != len(values):
            raise StateError(
                f"{where}: field {FORMAT}.classes holds {classes!r}; expected distinct labels"
            )
        outputs = 1 if y_type == "binary" else len(values)
        two_softmax = y_type == "multiclass" and len(values) == 2 and net.output == "softmax"
        kind_fits = (y_type == "binary") == (len(values) <= 2) or two_softmax
        if net.sizes[-1] != outputs or not kind_fits:
            raise StateError(
                f"{where}: field {FORMAT}.classes holds {len(values)} {y_type} classes; "
                f"the network {net!r} has {net.sizes[-1]} output(s)"
            )
        lb = LabelBinarizer()
        if y_type.startswith("multilabel"):
            lb.fit(np.eye(len(values), dtype=int))
        else:
            lb.fit(values)
            lb.y_type_ = y_type  # a two-unit softmax network (flatnn train) stays multiclass
        self._label_binarizer = lb
        self.classes_ = lb.classes_
