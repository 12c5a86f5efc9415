"""What :class:`~flatnn.sklearn.MLPClassifier` and :class:`~flatnn.sklearn.MLPRegressor` share.

The constructor (scikit-learn's parameters and flatnn's ``dtype``,
``method_options``, ``init``, ``device``; the regressor puts its ``loss`` in
front, see :func:`with_base_parameters`), the checks of ``X`` and ``y``, the
views ``coefs_``/``intercepts_`` into the one flat vector ``params_``, the
network a fit builds, scikit-learn's initial weights, ``fit`` (checked against the one table of
:mod:`flatnn.sklearn.constraints`, then handed to the SGD family
(:mod:`flatnn.sklearn.stochastic`) or to the scipy solvers
(:mod:`flatnn.sklearn.scipy_fit`)) and the forward pass of the predictions.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from flatnn.base import checks, namespace
from flatnn.core import inputs
from flatnn.core.network import Network
from flatnn.sklearn import device as devices
from flatnn.sklearn.constraints import (
    ACTIVATIONS,
    PARAMETER_CONSTRAINTS,
    SCIPY_BY_KEY,
    SGD_SOLVERS,
    invalid,
)
from flatnn.sklearn.persistence import Persistence
from flatnn.sklearn.scipy_fit import ScipyFit
from flatnn.sklearn.stochastic import StochasticFit

__all__ = ["BaseMLP", "OUT_ACTIVATION", "with_base_parameters"]

OUT_ACTIVATION = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity"}
"""flatnn's output activation -> scikit-learn's ``out_activation_``."""

_Init = TypeVar("_Init", bound=Callable[..., None])


class BaseMLP(StochasticFit, ScipyFit, Persistence, BaseEstimator):
    """The parts the classifier and the regressor share (see :class:`MLPClassifier`)."""

    _is_classifier = False
    _target_dtype: Any = None
    """The dtype of the held-out targets the score is given (None: as they are)."""
    _parameter_constraints: dict = PARAMETER_CONSTRAINTS
    network_: Network
    params_: np.ndarray

    def __init__(
        self,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.method_options = method_options
        self.init = init
        self.device = device

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR/CSC X, never made dense, with every solver
        return tags

    # ---------------------------------------------------------- views
    @property
    def coefs_(self) -> list[np.ndarray]:
        """list of ndarray: ``coefs_[i]`` of shape (n_in, n_out), a view into ``params_``."""
        check_is_fitted(self, "params_")
        return [theta[:, 1:].T for theta in self.network_.unpack(self.params_)]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """list of ndarray: ``intercepts_[i]`` of shape (n_out,), a view into ``params_``."""
        check_is_fitted(self, "params_")
        return [theta[:, 0] for theta in self.network_.unpack(self.params_)]

    # ---------------------------------------------------------- solver and layout
    def _solver(self) -> tuple[str, Any]:
        """``("sgd", name or rule)`` or ``("scipy", scipy method name)`` (after the table)."""
        if not isinstance(self.solver, str):
            return "sgd", self.solver
        key = self.solver.lower()
        return ("sgd", key) if key in SGD_SOLVERS else ("scipy", SCIPY_BY_KEY[key])

    def _is_stochastic(self) -> bool:
        solver = self.solver
        return not isinstance(solver, str) or solver.lower() in SGD_SOLVERS

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, str) or not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        name = type(self).__name__
        for s in sizes:
            if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
                raise invalid("hidden_layer_sizes", name, "a sequence of int", sizes)
        if any(s <= 0 for s in sizes):
            raise invalid("hidden_layer_sizes", name, "made of int > 0", sizes)
        return [int(s) for s in sizes]

    def _network(self, n_features: int, n_outputs: int) -> Network:
        sizes = (n_features, *self._hidden_sizes(), n_outputs)
        output, loss = self._output_and_loss(n_outputs)
        return Network(sizes, hidden=ACTIVATIONS[self.activation], output=output, loss=loss)

    def _out_activation(self, net: Network) -> str:
        return OUT_ACTIVATION.get(net.output, net.output)

    def _init_params(self, net: Network, rs: Any, dtype: Any) -> np.ndarray:
        if self.init != "sklearn":
            return net.init(rs.randint(np.iinfo(np.int32).max), scheme=self.init, dtype=dtype)
        # scikit-learn's draws, in its order: each layer's (n_in, n_out) weights,
        # then its biases, uniform in ±sqrt(factor / (n_in + n_out))
        factor = 2.0 if self.activation in ("logistic", "sigmoid") else 6.0
        params = np.empty(net.n_params, dtype=np.float64)
        for theta in net.unpack(params):
            n_out, n_in = theta.shape[0], theta.shape[1] - 1
            bound = math.sqrt(factor / (n_in + n_out))
            theta[:, 1:] = rs.uniform(-bound, bound, (n_in, n_out)).T
            theta[:, 0] = rs.uniform(-bound, bound, n_out)
        return params.astype(dtype, copy=False)

    def _work_dtype(self, X: Any) -> np.dtype:
        return X.dtype if self.dtype is None else checks.float_dtype(self.dtype)

    # ---------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Fit the network to ``X`` (n_samples, n_features) and ``y``.

        Parameters
        ----------
        X : array-like or scipy.sparse CSR/CSC matrix, shape (n_samples, n_features)
            Sparse ``X`` trains with every solver on the CPU, never made dense (the SGD
            family gathers CSR rows per batch; CSC is converted to CSR once).
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classifier; a label-indicator matrix for multi-label)
            or targets (regressor).
        sample_weight : array-like, shape (n_samples,), optional
            Per-sample weights (finite, >= 0): an integer weight counts a row that
            many times, a zero weight removes it; the held-out score of
            ``early_stopping`` is weighted too.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _partial_fit_available(self) -> bool:
        return self._is_stochastic()

    def _check_settings(self, incremental: bool) -> tuple[str, Any]:
        """The table, then what no single entry of it can say."""
        self._validate_params()
        self._hidden_sizes()
        kind, method = self._solver()
        name = type(self).__name__
        if incremental and kind != "sgd":
            raise ValueError(
                f"partial_fit needs a solver of the SGD family {list(SGD_SOLVERS)}, "
                f"got {self.solver!r}"
            )
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.early_stopping and kind == "sgd" and self.validation_fraction == 0:
            raise invalid("validation_fraction", name, "in (0, 1) with early_stopping", 0.0)
        if kind == "sgd" and self.method_options is not None:
            raise ValueError(
                f"method_options are options of the scipy solvers; solver {self.solver!r} "
                f"runs the SGD loop (configure it with a rule object from flatnn.optimizers)"
            )
        return kind, method

    def _fit(
        self, X: Any, y: Any, incremental: bool, classes: Any = None, sample_weight: Any = None
    ) -> Any:
        kind, method = self._check_settings(incremental)
        # before the data: a missing GPU fails fast
        xp = devices.device_namespace(self.device, type(self).__name__)
        first_pass = not hasattr(self, "params_") or (not self.warm_start and not incremental)
        X, target = self._validate_input(X, y, incremental, reset=first_pass, classes=classes)
        dtype = self._work_dtype(X)
        X = X.astype(dtype, copy=False)
        weights = self._check_weights(sample_weight, X.shape[0])
        if kind == "sgd" and xp is not None and inputs.is_sparse(X):
            raise TypeError(
                f"sparse X trains on the CPU (device='cpu'); device={self.device!r} takes "
                f"dense X (X.toarray())"
            )
        n_outputs = self._n_outputs(target)
        net = self._network(X.shape[1], n_outputs)
        rs = check_random_state(self.random_state)
        if first_pass:
            params = self._init_params(net, rs, dtype)
            self._reset_fitted()
        else:
            if net != self.network_:
                raise ValueError(
                    f"warm_start and partial_fit continue the fitted "
                    f"{self.network_!r}; these data and parameters need {net!r}"
                )
            params = self.params_.astype(dtype, copy=False)
        self.network_ = net
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(net.sizes)
        self.out_activation_ = self._out_activation(net)
        if kind == "sgd":
            fit_data = (X, target, y, weights)
            self._fit_stochastic(fit_data, params, method, rs, incremental, first_pass, xp)
        else:
            self._fit_scipy(X, target, weights, params, method, xp)
        return self

    def _validate_data_and_target(
        self, X: Any, y: Any, reset: bool, y_numeric: bool = False
    ) -> tuple[Any, np.ndarray]:
        """``X`` and ``y`` checked by scikit-learn; a one-column ``y`` raveled, with a warning."""
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=y_numeric,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _score_target(self, y: Any, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows`` of the targets ``y`` as the held-out score takes them."""
        y = np.asarray(y, dtype=self._target_dtype)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        return y[rows]

    def _check_weights(self, sample_weight: Any, m: int) -> np.ndarray | None:
        """Weights (m,) as float64 (the core's check), or None; all zero: scikit-learn's error."""
        if sample_weight is not None:
            w = np.asarray(sample_weight)
            if w.shape == (m,) and w.dtype.kind in "fiub" and not w.any():
                raise ValueError("Sample weights must contain at least one non-zero number.")
        return inputs.check_weights(sample_weight, m, np.float64)[0]

    def _reset_fitted(self) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.best_loss_ = np.inf
        self.validation_scores_ = None
        self.best_validation_score_ = None
        self.optimizer_state_ = None
        self._current_rate = None
        self._no_improvement_count = 0  # carried over by warm_start and partial_fit

    # ---------------------------------------------------------- predicting
    def _validate_X(self, X: Any) -> Any:
        check_is_fitted(self, "params_")
        return validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False
        )

    def _outputs(self, params: np.ndarray, X: Any) -> np.ndarray:
        """Output activations (m, n_outputs), NumPy, for ``X`` already validated.

        With ``device="cuda"`` the forward pass runs on the GPU (``X`` and
        ``params`` are copied there unless they already are) and the outputs
        come back to the host.
        """
        xp = devices.device_namespace(self.device, type(self).__name__)
        if xp is None:
            return self.network_.forward(params, X)
        return namespace.to_numpy(
            self.network_.forward(
                namespace.asarray(params, xp, "params"), namespace.asarray(X, xp, "X")
            )
        )


def with_base_parameters(init: _Init) -> _Init:
    """Decorate ``__init__(self, own=default, ..., *args, **params)`` of an estimator.

    scikit-learn reads an estimator's parameters from the signature of its
    ``__init__`` (``get_params``, ``clone``, ``repr``, its checks). The decorated
    ``__init__`` says it takes its own named parameters, then those of
    :meth:`BaseMLP.__init__`: the shared parameters and their defaults have their
    one home there, and ``*args, **params`` reach it unchanged. Arguments that do
    not fit that signature raise a ``TypeError`` naming the estimator's own class.
    """
    signature = inspect.signature(init)
    own = [p for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    _, *shared = inspect.signature(BaseMLP.__init__).parameters.values()
    full = signature.replace(parameters=[*own, *shared])

    @functools.wraps(init)
    def checked(self: Any, *args: Any, **params: Any) -> None:
        try:  # a wrong argument is reported against the user's class, not BaseMLP
            full.bind(self, *args, **params)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__}.__init__(): {error}") from None
        init(self, *args, **params)

    checked.__signature__ = full  # type: ignore[attr-defined]
    return checked  # type: ignore[return-value]
