"""The bridge to ``scipy.optimize.minimize``: :func:`minimize`.

scipy sees the training objective as ``fun(x) -> J`` and ``jac(x) -> ∇J``, both
answered by one forward and one backward pass per point (the second call finds
the first's result), and, for the methods in :data:`HESSP_METHODS`, the exact
R-operator ``hessp(x, v)``. The objective is evaluated in the dtype of
``params0`` (so a float32 ``X`` is used as it is). scipy's methods work in
float64: each evaluation casts the iterate to that dtype and the gradient back,
except in L-BFGS-B, whose own update is float64 whatever the dtype of ``x0``:
it is given ``params0`` as it is, so that scipy casts each iterate once and
keeps its copies of it in that dtype, and it takes the gradient as it is (it
casts the gradient itself). The record of the run (history,
validation, best iterate, callbacks, statuses) is the driver's
(:mod:`flatnn.training.driver`), the same as :func:`flatnn.sgd`'s.

``minimize`` with a built-in update rule (``method="adam"``, ...) runs
:func:`flatnn.sgd` with ``options`` as its keyword arguments.

scipy's TNC stores its evaluation limits in a C ``int``: ``maxfun`` and
``maxCGit`` above ``2**31 - 1`` are clamped to :data:`TNC_INT_MAX` (a run that
long never ends by that limit anyway); the other methods take any integer.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize
from scipy.optimize import OptimizeResult

from flatnn.base import checks
from flatnn.training import rules as optimizers
from flatnn.training.driver import (
    STATUS_NOT_FINITE,
    STATUS_STOPPED,
    Recorder,
    Stopped,
    Validation,
    check_params0,
    resolve_objective,
)
from flatnn.training.sgd_loop import sgd

__all__ = ["minimize", "SCIPY_METHODS", "HESSP_METHODS", "TNC_INT_MAX", "ScipyProblem"]

SCIPY_METHODS = (
    "CG",
    "BFGS",
    "L-BFGS-B",
    "TNC",
    "SLSQP",
    "Newton-CG",
    "trust-ncg",
    "trust-krylov",
    "trust-constr",
)
"""The scipy methods :func:`minimize` accepts: every one that uses a gradient."""

HESSP_METHODS = ("Newton-CG", "trust-ncg", "trust-krylov", "trust-constr")
"""The scipy methods that are given the exact ``hessp``."""

TNC_INT_MAX = 2**31 - 1
"""The largest ``maxfun``/``maxCGit`` TNC takes (a C int); larger limits are clamped to it."""

_SCIPY_BY_KEY = {name.lower(): name for name in SCIPY_METHODS}
_HESSP_KEYS = {name.lower() for name in HESSP_METHODS}
_SGD_REQUIRED = ("epochs", "batch_size", "learning_rate")
_TNC_COUNTS = ("maxfun", "maxCGit")
# scipy options that count something (at least 1, or 0 where marked) and tolerances (>= 0)
_COUNT_OPTIONS = {
    "maxiter": 1,
    "maxfun": 1,
    "maxfev": 1,
    "maxcor": 1,
    "maxls": 1,
    "maxCGit": 0,
    "maxinner": 1,
}
_TOLERANCE_OPTIONS = (
    "gtol",
    "ftol",
    "xtol",
    "eps",
    "tol",
    "barrier_tol",
    "eta",
    "initial_tr_radius",
    "max_trust_radius",
    "initial_constr_penalty",
    "initial_barrier_parameter",
    "initial_barrier_tolerance",
    "accuracy",
    "stepmx",
    "rescale",
    "c1",
    "c2",
    "pgtol",
    "factr",
)


def _check_options(options: Any, scipy_method: Any) -> dict[str, Any] | None:
    """Checked scipy options; a copy with TNC's C-int limits clamped."""
    if options is None:
        return None
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    for key, value in options.items():
        if key in _COUNT_OPTIONS and value is not None:
            checks.integer(value, f"options[{key!r}]", _COUNT_OPTIONS[key])
        elif key in _TOLERANCE_OPTIONS and value is not None:
            checks.real(value, f"options[{key!r}]", 0)
    if scipy_method == "TNC":
        options = dict(options)
        for key in _TNC_COUNTS:
            if options.get(key) is not None:
                options[key] = min(int(options[key]), TNC_INT_MAX)
    return options


class ScipyProblem:
    """The objective as scipy sees it, and the per-iteration record.

    The last few evaluations are remembered, so that a callback's point (usually
    the one the line search just evaluated) is not evaluated twice.

    Parameters
    ----------
    obj : objective-like
        ``cost_grad(params)`` and ``hessp(params, v)``.
    work : numpy dtype
        The dtype the objective is evaluated in (that of ``params0``).
    recorder : Recorder
        Where each iteration is recorded.
    """

    def __init__(self, obj: Any, work: Any, recorder: Recorder) -> None:
        self.obj = obj
        self.work = work
        self.recorder = recorder
        self.nfev = 0
        self.nhev = 0
        # scipy's own method (a string): it reports J at x to the callback and hands fun
        # a copy of x; a custom method's callable may do neither
        self.builtin = False
        # L-BFGS-B: x0, scipy's copies of the iterates and the gradient stay in `work`
        self.native = False
        self._recent: list[tuple[Any, float, Any]] = []  # (x, f, g) of the last evaluations

    def evaluate(self, x: np.ndarray, private: bool = False) -> tuple[float, Any]:
        """``(J, ∇J)`` at ``x``, shape ``(n_params,)``, from the cache or one evaluation.

        ``x`` is float64, or in the objective's dtype (L-BFGS-B's points).

        The cache holds the points as the objective sees them (in its dtype): a
        float32 objective's cast is its key, and ``private=True`` says that ``x``
        is the caller's to give away (scipy's own methods hand ``fun`` a copy), so
        neither is copied again.

        A point where the objective overflows (or a non-finite ``x``, which a
        line search can reach from there) is ``J = inf`` with a zero gradient,
        as scipy expects of a point outside the domain: line searches step back
        from it, and a run that ends there gets status 2 from :func:`minimize`.
        """
        xw = x.astype(self.work, copy=False)
        # a miss almost always shows in 64 spread entries: no full comparison for it
        # (four full ones per evaluation cost 5 % of an L-BFGS fit on 1M parameters)
        step = max(1, xw.shape[0] // 64)
        for xr, f, g in reversed(self._recent):
            if np.array_equal(xr[::step], xw[::step]) and np.array_equal(xr, xw):
                return f, g
        if np.isfinite(x).all():
            try:
                f, g = self.obj.cost_grad(xw)
            except checks.NotFiniteError:
                f, g = math.inf, np.zeros(x.shape, self.work)
        else:
            f, g = math.inf, np.zeros(x.shape, self.work)
        self.nfev += 1
        self._recent.append((xw if private or xw is not x else xw.copy(), f, g))
        del self._recent[:-4]
        return f, g

    def fun(self, x: np.ndarray) -> float:
        """scipy's ``fun``: ``J`` at ``x``, shape ``(n_params,)``."""
        return self.evaluate(x, private=self.builtin)[0]

    def jac(self, x: np.ndarray) -> np.ndarray:
        """scipy's ``jac``: ``∇J`` at ``x``, float64 (the objective's dtype for L-BFGS-B).

        Separate callables, rather than ``jac=True``, spare scipy's wrapper of
        the latter (``MemoizeJac``) its own copy and second comparison of ``x``
        per evaluation; the cache answers ``jac`` at the point ``fun`` just saw.
        """
        g = self.evaluate(x, private=self.builtin)[1]
        if g.dtype != np.float64 and not self.native:
            return g.astype(np.float64)
        view = g.view()  # read-only: the cache stays intact, without a copy per evaluation
        view.flags.writeable = False
        return view

    def hessp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """scipy's ``hessp``: the objective's exact ``H v``, shape ``(n_params,)``.

        ``H 0 = 0`` is answered without a pass over the data and not counted:
        trust-constr probes each Hessian operator it builds with a zero vector
        (scipy's ``LinearOperator`` infers its dtype so), about half its products.
        """
        if not np.any(v):
            return np.zeros(np.shape(v), np.float64)
        self.nhev += 1
        Hv = self.obj.hessp(
            x.astype(self.work, copy=False), np.asarray(v).astype(self.work, copy=False)
        )
        return np.asarray(Hv.astype(np.float64, copy=False))

    def on_iteration(self, intermediate_result: Any) -> None:
        """scipy's callback: an ``OptimizeResult``, or the iterate (TNC, custom methods)."""
        x = np.asarray(getattr(intermediate_result, "x", intermediate_result), dtype=np.float64)
        # scipy's own methods report J at x; a custom method's value is not trusted
        f = _reported_fun(intermediate_result) if self.builtin else None
        if f is None:  # the cache usually holds J at x
            f, _ = self.evaluate(x)
        entry = {"nit": len(self.recorder.history) + 1, "fun": float(f), "nfev": self.nfev}
        xw = x.astype(self.work, copy=False)  # a cast is a new array: the record may keep it
        with np.errstate(**self.recorder.user_err):  # record copies x where it keeps it
            self.recorder.record(xw, entry, owned=xw is not x)

    def solve(
        self, params0: Any, method: Any, options: dict[str, Any] | None, use_hessp: bool
    ) -> OptimizeResult:
        """Run ``scipy.optimize.minimize`` from ``params0`` and return the completed result."""
        kwargs = {"hessp": self.hessp} if use_hessp else {}
        self.builtin = isinstance(method, str)
        self.native = method == "L-BFGS-B"
        x0 = params0.astype(self.work if self.native else np.float64)
        with np.errstate(all="ignore"):  # a non-finite objective ends with status 2 instead
            try:
                res = scipy.optimize.minimize(
                    self.fun,
                    x0,
                    jac=self.jac,
                    method=method,
                    callback=self.on_iteration,
                    options=options,
                    **kwargs,
                )
            except Stopped:
                best = self.recorder.best_x
                x = params0.astype(self.work, copy=True) if best is None else best
                return self.result_at(
                    x, status=STATUS_STOPPED, message="`callback` raised `StopIteration`."
                )
            return _finish(self, res, params0, method)

    def result_at(
        self, x: Any, fg: tuple[float, Any] | None = None, **fields: Any
    ) -> OptimizeResult:
        """The run's result at ``x``; ``fg``: its ``(J, ∇J)`` when known, else evaluated."""
        f, g = self.evaluate(np.asarray(x, dtype=np.float64)) if fg is None else fg
        return self.recorder.result(x, f, g, nfev=self.nfev, nhev=self.nhev, **fields)


def _reported_fun(intermediate_result: Any) -> float | None:
    """``J`` at the iterate as scipy's ``OptimizeResult`` reports it, or None where it does not.

    scipy evaluated it through :meth:`ScipyProblem.fun`, so it is the objective's own
    value; taking it saves a cache lookup (a full comparison of ``x``) per iteration.
    """
    fun = getattr(intermediate_result, "fun", None)
    if isinstance(fun, (float, np.floating)) or (isinstance(fun, np.ndarray) and fun.size == 1):
        return float(fun)
    return None


def _scipy_method(method: Any) -> tuple[Any, bool]:
    """``(scipy's name or the custom callable, whether it gets hessp)``."""
    if isinstance(method, str):
        if method.lower() not in _SCIPY_BY_KEY:
            raise ValueError(
                f"unknown method {method!r}; expected one of "
                f"{list(SCIPY_METHODS)}, a built-in rule {list(optimizers.RULES)}, "
                f"a rule object or a callable"
            )
        return _SCIPY_BY_KEY[method.lower()], method.lower() in _HESSP_KEYS
    if callable(method):
        return method, True
    raise TypeError(
        f"method must be a string, a rule object or a callable, got {type(method).__name__}"
    )


def _recorder(obj: Any, callback: Any, validation: Any, work: Any) -> Recorder:
    net: Any = getattr(obj, "net", None)
    if validation is not None and net is None:
        raise TypeError("validation needs the objective's network (an attribute net)")
    return Recorder(callback, None if validation is None else Validation(net, validation, work))


def _is_sgd_rule(method: Any) -> bool:
    if isinstance(method, str):
        return method.lower() in optimizers.RULES
    return optimizers.is_rule(method)


def minimize(
    net: Any,
    params0: Any,
    X: Any = None,
    y: Any = None,
    lam: float = 0.0,
    *,
    method: Any = "L-BFGS-B",
    options: dict[str, Any] | None = None,
    callback: Callable[..., Any] | None = None,
    validation: Any = None,
    sample_weight: Any = None,
) -> OptimizeResult:
    """Minimize the training objective with scipy or with the built-in SGD loop.

    Parameters
    ----------
    net : Network or objective-like
        A network (with ``X``, ``y``, ``lam``) or an object with ``cost_grad(params)``,
        ``hessp(params, v)`` and ``n_params``, such as :class:`flatnn.Objective` (then
        omit ``X``, ``y``, ``lam``, ``sample_weight``).
    params0 : ndarray, shape (n_params,)
        Starting point; never modified.
    X, y, lam
        As in :meth:`flatnn.Network.cost`.
    method : str or callable, default "L-BFGS-B"
        One of :data:`SCIPY_METHODS` (case-insensitive); a built-in rule ``sgd``,
        ``momentum``, ``nesterov``, ``adam``, ``rmsprop`` or a rule object, which runs
        :func:`flatnn.sgd` with ``options`` as its keywords (``epochs``, ``batch_size``
        and ``learning_rate`` required); or a callable in scipy's custom-method form
        ``method(fun, x0, args, jac, hessp, callback, **options)``.
    options : dict, optional
        scipy's options (``maxiter``, ``gtol``, ...; TNC's ``maxfun``/``maxCGit`` clamped to
        :data:`TNC_INT_MAX`), or :func:`flatnn.sgd`'s keywords.
    callback : callable, optional
        ``callback(intermediate_result)`` or ``callback(xk)``, once per iteration.
    validation : (X_val, y_val), optional
        Adds ``val_cost`` and ``val_accuracy`` to each entry (needs the objective's ``net``).
    sample_weight : ndarray, shape (m,), optional
        ``w >= 0``: ``J = Σ wᵢ lossᵢ / Σ wᵢ + lam/(2 Σ wᵢ) Σ‖θ[:,1:]‖²`` (integer weights
        equal repeated rows).

    Returns
    -------
    OptimizeResult
        scipy's result with ``x`` in the dtype of ``params0``, ``nfev`` = ``njev`` = the
        ``cost_grad`` evaluations made, ``nhev`` the Hessian-vector products, and
        ``history``. After StopIteration ``x`` is the best iterate seen (by validation
        cost when ``validation`` is given, else by ``J``), ``status`` 99. When the
        objective became NaN or infinite: ``status`` 2, ``success`` False, ``not_finite``
        True and ``x`` the best iterate with a finite objective (else ``params0``);
        else scipy's ``status``.
    """
    weights = {} if sample_weight is None else {"sample_weight": sample_weight}
    if _is_sgd_rule(method):
        return _minimize_sgd(
            net, params0, X, y, lam, method, options, callback, validation, weights
        )
    scipy_method, use_hessp = _scipy_method(method)
    options = _check_options(options, scipy_method)
    obj = resolve_objective(net, X, y, lam, "minimize", **weights)
    params0 = check_params0(params0, obj.n_params)
    work = params0.dtype
    problem = ScipyProblem(obj, work, _recorder(obj, callback, validation, work))
    return problem.solve(params0, scipy_method, options, use_hessp)


def _finish(
    problem: ScipyProblem, res: OptimizeResult, params0: Any, scipy_method: Any
) -> OptimizeResult:
    """scipy's result completed: status 2 and the best finite iterate if it ended non-finite."""
    recorder, work = problem.recorder, problem.work
    f, g = problem.evaluate(np.asarray(res.x, dtype=np.float64))
    status, message = int(res.get("status", 0)), res.get("message", "")
    success = bool(res.get("success", True))
    x = np.asarray(res.x).astype(work, copy=False)
    not_finite = not (math.isfinite(f) and np.isfinite(g).all())
    if not_finite:
        status, success = STATUS_NOT_FINITE, False
        # as sgd does: the best iterate with a finite objective, else params0
        finite_best = recorder.best_x is not None and math.isfinite(recorder.best_score)
        x = recorder.best_x if finite_best else params0.astype(work, copy=True)
        message = (
            f"the objective became {f} at the final iterate of {scipy_method} (x is "
            f"{'the best iterate' if finite_best else 'params0'}); check the data, "
            f"lam and the starting point (params0), or use a smaller scale."
        )
    res["not_finite"] = not_finite
    return problem.result_at(
        x,
        None if not_finite else (f, g),
        base=res,
        status=status,
        message=message,
        nit=res.get("nit", len(recorder.history)),
        success=success,
    )


def _minimize_sgd(
    net: Any,
    params0: Any,
    X: Any,
    y: Any,
    lam: float,
    method: Any,
    options: Any,
    callback: Any,
    validation: Any,
    weights: dict[str, Any],
) -> OptimizeResult:
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    sgd_options = tuple(
        name
        for name, p in inspect.signature(sgd).parameters.items()
        if p.kind is p.KEYWORD_ONLY
        and name not in ("method", "callback", "validation", "sample_weight")
    )
    unknown = sorted(set(options) - set(sgd_options))
    if unknown:
        raise ValueError(
            f"unknown options {unknown} for method {method!r}; the SGD "
            f"loop takes {list(sgd_options)}"
        )
    missing = [k for k in _SGD_REQUIRED if k not in options]
    if missing:
        raise ValueError(f"method {method!r} runs the SGD loop and needs options {missing}")
    return sgd(
        net,
        params0,
        X,
        y,
        lam,
        method=method,
        callback=callback,
        validation=validation,
        **weights,
        **options,
    )
