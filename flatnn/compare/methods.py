"""Methods of an optimizer comparison: the SGD rules, the scipy methods, user code.

A :class:`Method` names one optimizer and how the protocol runs it:

* ``kind="rule"``: an update rule for :func:`flatnn.sgd` (every rule of
  :data:`flatnn.optimizers.RULES`, or a user rule object); its hyperparameter
  is the learning rate, searched on a log-spaced ``grid``; it runs
  ``budget`` epochs (an epoch is one pass over the data).
* ``kind="scipy"``: a method of :data:`flatnn.training.SCIPY_METHODS`, run by
  :func:`flatnn.minimize`; a line-search or trust-region method has no
  learning rate, so its grid is empty and it runs once per seed.
* ``kind="callable"``: a ``minimize``-like callable in scipy's custom-method
  form ``method(fun, x0, args, jac, hessp, callback, **options)`` (see
  :func:`flatnn.minimize`); when it takes a ``learning_rate`` option that is
  its grid's hyperparameter.

On the command line a user method is ``module:attr`` (:func:`get_method`):
a rule object, a class or function of no arguments returning one, or a
custom-method callable.
"""

from __future__ import annotations

import inspect
from typing import Any

import attrs
import numpy as np

from flatnn.compare.problems import load_attr
from flatnn.training import rules
from flatnn.training.scipy_bridge import HESSP_METHODS, SCIPY_METHODS

__all__ = [
    "Method",
    "LEARNING_RATE_RANGES",
    "DENSE_METHODS",
    "DENSE_MAX_PARAMS",
    "get_method",
    "default_methods",
    "log_grid",
]

LEARNING_RATE_RANGES: dict[str, tuple[float, float]] = {
    "sgd": (1e-2, 10.0),
    "momentum": (1e-3, 1.0),
    "nesterov": (1e-3, 1.0),
    "adam": (1e-4, 1e-1),
    "rmsprop": (1e-4, 1e-1),
}
"""Learning-rate range of each built-in rule's grid, ends included (user rules:
``USER_RANGE``). Three decades around each rule's usual rates."""

USER_RANGE = (1e-4, 1.0)

DENSE_METHODS = ("BFGS", "SLSQP")
"""scipy methods that keep a dense ``n_params × n_params`` matrix: skipped by
:func:`default_methods` above :data:`DENSE_MAX_PARAMS` parameters."""

DENSE_MAX_PARAMS = 2000
"""2000² float64 = 32 MB; the MNIST 784-100-10 network's 79510² would be 50 GB."""


def log_grid(low: float, high: float, points: int) -> tuple[float, ...]:
    """``points`` log-spaced values from ``low`` to ``high``, 3 significant digits."""
    if not (0 < low <= high) or points < 1:
        raise ValueError(
            f"a grid needs 0 < low <= high and points >= 1, got {low}, {high}, {points}"
        )
    if points == 1:
        return (float(f"{np.sqrt(low * high):.3g}"),)
    return tuple(float(f"{v:.3g}") for v in np.geomspace(low, high, points))


@attrs.frozen(eq=False)
class Method:
    """One optimizer of a comparison.

    Parameters
    ----------
    name : str
        Names the method in every output.
    kind : {"rule", "scipy", "callable"}
    optimizer : str, rule or callable
        What :func:`flatnn.sgd` (rule) or :func:`flatnn.minimize` (scipy,
        callable) is given as ``method=``.
    lr_range : (low, high) or None
        The learning-rate range of the grid; None: no hyperparameter.
    uses_hessp : bool
        Whether the method is given Hessian-vector products.
    """

    name: str
    kind: str = attrs.field(validator=attrs.validators.in_(("rule", "scipy", "callable")))
    optimizer: Any
    lr_range: tuple[float, float] | None = None
    uses_hessp: bool = False

    def __attrs_post_init__(self) -> None:
        if self.kind == "rule" and self.lr_range is None:
            raise ValueError(f"method {self.name!r} is an update rule: it needs lr_range")

    def grid(self, points: int, override: tuple[float, float] | None = None) -> tuple[float, ...]:
        """The learning rates to try: ``points`` log-spaced values, or ``()`` without one."""
        if self.lr_range is None:
            return ()
        low, high = override if override is not None else self.lr_range
        return log_grid(low, high, points)

    def describe(self) -> dict[str, Any]:
        """The method as JSON-ready facts."""
        return {
            "name": self.name,
            "kind": self.kind,
            "hyperparameter": None if self.lr_range is None else "learning_rate",
            "uses_hessp": self.uses_hessp,
        }


def _takes_learning_rate(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "learning_rate" in params


def _user_method(spec: str) -> Method:
    obj = load_attr(spec, "method")
    if inspect.isclass(obj) or (not rules.is_rule(obj) and callable(obj)):
        try:
            made = obj() if _no_required_args(obj) else None
        except Exception:  # noqa: BLE001 - a custom method called wrongly: not a factory
            made = None
        if made is not None and rules.is_rule(made):
            obj = made
        elif inspect.isclass(obj):
            raise ValueError(
                f"method {spec!r}: the class {obj.__name__} does not make an update rule "
                f"(init/update) when called without arguments"
            )
    if rules.is_rule(obj):
        return Method(spec, "rule", obj, USER_RANGE)
    if callable(obj):
        lr = USER_RANGE if _takes_learning_rate(obj) else None
        return Method(spec, "callable", obj, lr, uses_hessp=True)
    raise ValueError(
        f"method {spec!r} is a {type(obj).__name__}; expected an update rule (init/update), "
        f"a function returning one, or a minimize-like callable"
    )


def _no_required_args(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
    )


_SCIPY_BY_KEY = {name.lower(): name for name in SCIPY_METHODS}


def get_method(name: str | Method) -> Method:
    """A method by name: a rule of ``RULES``, a scipy method, or ``module:attr``.

    Names are case-insensitive; a :class:`Method` is returned unchanged.

    Raises
    ------
    ValueError
        An unknown name, or a ``module:attr`` that is neither a rule nor a callable.
    """
    if isinstance(name, Method):
        return name
    if not isinstance(name, str):
        raise TypeError(f"a method is a name or a Method, got {type(name).__name__}")
    key = name.lower()
    if key in rules.RULES:
        return Method(key, "rule", key, LEARNING_RATE_RANGES.get(key, USER_RANGE))
    if key in _SCIPY_BY_KEY:
        scipy_name = _SCIPY_BY_KEY[key]
        return Method(scipy_name, "scipy", scipy_name, None, scipy_name in HESSP_METHODS)
    if ":" in name:
        return _user_method(name)
    raise ValueError(
        f"unknown method {name!r}; expected one of {[*rules.RULES, *SCIPY_METHODS]} or module:attr"
    )


def default_methods(n_params: int) -> tuple[list[Method], list[str]]:
    """Every rule and scipy method fit for a network of ``n_params`` parameters.

    Returns
    -------
    methods : list of Method
    skipped : list of str
        One line per method left out, saying why.
    """
    methods = [get_method(name) for name in (*rules.RULES, *SCIPY_METHODS)]
    skipped = []
    if n_params > DENSE_MAX_PARAMS:
        skipped = [
            f"{m.name}: keeps a dense {n_params}² matrix (more than {DENSE_MAX_PARAMS} parameters)"
            for m in methods
            if m.name in DENSE_METHODS
        ]
        methods = [m for m in methods if m.name not in DENSE_METHODS]
    return methods, skipped
