"""scikit-learn estimators on flatnn's core: a drop-in ``MLPClassifier`` and ``MLPRegressor``.

``pip install "flatnn[sklearn]"``; nothing else in flatnn imports scikit-learn.
The constructors take scikit-learn's parameter names with scikit-learn's
meaning, so that changing the import is enough::

    from flatnn.sklearn import MLPClassifier     # was: from sklearn.neural_network import ...
    clf = MLPClassifier(hidden_layer_sizes=(100,), solver="adam", alpha=1e-4).fit(X, y)

``solver`` also takes every flatnn method: the SGD family (``"sgd"``, ``"adam"``,
``"momentum"``, ``"nesterov"``, ``"rmsprop"`` or an update-rule object from
:mod:`flatnn.optimizers`) and every scipy method :func:`flatnn.minimize` knows
(``"lbfgs"`` is scikit-learn's name for ``"L-BFGS-B"``; ``"CG"``, ``"Newton-CG"``,
``"trust-ncg"``, ...). The weights live in one flat vector ``params_`` bound to
``network_`` (a :class:`flatnn.Network`); ``coefs_`` and ``intercepts_`` are views
into it.

The objective, exactly scikit-learn's
--------------------------------------
scikit-learn minimises, over a batch of ``b`` rows (``b = m`` for the full-batch
solvers), ``mean loss + alpha / (2 b) · Σ ‖W‖²``; flatnn's whole-data objective
is ``J = (1/m) Σ loss + lam / (2m) · Σ ‖W‖²`` and its SGD loop gives a batch of
``b`` rows the strength ``lam · b / m``. So:

* full-batch (scipy) solvers: ``lam = alpha``;
* SGD family with batch size ``b``: ``lam = alpha · m / b`` (the same L2 force in
  every full batch; a smaller last batch gets ``alpha / (2b)`` where scikit-learn
  uses ``alpha / (2 b_last)``).

The losses are the same: softmax or per-unit logistic cross-entropy, or half
the squared error, summed over the outputs and averaged over the rows. One
exception: for a regression with ``k > 1`` targets scikit-learn *reports* the
squared error averaged over the outputs too (``loss_`` divided by ``k``) while
its gradient, and so every SGD step, is that of the sum. flatnn minimises and
reports the objective whose gradient both follow; its SGD steps are
scikit-learn's, its ``loss_`` is not divided by ``k``, and its ``lbfgs`` may
take another path (scikit-learn's line search sees values and gradients of two
different functions there).

Differences from scikit-learn, by design
----------------------------------------
* No sparse input (flatnn's core works on dense arrays): a TypeError says so.
* No ``sample_weight``: flatnn's objective has no per-sample weights, and
  faking them would change what is minimised.
* ``loss_curve_`` and ``best_loss_`` exist for every solver, the full-batch
  ones too (``J`` at each iteration).
* Adam adds ``epsilon`` to ``√v̂`` (Kingma & Ba), scikit-learn to ``√v``.
* Epochs are shuffled by a NumPy ``Generator`` seeded from ``random_state``; the
  initial weights are scikit-learn's own draws from ``random_state`` (``init=
  "sklearn"``), so the same seed starts both libraries at the same point.
* ``early_stopping``, ``tol``/``n_iter_no_change`` and ``learning_rate`` act on
  the SGD family, as in scikit-learn; the scipy solvers get ``tol`` as their
  gradient tolerance and ``max_iter``/``max_fun`` as their limits.
* ``coefs_`` and ``intercepts_`` are read-only properties (views: write into
  their entries, not over the lists).
* ``verbose`` prints the per-epoch loss to stdout, as scikit-learn does; it is
  the one place flatnn prints, and only when asked.
* ``device="cuda"`` trains and predicts on an NVIDIA GPU (CuPy, ``flatnn[gpu]``):
  the data is copied to the device once per ``fit``, the SGD family runs
  :func:`flatnn.sgd` there and the scipy solvers run over a
  :class:`flatnn.gpu.GPUObjective`. Every fitted attribute (``params_``,
  ``result_``, the optimizer state kept for ``partial_fit``) and every
  prediction is NumPy, so a fitted estimator pickles and saves as on the CPU;
  ``set_params(device="cpu")`` predicts without a GPU.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from flatnn.base import checks, namespace
from flatnn.core.network import INIT_SCHEMES, Network
from flatnn.io import models as io
from flatnn.training import rules as optimizers
from flatnn.training.sgd_loop import SCIPY_METHODS, STATUS_DONE, STATUS_STOPPED, minimize, sgd

__all__ = ["MLPClassifier", "MLPRegressor", "SGD_SOLVERS", "SCIPY_SOLVERS", "history_fun"]

SGD_SOLVERS = ("sgd", "adam", "momentum", "nesterov", "rmsprop")
"""Solver names that run :func:`flatnn.sgd` (a rule object does too)."""

SCIPY_SOLVERS = ("lbfgs",) + SCIPY_METHODS
"""Solver names that run :func:`flatnn.minimize` (``lbfgs`` is ``L-BFGS-B``)."""

ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "sigmoid": "sigmoid",
    "leaky_relu": "leaky_relu",
}
"""scikit-learn's activation names (and flatnn's own) to flatnn's."""

LEARNING_RATES = ("constant", "invscaling", "adaptive")

DEVICES = ("cpu", "cuda")
"""The values of ``device``."""

# Each scipy method's option for the tolerance ``tol`` sets: its gradient
# tolerance where it has one (scikit-learn's lbfgs passes gtol=tol).
_TOL_OPTION = {
    "CG": "gtol",
    "BFGS": "gtol",
    "L-BFGS-B": "gtol",
    "TNC": "gtol",
    "SLSQP": "ftol",
    "Newton-CG": "xtol",
    "trust-ncg": "gtol",
    "trust-krylov": "gtol",
    "trust-constr": "gtol",
}
_MAXFUN_METHODS = ("L-BFGS-B", "TNC")
_SCIPY_BY_KEY = {name.lower(): name for name in SCIPY_METHODS}
_SCIPY_BY_KEY["lbfgs"] = "L-BFGS-B"
_OUT_ACTIVATION = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity"}
_FORMAT = "flatnn.sklearn"


def history_fun(entry):
    """The objective value recorded in one ``history`` entry of a flatnn result."""
    return entry["fun"]


# ------------------------------------------------------------- checking
# flatnn's own checks (flatnn/checks.py: one wording); scikit-learn's parameter
# ranges: no upper bound means inf is allowed, as in its Interval(Real, low, None).
def _check_real(value, name, low=None, high=None, low_open=False, high_open=False):
    return checks.real(
        value, name, low, high, low_open=low_open, high_open=high_open, finite=high is not None
    )


def _check_dtype(dtype):
    return None if dtype is None else checks.float_dtype(dtype)


def _check_device(device):
    if not isinstance(device, str):
        raise TypeError(f"device must be one of {list(DEVICES)}, got {device!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {list(DEVICES)}, got {device!r}")
    return device


def _device_namespace(device):
    """The array namespace that computes for ``device``: None for the CPU.

    ``"cuda"`` imports CuPy and checks for a GPU (:func:`flatnn.gpu.require_cuda`,
    GPUUnavailable with a one-line message when either is missing). The tests
    replace this function to run the device path on a stand-in namespace.
    """
    if _check_device(device) == "cpu":
        return None
    from flatnn.backends import gpu_objective as gpu

    return gpu.require_cuda()


def _map_arrays(state, move):
    """``state`` (an optimizer's: an array, a tuple or NamedTuple of them, ...) with
    ``move`` applied to every array in it; other values (a step count) as they are."""
    if isinstance(state, tuple):
        items = [_map_arrays(item, move) for item in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
    if isinstance(state, list):
        return [_map_arrays(item, move) for item in state]
    if hasattr(state, "shape") and hasattr(state, "dtype"):
        return move(state)
    return state


class _Resumable:
    """An update rule that starts from a saved state and keeps its latest one.

    scikit-learn's ``partial_fit`` continues the optimizer (Adam's moments, the
    velocity) from one call to the next; :func:`flatnn.sgd` starts each call
    from ``rule.init``. This wrapper hands it the saved state instead.
    """

    def __init__(self, rule, state=None):
        self.rule = rule
        self.state = state

    def init(self, params):
        return self.rule.init(params) if self.state is None else self.state

    def update(self, grad, state, params, learning_rate):
        step, self.state = self.rule.update(grad, state, params, learning_rate)
        return step, self.state


class _ResumableInPlace(_Resumable):
    """:class:`_Resumable` for a rule with the in-place form, which sgd then uses."""

    def inplace_init(self, params):
        return self.rule.inplace_init(params) if self.state is None else self.state

    def inplace_update(self, grad, state, params, learning_rate, scratch):
        self.state = self.rule.inplace_update(grad, state, params, learning_rate, scratch)
        return self.state


class _Schedule:
    """scikit-learn's learning-rate schedules as a flatnn schedule ``epoch -> rate``.

    ``constant``: ``learning_rate_init``; ``invscaling``: ``learning_rate_init /
    (t + 1) ** power_t`` with ``t`` the samples seen before the epoch (a fit's
    first epoch uses ``learning_rate_init``: scikit-learn starts each fit's
    optimizer afresh); ``adaptive``: the current rate, divided by 5 by the fit's
    stopping logic (:meth:`decay`).
    """

    def __init__(self, kind, initial, rate, power_t, t0, m, fresh):
        self.kind, self.initial, self.rate, self.power_t = kind, initial, rate, power_t
        self.t0, self.m, self.fresh = t0, m, fresh

    def __call__(self, epoch):
        if self.kind != "invscaling":
            return self.rate
        if self.fresh and epoch == 0:
            return self.initial
        return self.initial / (self.t0 + epoch * self.m + 1) ** self.power_t

    def decay(self):
        """Divide the adaptive rate by 5; return False when it is already <= 1e-6."""
        if self.kind != "adaptive" or self.rate <= 1e-6:
            return False
        self.rate /= 5.0
        return True


# ------------------------------------------------------------- the base
class _BaseMLP(BaseEstimator):
    """The parts the classifier and the regressor share (not public)."""

    _is_classifier = False

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        method_options=None,
        init="sklearn",
        device="cpu",
    ):
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

    # ---------------------------------------------------------- views
    @property
    def coefs_(self):
        """list of ndarray: ``coefs_[i]`` of shape (n_in, n_out), a view into ``params_``."""
        check_is_fitted(self, "params_")
        return [theta[:, 1:].T for theta in self.network_.unpack(self.params_)]

    @property
    def intercepts_(self):
        """list of ndarray: ``intercepts_[i]`` of shape (n_out,), a view into ``params_``."""
        check_is_fitted(self, "params_")
        return [theta[:, 0] for theta in self.network_.unpack(self.params_)]

    # ---------------------------------------------------------- solver
    def _solver(self):
        """Return ``("sgd", name or rule)`` or ``("scipy", scipy method name)``."""
        solver = self.solver
        if isinstance(solver, str):
            key = solver.lower()
            if key in SGD_SOLVERS:
                return "sgd", key
            if key in _SCIPY_BY_KEY:
                return "scipy", _SCIPY_BY_KEY[key]
            raise ValueError(
                f"solver must be one of {list(SGD_SOLVERS + SCIPY_SOLVERS)} or an "
                f"update rule object, got {solver!r}"
            )
        if optimizers.is_rule(solver):
            return "sgd", solver
        raise TypeError(
            f"solver must be a name {list(SGD_SOLVERS + SCIPY_SOLVERS)} or an "
            f"update rule (init, update), got {type(solver).__name__}"
        )

    def _is_stochastic(self):
        try:
            return self._solver()[0] == "sgd"
        except (TypeError, ValueError):
            return False

    def _rule(self, name):
        """The update rule for solver ``name`` (a rule object is returned as is)."""
        if not isinstance(name, str):
            return name
        if name == "adam":
            return optimizers.adam(
                _check_real(self.beta_1, "beta_1", 0, 1, high_open=True),
                _check_real(self.beta_2, "beta_2", 0, 1, high_open=True),
                _check_real(self.epsilon, "epsilon", 0, low_open=True),
            )
        if name == "rmsprop":
            return optimizers.rmsprop(eps=_check_real(self.epsilon, "epsilon", 0, low_open=True))
        momentum = _check_real(self.momentum, "momentum", 0, 1, high_open=True)
        if name == "momentum":
            return optimizers.momentum(momentum)
        if name == "nesterov":
            return optimizers.nesterov(momentum)
        # scikit-learn's "sgd": Nesterov or classical momentum, plain descent at 0
        if momentum == 0:
            return optimizers.sgd()
        nesterov = checks.boolean(self.nesterovs_momentum, "nesterovs_momentum")
        return optimizers.nesterov(momentum) if nesterov else optimizers.momentum(momentum)

    # ---------------------------------------------------------- layout
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, str) or not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        for s in sizes:
            if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral):
                raise TypeError(
                    f"hidden_layer_sizes must hold integers, got {self.hidden_layer_sizes!r}"
                )
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _hidden_activation(self):
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {list(ACTIVATIONS)}, got {self.activation!r}"
            )
        return ACTIVATIONS[self.activation]

    def _network(self, n_features, n_outputs):
        sizes = (n_features, *self._hidden_sizes(), n_outputs)
        output, loss = self._output_and_loss(n_outputs)
        return Network(sizes, hidden=self._hidden_activation(), output=output, loss=loss)

    def _init_params(self, net, rs, dtype):
        scheme = self.init
        if scheme == "sklearn":
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
        if scheme not in INIT_SCHEMES:
            raise ValueError(
                f"init must be 'sklearn' or one of {list(INIT_SCHEMES)}, got {scheme!r}"
            )
        return net.init(rs.randint(np.iinfo(np.int32).max), scheme=scheme, dtype=dtype)

    # ---------------------------------------------------------- fitting
    def fit(self, X, y):
        """Fit the network to ``X`` (n_samples, n_features) and ``y``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classifier; a label-indicator matrix for multi-label)
            or targets (regressor).

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def _partial_fit_available(self):
        return self._is_stochastic()

    def _fit(self, X, y, incremental, classes=None):
        kind, method = self._solver()
        hidden = self._hidden_sizes()
        self._hidden_activation()
        warm = checks.boolean(self.warm_start, "warm_start")
        if incremental and kind != "sgd":
            raise ValueError(
                f"partial_fit needs a solver of the SGD family "
                f"{list(SGD_SOLVERS)}, got {self.solver!r}"
            )
        early_stopping = checks.boolean(self.early_stopping, "early_stopping")
        if incremental and early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        xp = _device_namespace(self.device)  # before the data: a missing GPU fails fast
        first_pass = not hasattr(self, "params_") or (not warm and not incremental)
        X, target = self._validate_input(X, y, incremental, reset=first_pass, classes=classes)
        dtype = _check_dtype(self.dtype) or X.dtype
        X = X.astype(dtype, copy=False)
        n_outputs = self._n_outputs(target)
        net = self._network(X.shape[1], n_outputs)
        rs = check_random_state(self.random_state)
        if first_pass:
            params = self._init_params(net, rs, dtype)
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self._optimizer_state = None
            self._current_rate = None
            self._no_improvement_count = 0  # carried over by warm_start and partial_fit
        else:
            if net != self.network_:
                raise ValueError(
                    f"warm_start and partial_fit continue the fitted "
                    f"{self.network_!r}; these data and parameters need {net!r}"
                )
            params = self.params_.astype(dtype, copy=False)
        self.network_ = net
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(hidden) + 2
        self.out_activation_ = _OUT_ACTIVATION[net.output]
        alpha = _check_real(self.alpha, "alpha", 0)
        if kind == "sgd":
            self._fit_stochastic(
                X, target, y, params, method, alpha, rs, incremental, early_stopping, first_pass, xp
            )
        else:
            self._fit_scipy(X, target, params, method, alpha, xp)
        return self

    def _fit_stochastic(
        self,
        X,
        target,
        y,
        params,
        method,
        alpha,
        rs,
        incremental,
        early_stopping,
        first_pass,
        xp=None,
    ):
        max_iter = checks.integer(self.max_iter, "max_iter", 1)
        tol = _check_real(self.tol, "tol", 0)
        patience = checks.integer(self.n_iter_no_change, "n_iter_no_change", 1)
        shuffle = checks.boolean(self.shuffle, "shuffle")
        rate0 = _check_real(self.learning_rate_init, "learning_rate_init", 0, low_open=True)
        if self.learning_rate not in LEARNING_RATES:
            raise ValueError(
                f"learning_rate must be one of {list(LEARNING_RATES)}, got {self.learning_rate!r}"
            )
        power_t = _check_real(self.power_t, "power_t")
        if self.method_options is not None:
            raise ValueError(
                f"method_options are options of the scipy solvers; solver "
                f"{self.solver!r} runs the SGD loop (configure it with a rule "
                f"object from flatnn.optimizers as solver)"
            )
        rule = self._rule(method)
        if early_stopping:
            fraction = _check_real(
                self.validation_fraction, "validation_fraction", 0, 1, low_open=True, high_open=True
            )
            stratify = target if self._is_classifier and self.n_outputs_ == 1 else None
            rows_train, rows_val = train_test_split(
                np.arange(X.shape[0]), random_state=rs, test_size=fraction, stratify=stratify
            )
            if rows_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase "
                    "'validation_fraction' or the size of your dataset."
                )
            X_val, y_val = X[rows_val], self._score_target(y, rows_val)
            X, target = X[rows_train], target[rows_train]
            if first_pass or self.validation_scores_ is None:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
        elif self.best_loss_ is None:  # a warm start after a fit with early stopping
            self.best_loss_ = np.inf
        m = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, m)
        else:
            batch_size = checks.integer(self.batch_size, "batch_size", 1)
            if batch_size > m:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is "
                    "going to be clipped",
                    UserWarning,
                    stacklevel=4,
                )
                batch_size = m
        # scikit-learn's adam ignores learning_rate; its sgd schedules the rate
        kind = "constant" if method == "adam" else self.learning_rate
        keep = incremental and self._current_rate is not None
        rate = self._current_rate if keep else rate0
        schedule = _Schedule(
            kind, rate0, rate, power_t, self.t_, m, fresh=not incremental or self.t_ == 0
        )
        saved = self._optimizer_state if incremental else None
        if xp is not None:  # the data, and the state partial_fit continues, to the device
            X, target = xp.asarray(X), xp.asarray(target)
            if early_stopping:
                X_val = xp.asarray(X_val)
            if saved is not None:
                saved = _map_arrays(saved, xp.asarray)
        resumable = (_ResumableInPlace if optimizers.has_inplace(rule) else _Resumable)(rule, saved)
        verbose = bool(self.verbose)
        stop = {"last": None, "best": None, "stopped": False}
        self.n_iter_ = 0

        def on_epoch(intermediate_result):
            loss = float(intermediate_result.fun)
            self.n_iter_ += 1
            self.t_ += m
            self.loss_ = loss
            self.loss_curve_.append(loss)
            stop["last"] = intermediate_result.x
            if verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            if early_stopping:
                score = self._score_params(intermediate_result.x, X_val, y_val)
                self.validation_scores_.append(score)
                if verbose:
                    print(f"Validation score: {score:f}")
                if score < self.best_validation_score_ + tol:
                    self._no_improvement_count += 1
                else:
                    self._no_improvement_count = 0
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    stop["best"] = intermediate_result.x
            else:
                self._no_improvement_count = (
                    self._no_improvement_count + 1 if loss > self.best_loss_ - tol else 0
                )
                self.best_loss_ = min(self.best_loss_, loss)
            if self._no_improvement_count > patience:
                if schedule.decay():
                    self._no_improvement_count = 0
                    return
                stop["stopped"] = True
                if verbose:
                    what = "Validation score" if early_stopping else "Training loss"
                    print(
                        f"{what} did not improve more than tol={tol:f} for {patience} "
                        f"consecutive epochs. Stopping."
                    )
                raise StopIteration

        lam = alpha * m / batch_size
        result = sgd(
            self.network_,
            params,
            X,
            target,
            lam,
            epochs=1 if incremental else max_iter,
            batch_size=batch_size,
            learning_rate=schedule,
            method=resumable,
            rng=np.random.default_rng(rs.randint(np.iinfo(np.int32).max)),
            shuffle=shuffle,
            callback=on_epoch,
        )
        self._optimizer_state = resumable.state
        if xp is not None:  # the fitted estimator holds NumPy only: it pickles anywhere
            self._optimizer_state = _map_arrays(resumable.state, namespace.to_numpy)
            result.x, result.jac = namespace.to_numpy(result.x), namespace.to_numpy(result.jac)
        self._current_rate = schedule.rate
        if result.status in (STATUS_DONE, STATUS_STOPPED) and stop["last"] is not None:
            x = stop["best"] if early_stopping and stop["best"] is not None else stop["last"]
        else:  # a non-finite or diverging cost: flatnn returns the best parameters it saw
            warnings.warn(
                f"{self.solver!r} stopped: {result.message}", ConvergenceWarning, stacklevel=4
            )
            x = result.x
        self.params_ = np.ascontiguousarray(namespace.to_numpy(x))
        self.result_ = result
        if not incremental and not stop["stopped"] and result.status == STATUS_DONE:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({max_iter}) reached and "
                f"the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _fit_scipy(self, X, target, params, method, alpha, xp=None):
        max_iter = checks.integer(self.max_iter, "max_iter", 1)
        tol = _check_real(self.tol, "tol", 0)
        options = {_TOL_OPTION[method]: tol}
        if method != "TNC":  # TNC has no iteration limit of its own: see on_iteration
            options["maxiter"] = max_iter
        if method in _MAXFUN_METHODS:
            options["maxfun"] = checks.integer(self.max_fun, "max_fun", 1)
        extra = self.method_options
        if extra is not None:
            if not isinstance(extra, dict):
                raise TypeError(
                    f"method_options must be a dict of {method} options, got {type(extra).__name__}"
                )
            options.update(extra)
        verbose = bool(self.verbose)
        count = {"nit": 0}

        def on_iteration(intermediate_result):
            count["nit"] += 1
            if verbose:
                print(f"Iteration {count['nit']}, loss = {float(intermediate_result.fun):.8f}")
            if method == "TNC" and count["nit"] >= max_iter:
                raise StopIteration

        if xp is None:
            problem = (self.network_, params, X, target, alpha)
        else:  # the data on the device; scipy sees NumPy vectors
            from flatnn.backends.gpu_objective import GPUObjective

            problem = (GPUObjective(self.network_, X, target, alpha, xp=xp), params)
        result = minimize(*problem, method=method, options=options, callback=on_iteration)
        curve = [history_fun(entry) for entry in result.history]
        self.loss_curve_.extend(curve)
        self.loss_ = float(result.fun)
        self.best_loss_ = min([self.loss_] + curve)
        self.n_iter_ = int(result.nit)
        self.params_ = np.ascontiguousarray(result.x)
        self.result_ = result
        stopped_by_us = method == "TNC" and result.status == STATUS_STOPPED
        if not result.success:
            why = (
                f"reached max_iter={max_iter}"
                if stopped_by_us
                else f"status {result.status}: {result.message}"
            )
            warnings.warn(
                f"{self.solver} failed to converge after {self.n_iter_} "
                f"iteration(s) ({why}). Increase max_iter or scale the data.",
                ConvergenceWarning,
                stacklevel=4,
            )

    # ---------------------------------------------------------- predicting
    def _validate_X(self, X):
        check_is_fitted(self, "params_")
        return validate_data(self, X, dtype=(np.float64, np.float32), reset=False)

    def _outputs(self, params, X):
        """Output activations (m, n_outputs), NumPy, for ``X`` already validated.

        With ``device="cuda"`` the forward pass runs on the GPU (``X`` and
        ``params`` are copied there unless they already are) and the outputs
        come back to the host.
        """
        xp = _device_namespace(self.device)
        if xp is None:
            return self.network_.forward(params, X)
        return namespace.to_numpy(
            self.network_.forward(
                namespace.asarray(params, xp, "params"), namespace.asarray(X, xp, "X")
            )
        )

    # ---------------------------------------------------------- files
    def save(self, path, **metadata):
        """Write the fitted model to a flatnn model file (no pickle), atomically.

        ``flatnn.load(path)`` returns its network and ``params_`` like any other
        model file's; :meth:`load` rebuilds the estimator.

        Parameters
        ----------
        path : str or os.PathLike
        **metadata
            Extra JSON values stored beside the estimator's own.

        Returns
        -------
        str
        """
        check_is_fitted(self, "params_")
        stored, omitted = {}, []
        for name, value in self.get_params(deep=False).items():
            value = _jsonable(value)
            (omitted.append(name) if value is _UNSTORABLE else stored.__setitem__(name, value))
        state = {
            "class": type(self).__name__,
            "params": stored,
            "omitted_params": omitted,
            "n_features_in": int(self.n_features_in_),
            "n_outputs": int(self.n_outputs_),
            "n_iter": int(self.n_iter_),
            "t": int(self.t_),
            "loss": float(self.loss_),
            "loss_curve": [float(v) for v in self.loss_curve_],
        }
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in"] = [str(v) for v in self.feature_names_in_]
        state.update(self._label_state())
        return io.save(path, self.network_, self.params_, **{_FORMAT: state}, **metadata)

    @classmethod
    def load(cls, path):
        """Read an estimator written by :meth:`save`.

        Constructor parameters that JSON cannot hold (an update-rule object as
        ``solver``, a ``RandomState``) were not stored and take their defaults;
        their names are in the file's ``omitted_params``.

        Returns
        -------
        estimator : cls
            Fitted: it predicts exactly as the saved one did.
        """
        net, params, metadata = io.load(path)
        state = metadata.get(_FORMAT)
        if not isinstance(state, dict) or state.get("class") != cls.__name__:
            found = state.get("class") if isinstance(state, dict) else None
            raise ValueError(
                f"{os.fspath(path)!r} holds no flatnn.sklearn {cls.__name__} (found {found!r})"
            )
        stored = dict(state["params"])
        if isinstance(stored.get("hidden_layer_sizes"), list):
            stored["hidden_layer_sizes"] = tuple(stored["hidden_layer_sizes"])
        est = cls(**stored)
        est.network_, est.params_ = net, params
        est.n_features_in_ = state["n_features_in"]
        if "feature_names_in" in state:
            est.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        est.n_outputs_ = state["n_outputs"]
        est.n_layers_ = len(net.sizes)
        est.out_activation_ = _OUT_ACTIVATION[net.output]
        est.n_iter_, est.t_, est.loss_ = state["n_iter"], state["t"], state["loss"]
        est.loss_curve_ = list(state["loss_curve"])
        est.best_loss_ = min(est.loss_curve_) if est.loss_curve_ else est.loss_
        est.validation_scores_ = None
        est.best_validation_score_ = None
        est._optimizer_state = None
        est._current_rate = None
        est._no_improvement_count = 0
        est._restore_labels(state)
        return est

    def _label_state(self):
        return {}

    def _restore_labels(self, state):
        pass


_UNSTORABLE = object()


def _jsonable(value):
    """A constructor parameter as JSON data, or _UNSTORABLE."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        items = [_jsonable(v) for v in value]
        return _UNSTORABLE if any(v is _UNSTORABLE for v in items) else items
    if isinstance(value, dict):
        items = {k: _jsonable(v) for k, v in value.items()}
        ok = all(isinstance(k, str) and v is not _UNSTORABLE for k, v in items.items())
        return items if ok else _UNSTORABLE
    try:
        dt = np.dtype(value)
    except TypeError:
        return _UNSTORABLE
    return dt.name if dt in (np.float32, np.float64) else _UNSTORABLE


# ------------------------------------------------------------- classifier
class MLPClassifier(ClassifierMixin, _BaseMLP):
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
    tol, n_iter_no_change : float, int
        SGD family: stop when the training loss (or the validation score) has
        not improved by ``tol`` for ``n_iter_no_change`` consecutive epochs.
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
    params_ : ndarray, shape (network_.n_params,)
        The one flat weight vector.
    network_ : flatnn.Network
    coefs_, intercepts_ : list of ndarray
        Views into ``params_``: ``coefs_[i]`` (n_in, n_out), ``intercepts_[i]`` (n_out,).
    n_iter_, t_ : int
        Epochs or iterations of the last fit; samples seen by the SGD family.
    loss_, best_loss_, loss_curve_ :
        scikit-learn's loss (with its L2 term) at the end, the best, and at every
        epoch or iteration.
    validation_scores_, best_validation_score_ :
        Accuracy on the held-out data per epoch (``early_stopping``), else None.
    n_features_in_, feature_names_in_, n_outputs_, n_layers_, out_activation_
    result_ : scipy.optimize.OptimizeResult
        flatnn's result of the last fit, with ``history``.
    """

    _is_classifier = True

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        method_options=None,
        init="sklearn",
        device="cpu",
    ):
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _n_outputs(self, target):
        if self._label_binarizer.y_type_ == "multiclass":
            return len(self.classes_)
        return target.shape[1]

    def _output_and_loss(self, n_outputs):
        y_type = self._label_binarizer.y_type_
        return ("softmax" if y_type == "multiclass" else "sigmoid"), "cross_entropy"

    def _validate_input(self, X, y, incremental, reset, classes=None):
        X, y = validate_data(
            self, X, y, multi_output=True, dtype=(np.float64, np.float32), reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if incremental and _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(self.classes_)
        elif not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
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
        dtype = _check_dtype(self.dtype) or X.dtype
        if self._label_binarizer.y_type_ == "multiclass":
            # class indices (m,): flatnn never expands them to one-hot
            target = np.searchsorted(self.classes_, y)
        else:  # binary (m, 1) or multi-label (m, k) indicators
            target = self._label_binarizer.transform(y).astype(dtype)
        return X, target

    def _score_target(self, y, rows):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        return y[rows]

    def _predict_params(self, params, X):
        out = self._outputs(params, X)
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def _score_params(self, params, X, y):
        return accuracy_score(y, self._predict_params(params, X))

    def predict(self, X):
        """Predicted classes, shape (n_samples,) (or (n_samples, n_classes) for multi-label)."""
        X = self._validate_X(X)
        return self._predict_params(self.params_, X)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        X = self._validate_X(X)
        out = self._outputs(self.params_, X)
        if self.n_outputs_ == 1:
            p = out[:, 0]
            return np.vstack([1 - p, p]).T
        return out

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``, shape (n_samples, n_classes)."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    @available_if(_BaseMLP._partial_fit_available)
    def partial_fit(self, X, y, classes=None):
        """One epoch of the SGD family over ``X, y``, continuing the optimizer.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_classes)
        classes : array-like, shape (n_classes,)
            Every class, required on the first call (as in scikit-learn).

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True, classes=classes)

    def _label_state(self):
        lb = self._label_binarizer
        classes = self.classes_.tolist()
        return {"classes": classes, "y_type": lb.y_type_, "classes_dtype": self.classes_.dtype.str}

    def _restore_labels(self, state):
        classes = np.asarray(state["classes"], dtype=np.dtype(state["classes_dtype"]))
        lb = LabelBinarizer()
        if state["y_type"].startswith("multilabel"):
            lb.fit(np.eye(len(classes), dtype=int))
        else:
            lb.fit(classes)
        self._label_binarizer = lb
        self.classes_ = lb.classes_


# ------------------------------------------------------------- regressor
class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's interface, flatnn's engine.

    Squared error with an identity output, one or several targets. The
    parameters and attributes are those of :class:`MLPClassifier`, plus ``loss``
    (``"squared_error"`` only: flatnn has no Poisson loss), without ``classes_``
    and ``predict_proba``; ``validation_scores_`` holds R².
    """

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        method_options=None,
        init="sklearn",
        device="cpu",
    ):
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _n_outputs(self, target):
        return 1 if target.ndim == 1 else target.shape[1]

    def _output_and_loss(self, n_outputs):
        if self.loss != "squared_error":
            raise ValueError(
                f"loss must be 'squared_error' (flatnn has no Poisson loss), got {self.loss!r}"
            )
        return "identity", "squared_error"

    def _validate_input(self, X, y, incremental, reset, classes=None):
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        dtype = _check_dtype(self.dtype) or X.dtype
        return X, y.astype(dtype, copy=False)

    def _score_target(self, y, rows):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        return y[rows]

    def _predict_params(self, params, X):
        out = self._outputs(params, X)
        return out.ravel() if out.shape[1] == 1 else out

    def _score_params(self, params, X, y):
        return r2_score(y, self._predict_params(params, X))

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_outputs)."""
        X = self._validate_X(X)
        return self._predict_params(self.params_, X)

    @available_if(_BaseMLP._partial_fit_available)
    def partial_fit(self, X, y):
        """One epoch of the SGD family over ``X, y``, continuing the optimizer.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True)
