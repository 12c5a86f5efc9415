"""The estimators' parameters: names, choices and the one table of constraints.

Every constructor parameter of :class:`~flatnn.sklearn.MLPClassifier` and
:class:`~flatnn.sklearn.MLPRegressor` is checked against :data:`PARAMETER_CONSTRAINTS`
(the regressor's table adds ``loss``) at the start of every ``fit`` and
``partial_fit``, whatever the solver, in scikit-learn's own way: the table is
the estimator's ``_parameter_constraints`` and the check is scikit-learn's
``BaseEstimator._validate_params``. A value outside its constraint raises
:class:`InvalidParameterError` (scikit-learn's: a subclass of both ValueError
and TypeError) with scikit-learn's wording, naming the user's parameter::

    The 'alpha' parameter of MLPClassifier must be a float in the range [0.0, inf). Got -1 instead.

scikit-learn's constraints are kept as they are; flatnn widens only those it
adds choices to (``solver``, ``activation``) and adds its own parameters
(``dtype``, ``method_options``, ``init``, ``device``).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

from flatnn.core.network import INIT_SCHEMES
from flatnn.training import SCIPY_METHODS

__all__ = [
    "InvalidParameterError",
    "PARAMETER_CONSTRAINTS",
    "REGRESSOR_CONSTRAINTS",
    "ACTIVATIONS",
    "SGD_SOLVERS",
    "SCIPY_SOLVERS",
    "SCIPY_BY_KEY",
    "LEARNING_RATES",
    "DEVICES",
    "REGRESSION_LOSSES",
    "check_parameter",
    "invalid",
]

SGD_SOLVERS = ("sgd", "adam", "momentum", "nesterov", "rmsprop")
"""Solver names that run :func:`flatnn.sgd` (a rule object does too)."""

SCIPY_SOLVERS = ("lbfgs",) + tuple(SCIPY_METHODS)
"""Solver names that run :func:`flatnn.minimize` (``lbfgs`` is ``L-BFGS-B``)."""

SCIPY_BY_KEY = {name.lower(): name for name in SCIPY_METHODS}
SCIPY_BY_KEY["lbfgs"] = "L-BFGS-B"
"""A scipy solver name in lower case -> the method :func:`flatnn.minimize` runs."""

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
"""The values of ``learning_rate`` (scikit-learn's schedules)."""

DEVICES = ("cpu", "cuda")
"""The values of ``device``."""

REGRESSION_LOSSES = ("squared_error", "poisson")
"""The values of ``MLPRegressor``'s ``loss`` (scikit-learn's)."""

_SOLVER_NAMES = set(SGD_SOLVERS) | set(SCIPY_SOLVERS) | set(SCIPY_BY_KEY)

PARAMETER_CONSTRAINTS: dict[str, list[Any]] = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "solver": [StrOptions(_SOLVER_NAMES), HasMethods(["init", "update"])],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions(set(LEARNING_RATES))],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
    "max_fun": [Interval(Integral, 1, None, closed="left")],
    # flatnn's own
    "dtype": [
        None,
        StrOptions({"float32", "float64"}),
        Options(type, {np.float32, np.float64}),
        Options(np.dtype, {np.dtype(np.float32), np.dtype(np.float64)}),
    ],
    "method_options": [None, dict],
    "init": [StrOptions({"sklearn", *INIT_SCHEMES})],
    "device": [StrOptions(set(DEVICES))],
}
"""The constraints of every parameter the two estimators share (scikit-learn's form)."""

REGRESSOR_CONSTRAINTS: dict[str, list[Any]] = {
    **PARAMETER_CONSTRAINTS,
    "loss": [StrOptions(set(REGRESSION_LOSSES))],
}
"""``MLPRegressor``'s table: the shared one and ``loss``."""


def check_parameter(name: str, value: Any, caller: str) -> Any:
    """Check one parameter against :data:`REGRESSOR_CONSTRAINTS`; return it.

    For the checks outside ``fit`` (``device`` at predict time).

    Raises
    ------
    InvalidParameterError
        In scikit-learn's words, naming ``name`` and ``caller``.
    """
    validate_parameter_constraints(
        {name: REGRESSOR_CONSTRAINTS[name]}, {name: value}, caller_name=caller
    )
    return value


def invalid(name: str, caller: str, expected: str, value: Any) -> InvalidParameterError:
    """An :class:`InvalidParameterError` in scikit-learn's wording, for the checks a
    table cannot state (``hidden_layer_sizes`` entries, a pair of parameters)."""
    return InvalidParameterError(
        f"The {name!r} parameter of {caller} must be {expected}. Got {value!r} instead."
    )
