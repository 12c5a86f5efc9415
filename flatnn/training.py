"""Training: the built-in stochastic loop and the bridge to ``scipy.optimize.minimize``.

Both paths speak one contract:

* the first argument is a :class:`flatnn.Network` (then ``X`` and ``y`` are
  required) or an objective-like object with ``cost_grad(params)``,
  ``hessp(params, v)`` and ``n_params`` (then ``X`` and ``y`` are omitted and
  ``lam`` is the objective's own), such as :class:`flatnn.Objective`;
* the result is a :class:`scipy.optimize.OptimizeResult` with ``x``, ``fun``,
  ``jac``, ``nit``, ``nfev``, ``njev``, ``success``, ``status``, ``message`` and
  ``history``;
* ``callback(intermediate_result)`` is called once per epoch (SGD) or per
  iteration (scipy) with an ``OptimizeResult`` holding ``x``, ``fun``, ``nit``
  and the fields of that step's history entry; a callback whose only parameter
  is not named ``intermediate_result`` is a legacy ``callback(xk)`` and gets a
  copy of ``x`` (the rule scipy uses). Raising ``StopIteration`` from either
  form stops any path, which still returns the best result seen so far.

``history`` is a list of dicts, one per epoch or iteration, in order:

==============  ==============================================================
key             value
==============  ==============================================================
epoch / nit     SGD: the epoch index (0, 1, ...); scipy: the iteration (1, 2, ...)
cost            SGD: the mean of the epoch's batch costs, weighted by batch size
                (an estimate of ``J``: the parameters move during the epoch);
                scipy: ``J`` at the iterate
val_cost        mean loss on the validation data, without the L2 term (only
                with ``validation=``)
val_accuracy    accuracy on the validation data (only with ``validation=``)
learning_rate   SGD only: the rate used in that epoch
nfev            objective evaluations so far (a batch counts as one on the SGD
                path); validation passes are not counted
seconds         wall-clock seconds since the start of training
==============  ==============================================================

Nothing here prints; progress reaches the caller through the callback.
"""

from __future__ import annotations

import inspect
import math
import numbers
import time

import numpy as np
import scipy.optimize
from scipy.optimize import OptimizeResult

from . import optimizers
from .network import Network
from .objective import Objective

__all__ = ["sgd", "minimize", "SCIPY_METHODS", "HESSP_METHODS"]

SCIPY_METHODS = ("CG", "BFGS", "L-BFGS-B", "TNC", "SLSQP", "Newton-CG", "trust-ncg",
                 "trust-krylov", "trust-constr")
"""The scipy methods :func:`minimize` accepts: every one that uses a gradient."""

HESSP_METHODS = ("Newton-CG", "trust-ncg", "trust-krylov", "trust-constr")
"""The scipy methods that are given the exact ``hessp``."""

STATUS_STOPPED = 99  # scipy's status for a callback that raised StopIteration
STATUS_EARLY_STOPPED = 1
STATUS_NOT_FINITE = 2


class _Stop(Exception):
    """Carries a callback's StopIteration out through scipy's solvers."""


# ------------------------------------------------------------------ helpers
def _objective(net, X, y, lam, who):
    if isinstance(net, Network):
        if X is None or y is None:
            raise TypeError(f"{who}(net, params0, X, y, ...) needs X and y when net is a "
                            f"Network")
        return Objective(net, X, y, lam)
    if not (callable(getattr(net, "cost_grad", None)) and hasattr(net, "n_params")):
        raise TypeError(f"{who} takes a flatnn.Network or an objective with cost_grad(params) "
                        f"and n_params; got {type(net).__name__}")
    if X is not None or y is not None:
        raise TypeError(f"{who}: the objective {type(net).__name__} carries its own data; "
                        f"omit X and y")
    if lam != 0.0:
        raise ValueError(f"{who}: the objective carries its own lam "
                         f"({getattr(net, 'lam', '?')}); omit lam (got {lam!r})")
    return net


def _check_params0(params0, n_params):
    params0 = np.asarray(params0)
    if params0.ndim != 1:
        raise ValueError(f"params0 must be a flat vector of {n_params} entries, got an "
                         f"array of shape {params0.shape}")
    if params0.shape[0] != n_params:
        raise ValueError(f"params0 has {params0.shape[0]} entries; the network needs "
                         f"{n_params}")
    if params0.dtype not in (np.float32, np.float64):
        raise ValueError(f"params0 must be float32 or float64, got {params0.dtype}")
    if not np.isfinite(params0).all():
        raise ValueError("params0 contains NaN or inf")
    return params0


def _check_count(value, name, low, high=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_validation(validation, net):
    if validation is None:
        return None
    try:
        X_val, y_val = validation
    except (TypeError, ValueError):
        raise ValueError("validation must be a pair (X_val, y_val)") from None
    if net is None:
        raise TypeError("validation needs the objective's network (an attribute net)")
    # checks shapes and labels now, not after the first epoch (no pass is made)
    checked = Objective(net, X_val, y_val)
    return checked.X, checked.y


def _wrap_callback(callback):
    """Return ``f(result)`` calling the user's callback in its own form, or None."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    try:
        params = inspect.signature(callback).parameters
    except (TypeError, ValueError):  # some builtins have no signature: legacy form
        params = {}
    if set(params) == {"intermediate_result"}:
        return lambda result: callback(intermediate_result=result)
    return lambda result: callback(np.copy(result.x))


def _validation_entry(net, params, validation):
    X_val, y_val = validation
    return {"val_cost": net.cost(params, X_val, y_val),
            "val_accuracy": net.accuracy(params, X_val, y_val)}


# --------------------------------------------------------------------- SGD
def sgd(net, params0, X=None, y=None, lam=0.0, *, epochs, batch_size, learning_rate=None,
        method="sgd", schedule=None, momentum=None, rng=None, shuffle=True, validation=None,
        early_stopping=None, callback=None):
    """Minibatch stochastic gradient descent with a pluggable update rule.

    Each epoch draws one permutation of the ``m`` rows from ``rng`` and walks
    it in batches of ``batch_size`` (the last batch may be smaller). A batch of
    ``b`` rows is evaluated with L2 strength ``lam · b / m``, so that the
    batch gradients, weighted by ``b / m``, add up to the full-batch gradient
    of ``J = (1/m) Σ loss + lam/(2m) Σ ‖theta[:, 1:]‖²``: the objective does not
    change with the batch size. The rule turns each gradient into a step,
    ``params ← params + step`` (see :mod:`flatnn.optimizers`).

    Parameters
    ----------
    net : Network or Objective
        A network (with ``X``, ``y`` and ``lam``) or a :class:`flatnn.Objective`,
        whose data and ``lam`` are used (then omit ``X``, ``y``, ``lam``). The
        loop needs the data in this process: other objective-like objects
        raise TypeError (use :func:`minimize` for them).
    params0 : ndarray, shape (n_params,)
        Starting point; never modified.
    X : ndarray, shape (m, sizes[0])
    y : ndarray, shape (m,) or (m, k)
        Never shuffled or modified: batches are taken by ``X[idx]``.
    lam : float, default 0
        L2 strength of the whole-data objective.
    epochs : int
        Number of passes over the data (>= 1).
    batch_size : int
        Rows per batch, ``1 <= batch_size <= m``.
    learning_rate : float or callable
        A number, or a schedule ``epoch -> learning rate`` (epochs count from 0),
        such as :func:`flatnn.optimizers.step_decay`.
    method : str or rule, default "sgd"
        ``sgd``, ``momentum``, ``nesterov``, ``adam``, ``rmsprop``, or any object
        with ``init(params) -> state`` and ``update(grad, state, params,
        learning_rate) -> (step, state)``.
    schedule : callable, optional
        A schedule ``epoch -> learning rate``, for callers who prefer to pass it
        apart from ``learning_rate`` (give one of the two, not both).
    momentum : float, optional
        ``beta`` of ``momentum`` and ``nesterov`` (default 0.9); ValueError with
        another method (configure those by passing a rule object).
    rng : None, int or numpy.random.Generator
        Shuffling; the same seed gives bit-identical results.
    shuffle : bool, default True
        False walks the rows in order (then ``rng`` is unused).
    validation : (X_val, y_val), optional
        Adds ``val_cost`` (mean loss, no L2 term) and ``val_accuracy`` to each
        epoch's history entry.
    early_stopping : int, optional
        Patience: stop when the validation cost has not improved for this many
        epochs. The best parameters seen are returned, also when all epochs
        ran. Needs ``validation``.
    callback : callable, optional
        Called after each epoch, see :mod:`flatnn.training`.

    Returns
    -------
    OptimizeResult
        ``x`` (dtype of the work: float32 when ``params0`` and ``X`` are float32),
        ``fun`` and ``jac`` (the full training objective and its gradient at
        ``x``, from one extra pass, counted in ``nfev``), ``nit`` (epochs run),
        ``nfev`` = ``njev`` (batches evaluated, plus that final pass),
        ``success``, ``status`` (0 all epochs run, 1 early stopping, 2 the cost
        became non-finite, 99 the callback raised StopIteration), ``message``,
        ``history``.

        After all epochs ``x`` is the last iterate, unless ``early_stopping``
        is given. With ``early_stopping`` (whether or not it triggered), and
        after StopIteration or a non-finite cost, ``x`` is the best end-of-epoch
        iterate seen: best by validation cost when ``validation`` is given,
        else by the epoch's training-cost estimate (the weighted mean of its
        batch costs), or ``params0`` if no epoch finished.
    """
    obj = _objective(net, X, y, lam, "sgd")
    if not isinstance(net, Network):
        if not isinstance(getattr(obj, "net", None), Network) or not hasattr(obj, "X"):
            raise TypeError(f"sgd needs the training data in this process (a Network with "
                            f"X, y, or a flatnn.Objective); got {type(obj).__name__}: use "
                            f"flatnn.minimize for it")
    net, X, y, lam = obj.net, obj.X, obj.y, float(obj.lam)
    params0 = _check_params0(params0, net.n_params)
    m = X.shape[0]
    epochs = _check_count(epochs, "epochs", 1)
    batch_size = _check_count(batch_size, "batch_size", 1, m)
    if early_stopping is not None:
        early_stopping = _check_count(early_stopping, "early_stopping", 1)
        if validation is None:
            raise ValueError("early_stopping needs validation=(X_val, y_val)")
    if schedule is not None and learning_rate is not None:
        raise ValueError("give the learning rate once: learning_rate or schedule, not both")
    if schedule is None and learning_rate is None:
        raise TypeError("sgd needs learning_rate (a number or a schedule epoch -> rate)")
    sched = optimizers.as_schedule(learning_rate if schedule is None else schedule)
    if momentum is not None and not (isinstance(method, str)
                                     and method.lower() in ("momentum", "nesterov")):
        raise ValueError(f"momentum applies to method 'momentum' or 'nesterov', not "
                         f"{method!r}; pass a rule object to configure other methods")
    rule = optimizers.get(method, momentum)
    validation = _check_validation(validation, net)
    notify = _wrap_callback(callback)
    gen = np.random.default_rng(rng)

    work = np.float32 if (params0.dtype == np.float32 and X.dtype == np.float32) else np.float64
    params = params0.astype(work, copy=False)  # never written to: each step makes a new array
    state = rule.init(params)
    start = time.perf_counter()
    history = []
    nfev = 0
    best = params
    best_score = math.inf
    since_best = 0
    status, message = 0, f"completed {epochs} epochs"
    # One batch of all m rows (full-batch gradient descent): the order of the
    # rows cannot change its gradient, so X is used in place, never permuted.
    permute = shuffle and batch_size < m
    for epoch in range(epochs):
        lr = optimizers.learning_rate_at(sched, epoch)
        order = gen.permutation(m) if permute else None
        total = 0.0
        diverged = False
        for lo in range(0, m, batch_size):
            rows = order[lo:lo + batch_size] if permute else slice(lo, lo + batch_size)
            X_batch, y_batch = X[rows], y[rows]
            b = X_batch.shape[0]
            cost, grad = net.cost_grad(params, X_batch, y_batch, lam * b / m)
            nfev += 1
            step, state = rule.update(grad, state, params, lr)
            if getattr(step, "shape", None) != params.shape or step.dtype != params.dtype:
                raise ValueError(f"{type(rule).__name__}.update returned a step of shape "
                                 f"{getattr(step, 'shape', None)} and dtype "
                                 f"{getattr(step, 'dtype', None)}; expected {params.shape} "
                                 f"{params.dtype}")
            if not (math.isfinite(cost) and np.isfinite(step.sum())):
                diverged = True
                break
            total += cost * b
            params = params + step
        if diverged:
            status = STATUS_NOT_FINITE
            message = (f"the cost or the step became non-finite in epoch {epoch}; returning "
                       f"the best parameters seen (try a smaller learning_rate)")
            break
        entry = {"epoch": epoch, "cost": total / m, "learning_rate": lr, "nfev": nfev}
        if validation is not None:
            entry.update(_validation_entry(net, params, validation))
        entry["seconds"] = time.perf_counter() - start
        history.append(entry)
        score = entry["val_cost"] if validation is not None else entry["cost"]
        if score < best_score:
            best, best_score, since_best = params, score, 0
        else:
            since_best += 1
        if notify is not None:
            try:
                notify(OptimizeResult(x=params.copy(), fun=entry["cost"], nit=epoch + 1,
                                      history=history, **entry))
            except StopIteration:
                status, message = STATUS_STOPPED, "`callback` raised `StopIteration`."
                break
        if early_stopping is not None and since_best >= early_stopping:
            status = STATUS_EARLY_STOPPED
            message = (f"early stopping: the validation cost has not improved for "
                       f"{since_best} epochs; returning the parameters of epoch "
                       f"{epoch - since_best}")
            break
    x = params if status == 0 and early_stopping is None else best
    fun, jac = obj.cost_grad(x)
    nfev += 1
    return OptimizeResult(x=x, fun=fun, jac=jac, nit=len(history), nfev=nfev, njev=nfev,
                          success=status in (0, STATUS_EARLY_STOPPED), status=status,
                          message=message, history=history)


# ------------------------------------------------------------ scipy bridge
_SCIPY_BY_KEY = {name.lower(): name for name in SCIPY_METHODS}
_HESSP_KEYS = {name.lower() for name in HESSP_METHODS}
_SGD_OPTIONS = tuple(name for name, p in inspect.signature(sgd).parameters.items()
                     if p.kind is p.KEYWORD_ONLY
                     and name not in ("method", "callback", "validation"))
_SGD_REQUIRED = ("epochs", "batch_size")


def minimize(net, params0, X=None, y=None, lam=0.0, *, method="L-BFGS-B", options=None,
             callback=None, validation=None):
    """Minimize the training objective with scipy or with the built-in SGD loop.

    With a scipy method this runs ``scipy.optimize.minimize`` on the fused
    ``cost_grad`` (``jac=True``: one forward and one backward pass per function
    evaluation) and, for the methods in :data:`HESSP_METHODS`, the exact
    R-operator ``hessp``.

    Parameters
    ----------
    net : Network or objective-like
        A network (with ``X``, ``y``, ``lam``) or an object with
        ``cost_grad(params)``, ``hessp(params, v)`` and ``n_params``, such as
        :class:`flatnn.Objective` (then omit ``X``, ``y``, ``lam``).
    params0 : ndarray, shape (n_params,)
        Starting point; never modified.
    X, y, lam
        As in :meth:`flatnn.Network.cost`.
    method : str or callable, default "L-BFGS-B"
        One of :data:`SCIPY_METHODS` (case-insensitive); one of the built-in
        rules ``sgd``, ``momentum``, ``nesterov``, ``adam``, ``rmsprop`` or a rule
        object, which runs :func:`sgd` with ``options`` as its keyword arguments
        (``epochs``, ``batch_size`` and ``learning_rate`` required); or a callable
        in scipy's custom-method form ``method(fun, x0, args, jac, hessp,
        callback, **options)``.
    options : dict, optional
        scipy's options (``maxiter``, ``gtol``, ...), or :func:`sgd`'s keywords.
    callback : callable, optional
        ``callback(intermediate_result)`` or legacy ``callback(xk)``, once per
        iteration; see :mod:`flatnn.training`.
    validation : (X_val, y_val), optional
        Adds ``val_cost`` and ``val_accuracy`` to each iteration's history entry.
        Those forward passes are not counted in ``nfev``; they need the
        objective's network (``net`` attribute).

    Returns
    -------
    OptimizeResult
        scipy's result with ``x`` in the dtype of ``params0``, ``nfev`` = ``njev``
        = the number of ``cost_grad`` evaluations actually made, ``nhev`` the
        number of Hessian-vector products, and ``history``. When the callback
        raises StopIteration, ``x`` is the best iterate seen (by validation
        cost when ``validation`` is given, else by ``J``), ``status`` 99.

    Notes
    -----
    scipy's solvers work in float64: with float32 ``params0`` each evaluation
    casts the iterate to float32, so the data is used as it is (no copy of a
    float32 ``X``), and the gradient back to float64.
    """
    if isinstance(method, str) and method.lower() in optimizers.RULES or (
            not isinstance(method, str) and optimizers.is_rule(method)):
        return _minimize_sgd(net, params0, X, y, lam, method, options, callback, validation)
    if isinstance(method, str):
        if method.lower() not in _SCIPY_BY_KEY:
            raise ValueError(f"unknown method {method!r}; expected one of "
                             f"{list(SCIPY_METHODS)}, a built-in rule {list(optimizers.RULES)}, "
                             f"a rule object or a callable")
        scipy_method = _SCIPY_BY_KEY[method.lower()]
        use_hessp = method.lower() in _HESSP_KEYS
    elif callable(method):
        scipy_method, use_hessp = method, True
    else:
        raise TypeError(f"method must be a string, a rule object or a callable, got "
                        f"{type(method).__name__}")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    obj = _objective(net, X, y, lam, "minimize")
    params0 = _check_params0(params0, obj.n_params)
    validation = _check_validation(validation, getattr(obj, "net", None))
    notify = _wrap_callback(callback)
    work = params0.dtype
    counts = {"nfev": 0, "nhev": 0}
    recent = []  # the last few evaluations (x, f, g): callbacks look their point up here
    history = []
    best = {"score": math.inf, "x": None, "fun": None, "jac": None}
    start = time.perf_counter()

    def evaluate(x):
        f, g = obj.cost_grad(x.astype(work, copy=False))
        counts["nfev"] += 1
        recent.append((x.copy(), f, g))
        del recent[:-4]
        return f, g

    def fun(x):
        # a point seen moments ago (by a callback, say) is not evaluated twice
        f, g = lookup_or_evaluate(x)
        return f, np.array(g, dtype=np.float64)  # scipy's own copy: the cache stays intact

    def hessp(x, v):
        counts["nhev"] += 1
        Hv = obj.hessp(x.astype(work, copy=False), np.asarray(v).astype(work, copy=False))
        return Hv.astype(np.float64, copy=False)

    def lookup_or_evaluate(x):
        for xr, f, g in reversed(recent):
            if np.array_equal(xr, x):
                return f, g
        return evaluate(x)

    def on_iteration(intermediate_result):
        # scipy passes an OptimizeResult (or, for TNC and custom methods, the iterate)
        x = np.asarray(getattr(intermediate_result, "x", intermediate_result), dtype=np.float64)
        f, g = lookup_or_evaluate(x)
        xw = x.astype(work)  # a copy of our own: scipy reuses its arrays
        entry = {"nit": len(history) + 1, "cost": f, "nfev": counts["nfev"]}
        if validation is not None:
            entry.update(_validation_entry(obj.net, xw, validation))
        entry["seconds"] = time.perf_counter() - start
        history.append(entry)
        score = entry["val_cost"] if validation is not None else f
        if best["x"] is None or score < best["score"]:
            best.update(score=score, x=xw, fun=f, jac=g)
        if notify is not None:
            try:
                notify(OptimizeResult(x=xw, fun=f, history=history, **entry))
            except StopIteration:
                raise _Stop from None

    kwargs = {"hessp": hessp} if use_hessp else {}
    try:
        res = scipy.optimize.minimize(fun, params0.astype(np.float64), jac=True,
                                      method=scipy_method, callback=on_iteration,
                                      options=options, **kwargs)
    except _Stop:
        res = OptimizeResult(x=best["x"], fun=best["fun"], jac=best["jac"], nit=len(history),
                             success=False, status=STATUS_STOPPED,
                             message="`callback` raised `StopIteration`.")
    else:
        f, g = lookup_or_evaluate(np.asarray(res.x, dtype=np.float64))
        res.x = np.asarray(res.x).astype(work, copy=False)
        res.fun = float(f)
        res.jac = g
        res.nit = int(res.get("nit", len(history)))
    res.nfev = res.njev = counts["nfev"]
    res.nhev = counts["nhev"]
    res.history = history
    return res


def _minimize_sgd(net, params0, X, y, lam, method, options, callback, validation):
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - set(_SGD_OPTIONS))
    if unknown:
        raise ValueError(f"unknown options {unknown} for method {method!r}; the SGD "
                         f"loop takes {list(_SGD_OPTIONS)}")
    missing = [k for k in _SGD_REQUIRED if k not in options]
    if "learning_rate" not in options and "schedule" not in options:
        missing.append("learning_rate")
    if missing:
        raise ValueError(f"method {method!r} runs the SGD loop and needs options {missing}")
    return sgd(net, params0, X, y, lam, method=method, callback=callback,
               validation=validation, **options)
