"""The training driver: the bookkeeping every training path shares.

:func:`flatnn.sgd` (:mod:`flatnn.training.sgd_loop`) and :func:`flatnn.minimize`
(:mod:`flatnn.training.scipy_bridge`) differ in how they move the parameters;
everything around that lives here, once, public inside the package:

* :func:`resolve_objective` and :func:`check_params0`: the two arguments every
  path starts from (a :class:`flatnn.Network` with data, or an objective);
* :class:`Validation`: held-out data scored in one forward pass;
* :class:`Recorder`: the history entries, the best iterate, the two callback
  forms, ``StopIteration`` (carried out as :class:`Stopped`) and the
  :class:`scipy.optimize.OptimizeResult` of the run;
* the status codes ``STATUS_*`` that both paths return.

A front end (the scikit-learn estimators, the command line) trains through
``sgd`` and ``minimize`` and reads what this module records; it never keeps a
best iterate or an early-stopping count of its own.

**The training contract** (both paths). The first argument is a
:class:`flatnn.Network` (then ``X`` and ``y`` are required) or an objective
such as :class:`flatnn.Objective` (then ``X``, ``y`` and ``lam`` are the
objective's own). The result is a :class:`scipy.optimize.OptimizeResult` with
``x``, ``fun``, ``jac``, ``nit``, ``nfev``, ``njev``, ``success``, ``status``,
``message`` and ``history``. ``callback(intermediate_result)`` is called once
per epoch (SGD) or iteration (scipy) with an ``OptimizeResult`` holding a copy
of ``x``, ``nit`` and the fields of that step's history entry; a callback whose
only parameter is not named ``intermediate_result`` is a legacy ``callback(xk)``
(scipy's rule). Raising ``StopIteration`` from either form stops any path,
which still returns the best result seen so far.

:func:`sgd`'s ``status`` is 0 when the run completed, 1 after early stopping, 2
when the cost or the step became NaN or infinite, 3 when the cost diverged
(grew above :data:`DIVERGENCE_FACTOR` times its start), 99 after
``StopIteration``; ``success`` is True for 0 and 1 only, and ``message`` says
what happened and what to change. :func:`flatnn.minimize` keeps scipy's own
``status`` and ``success``, except 99 after ``StopIteration`` and 2 with
``not_finite`` True when the objective ended NaN or infinite.

``history`` is a list of dicts, one per epoch or iteration, in order:

==============  ==============================================================
key             value
==============  ==============================================================
epoch / nit     SGD: the epoch index (0, 1, ...); scipy: the iteration (1, 2, ...)
fun             SGD: the mean of the epoch's batch costs, weighted by batch size
                (by batch weight with ``sample_weight``; an estimate of ``J``:
                the parameters move during the epoch); scipy: ``J`` at the iterate
val_cost        mean loss on the validation data, without the L2 term (only
                with ``validation=``)
val_accuracy    accuracy on the validation data (only with ``validation=``)
learning_rate   SGD only: the rate used in that epoch
nfev            objective evaluations so far (a batch counts as one on the SGD
                path); validation passes are not counted
seconds         wall-clock seconds since the start of training
==============  ==============================================================

Nothing here prints, and no NumPy ``RuntimeWarning`` escapes a training path:
a NaN, an overflow or a divergence ends the run with its status and message.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from flatnn.base import checks, namespace, threads
from flatnn.core import evaluation, kernel, losses
from flatnn.core.network import Network
from flatnn.core.objective import Objective

__all__ = [
    "STATUS_DONE",
    "STATUS_EARLY_STOPPED",
    "STATUS_NOT_FINITE",
    "STATUS_DIVERGED",
    "STATUS_STOPPED",
    "SUCCESS",
    "Stopped",
    "wrap_callback",
    "resolve_objective",
    "check_params0",
    "Validation",
    "as_target",
    "Recorder",
    "check_monitor",
]

STATUS_DONE = 0
"""All epochs or iterations ran (or the scipy method converged)."""
STATUS_EARLY_STOPPED = 1
"""Early stopping: the validation cost stopped improving."""
STATUS_NOT_FINITE = 2
"""The cost or the step became NaN or infinite."""
STATUS_DIVERGED = 3
"""The cost grew far above its starting value."""
STATUS_STOPPED = 99
"""A callback raised ``StopIteration`` (scipy's own status for it)."""

SUCCESS = (STATUS_DONE, STATUS_EARLY_STOPPED)


class Stopped(Exception):
    """A callback raised ``StopIteration``; carried out through scipy's solvers."""


def wrap_callback(
    callback: Callable[..., Any] | None, name: str = "callback"
) -> Callable[[OptimizeResult], Any] | None:
    """Return ``f(result)`` that calls ``callback`` in its own form, or None.

    A callback whose only parameter is named ``intermediate_result`` gets the
    :class:`OptimizeResult`; any other is a legacy ``callback(xk)`` and gets the
    result's ``x`` (scipy's rule).
    """
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"{name} must be callable, got {type(callback).__name__}")
    params: Any
    try:
        params = inspect.signature(callback).parameters
    except (TypeError, ValueError):  # some builtins have no signature: legacy form
        params = {}
    if set(params) == {"intermediate_result"}:
        return lambda result: callback(intermediate_result=result)
    return lambda result: callback(result.x)


def resolve_objective(net: Any, X: Any, y: Any, lam: float, who: str, **weights: Any) -> Any:
    """The objective a training path minimizes: ``Objective(net, X, y, lam)`` or ``net`` itself.

    Parameters
    ----------
    net : Network or objective-like
        A :class:`flatnn.Network` (then ``X`` and ``y`` are required) or an
        object with ``cost_grad(params)`` and ``n_params`` that carries its own
        data and ``lam`` (then ``X``, ``y`` and ``lam`` must be omitted).
    X : ndarray, shape (m, n_features), or None
    y : ndarray, shape (m,) or (m, k), or None
    lam : float
    who : str
        The caller's name, for the messages (``"sgd"``, ``"minimize"``).
    **weights
        ``sample_weight=w`` (shape ``(m,)``) when the caller was given one; it
        joins the network's objective, and is refused with an objective, which
        carries its own.

    Raises
    ------
    TypeError
        ``net`` is neither; X/y missing for a network or given with an objective.
    ValueError
        ``lam`` given with an objective.
    """
    if isinstance(net, Network):
        if X is None or y is None:
            raise TypeError(f"{who}(net, params0, X, y, ...) needs X and y when net is a Network")
        return Objective(net, X, y, lam, **weights)
    if not (callable(getattr(net, "cost_grad", None)) and hasattr(net, "n_params")):
        raise TypeError(
            f"{who} takes a flatnn.Network or an objective with cost_grad(params) "
            f"and n_params; got {type(net).__name__}"
        )
    if X is not None or y is not None:
        raise TypeError(
            f"{who}: the objective {type(net).__name__} carries its own data; omit X and y"
        )
    if weights:
        raise TypeError(
            f"{who}: the objective {type(net).__name__} carries its own data; omit "
            f"sample_weight (give it to the objective)"
        )
    if lam != 0.0:
        raise ValueError(
            f"{who}: the objective carries its own lam "
            f"({getattr(net, 'lam', '?')}); omit lam (got {lam!r})"
        )
    return net


def check_params0(params0: Any, n_params: int, xp: Any = np) -> Any:
    """``params0`` for a training run: float32/float64, ``n_params`` entries, finite.

    ``xp`` is the namespace of the data: a NumPy ``params0`` moves there.
    Raises ValueError/TypeError naming what was expected.
    """
    params0 = checks.flat_vector(params0, n_params, "params0", dtypes="float32/64", xp=xp)
    return checks.finite(params0, "params0")


class Validation:
    """Held-out data scored in one forward pass: ``val_cost`` and ``val_accuracy``.

    The data is validated, cast to ``dtype`` and moved to the namespace ``xp``
    once, here (a ``scipy.sparse`` ``X_val`` stays sparse, as CSR): validation
    data on the host is copied once to the device that holds the training data
    (see :mod:`flatnn.namespace`), and each :meth:`entry` brings two scalars back.

    Parameters
    ----------
    net : Network
    validation : (X_val, y_val)
    dtype : numpy dtype
        The dtype of the parameters it will be called with.
    xp : module, default numpy
        The namespace of the training data and of the parameters.
    """

    def __init__(self, net: Network, validation: Any, dtype: Any, xp: Any = np) -> None:
        try:
            X_val, y_val = validation
        except (TypeError, ValueError):
            raise ValueError("validation must be a pair (X_val, y_val)") from None
        sparse = kernel.is_sparse(X_val)
        if sparse and xp is not np:
            raise TypeError(
                "validation X_val is a scipy.sparse matrix (the host) but the training X "
                "lives on a device; pass X_val on that device"
            )
        if not sparse:
            X_val = namespace.asarray(X_val, xp, "validation X_val", "the training X")
        y_val = namespace.asarray(y_val, xp, "validation y_val", "the training X")
        checked = Objective(net, X_val, y_val)
        X: Any = checked.X.astype(dtype, copy=False)
        if sparse and X.format != "csr":  # row blocks of a CSR matrix: no pass over X each
            X = X.tocsr()
        checks.finite_rows(X, "validation X_val")
        self.xp = xp
        self.net = net
        self.X = X
        self.target = as_target(net, checked.y, dtype)
        self.hidden = evaluation.hidden_fns(net)
        self.outloss = evaluation.output_loss(net)
        self.truth = losses.true_labels(self.target, net.sizes[-1])  # the prediction rule's

    def entry(self, params: Any) -> dict[str, float]:
        """``{"val_cost": mean loss (no L2 term), "val_accuracy": fraction right}``."""
        thetas = self.net.unpack(params)

        def block(start, stop, i):  # (summed loss, number right) of rows start:stop
            _, z = kernel.forward(thetas, self.hidden, self.X[start:stop])
            pred = self.outloss.predict(z)  # the prediction rule's one home (core.losses)
            value = self.outloss.value(z, self.target[start:stop])
            if self.xp is np:
                return value, int(np.count_nonzero(pred == self.truth[start:stop]))
            return value, int((pred == self.truth[start:stop]).sum())

        m = self.X.shape[0]
        with np.errstate(all="ignore"):
            # one block on a GPU: it runs its own threads
            parts = threads.run_blocks(block, m) if self.xp is np else [block(0, m, 0)]
        value = sum(v for v, _ in parts)  # in block order
        right = sum(c for _, c in parts)
        return {"val_cost": float(value / m), "val_accuracy": right / m}


def as_target(net: Network, y: Any, dtype: Any) -> Any:
    """Validated ``y`` in the form the losses take: labels ``(m,)`` or targets ``(m, k)``.

    ``y`` keeps its namespace (a device array stays on its device).
    """
    if namespace.namespace_of(y) is np:
        y = np.asarray(y)
    k = net.sizes[-1]
    if y.ndim == 1 and k > 1:
        return y.astype(np.intp, copy=False)
    return y.reshape(y.shape[0], k).astype(dtype, copy=False)


class Recorder:
    """History, best iterate, patience count and callbacks of one training run.

    Parameters
    ----------
    callback : callable or None
        The user's per-epoch / per-iteration callback, in either form.
    validation : Validation or None
        When given, each entry gets ``val_cost`` and ``val_accuracy``.
    monitor : {"fun", "val_cost", "val_score"}, optional
        What the best iterate and the patience count follow: ``fun`` and
        ``val_cost`` lower-is-better, ``val_score`` higher-is-better. Default:
        ``val_cost`` with ``validation``, else ``fun``.
    score : callable, optional
        ``score(x) -> float``, higher is better (an accuracy, an R²), recorded
        as ``val_score`` in every entry.
    tol : float, default 0
        An entry *improves* (resets :attr:`since_best`) only when its monitored
        value beats the best by more than ``tol``; the best iterate is kept on
        any improvement.
    stopping : dict, optional
        The stopping state a previous run ended with (:meth:`stopping_state`):
        the best monitored value so far and the entries since it improved, so
        that a run continues the count of the one before (scikit-learn's
        ``partial_fit`` and warm start). The best iterate is still this run's
        own; an entry then improves when it is no worse than ``best - tol``
        (scikit-learn's own comparison, under which a NaN entry does not count
        against the patience).
    """

    def __init__(
        self,
        callback: Callable[..., Any] | None,
        validation: Validation | None,
        *,
        monitor: str | None = None,
        score: Callable[[Any], float] | None = None,
        tol: float = 0.0,
        stopping: dict[str, Any] | None = None,
    ) -> None:
        self.notify = wrap_callback(callback)
        self.validation = validation
        self.score_fn = score
        self.monitor = check_monitor(monitor, validation is not None, score is not None)
        self.tol = checks.real(tol, "tol", 0)
        self.history: list[dict[str, Any]] = []
        self.best_x: Any = None
        self.best_score = math.inf
        """The best iterate's monitored value, lower is better (``val_score`` negated)."""
        self.best_entry: dict[str, Any] | None = None
        self.since_best = 0
        """Entries since the last one that improved by more than ``tol``."""
        self.carried = stopping is not None
        self.reference = math.inf  # the best monitored value, this run's or carried
        if stopping is not None:
            self.reference, self.since_best = self._check_stopping(stopping)
        self.user_err = np.geterr()  # callbacks run under the caller's error settings
        self.start = time.perf_counter()

    def seconds(self) -> float:
        """Wall-clock seconds since the run started."""
        return time.perf_counter() - self.start

    def score(self, x: Any, fun: float) -> float:
        """The monitored value at ``x`` as a lower-is-better score (``fun`` given)."""
        if self.monitor == "val_cost" and self.validation is not None:
            return self.validation.entry(x)["val_cost"]
        if self.monitor == "val_score" and self.score_fn is not None:
            return -float(self.score_fn(x))
        return fun

    def record(self, x: Any, entry: dict[str, Any], *, owned: bool = False) -> None:
        """Complete ``entry`` for iterate ``x``, keep the best, call the callback.

        ``entry`` holds the path's own fields (``epoch`` or ``nit``, ``fun``,
        ``nfev``, ...); this adds the validation fields and ``seconds``. ``x`` is
        copied where it is kept, unless ``owned`` (the caller gives it away);
        ``x=None`` records an epoch that ended non-finite (its validation fields
        NaN, never the best). Raises :class:`Stopped` when the callback raises
        ``StopIteration``.
        """
        self.complete(x, entry)
        self.history.append(entry)
        raw = -entry["val_score"] if self.monitor == "val_score" else entry[self.monitor]
        value, previous, first = _score(raw), self.reference, self.best_x is None
        if x is not None and (first or value < self.best_score):
            self.best_x, self.best_score, self.best_entry = x if owned else x.copy(), value, entry
        if self.carried:  # scikit-learn's comparison: no worse than best - tol
            improved = not float(raw) > previous - self.tol
            self.reference = value if x is not None and value < previous else previous
        else:
            improved = x is not None and (first or value < previous - self.tol)
            self.reference = self.best_score
        self.since_best = 0 if improved else self.since_best + 1
        if self.notify is not None:
            try:
                result = OptimizeResult(nit=len(self.history))
                result.update(entry)
                result.update(x=None if x is None else x.copy(), history=self.history)
                self.notify(result)
            except StopIteration:
                raise Stopped from None

    def complete(self, x: Any, entry: dict[str, Any]) -> None:
        """Add the validation fields (NaN for ``x=None``) and ``seconds`` to ``entry``."""
        if self.validation is not None:
            if x is None:
                entry.update(val_cost=math.nan, val_accuracy=math.nan)
            else:
                entry.update(self.validation.entry(x))
        if self.score_fn is not None:
            entry["val_score"] = math.nan if x is None else float(self.score_fn(x))
        entry["seconds"] = self.seconds()

    def stopping_state(self) -> dict[str, Any]:
        """``{"monitor", "best", "since_best"}``: what a next run continues (``stopping=``).

        ``best`` is the best monitored value in the monitor's own sense (the
        highest ``val_score``, the lowest ``fun`` or ``val_cost``).
        """
        best = -self.reference if self.monitor == "val_score" else self.reference
        return {"monitor": self.monitor, "best": float(best), "since_best": self.since_best}

    def _check_stopping(self, stopping: Any) -> tuple[float, int]:
        try:
            monitor, best, since = stopping["monitor"], stopping["best"], stopping["since_best"]
        except (TypeError, KeyError):
            raise TypeError(
                f"initial_stopping must be a previous result.stopping, a dict with monitor, "
                f"best and since_best; got {stopping!r}"
            ) from None
        if monitor != self.monitor:
            raise ValueError(
                f"initial_stopping follows {monitor!r}; this run monitors {self.monitor!r}"
            )
        best = float(best)
        if math.isnan(best):
            raise ValueError("initial_stopping's best is NaN")
        reference = -best if monitor == "val_score" else best
        return reference, checks.integer(since, "initial_stopping's since_best", 0)

    def offer(self, x: Any, score: float) -> None:
        """Consider an iterate that has no history entry (a stop mid-epoch)."""
        score = _score(score)
        if self.best_x is None or score < self.best_score:
            self.best_x, self.best_score, self.best_entry = x.copy(), score, None

    def result(
        self,
        x: Any,
        fun: float,
        jac: Any,
        *,
        nfev: int,
        status: int,
        message: str,
        nit: int | None = None,
        base: OptimizeResult | None = None,
        **extra: Any,
    ) -> OptimizeResult:
        """The run's :class:`OptimizeResult` (``base``: scipy's, updated in place)."""
        res = OptimizeResult() if base is None else base
        res.update(
            x=x,
            fun=float(fun),
            jac=jac,
            nit=len(self.history) if nit is None else int(nit),
            nfev=nfev,
            njev=nfev,
            success=status in SUCCESS,
            status=status,
            message=message,
            history=self.history,
        )
        res.update(extra)
        return res


def check_monitor(monitor: Any, validation: bool, score: bool) -> str:
    """The monitored history field: ``monitor`` checked against what is recorded."""
    if monitor is None:
        return "val_cost" if validation else "fun"
    needs = {"fun": True, "val_cost": validation, "val_score": score}
    if monitor not in needs:
        raise ValueError(f"monitor must be 'fun', 'val_cost' or 'val_score', got {monitor!r}")
    if not needs[monitor]:
        what = "validation=(X_val, y_val)" if monitor == "val_cost" else "score=callable"
        raise ValueError(f"monitor={monitor!r} needs {what}")
    return str(monitor)


def _score(value: float) -> float:
    """A cost as a best-iterate score: NaN counts as inf, so any finite iterate beats it."""
    value = float(value)
    return math.inf if math.isnan(value) else value
