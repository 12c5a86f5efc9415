"""The bookkeeping every training path shares (private).

:func:`flatnn.sgd` and :func:`flatnn.minimize` differ in how they move the
parameters; everything around that lives here, once: the history entries, the
validation pass, the best iterate, the two callback forms, ``StopIteration``,
the status codes and the :class:`scipy.optimize.OptimizeResult`.
"""

from __future__ import annotations

import inspect
import math
import time

import numpy as np
from scipy.optimize import OptimizeResult

from flatnn.base import checks, namespace, threads
from flatnn.core import activations, kernel, losses

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


def wrap_callback(callback, name="callback"):
    """Return ``f(result)`` that calls ``callback`` in its own form, or None.

    A callback whose only parameter is named ``intermediate_result`` gets the
    :class:`OptimizeResult`; any other is a legacy ``callback(xk)`` and gets the
    result's ``x`` (scipy's rule).
    """
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"{name} must be callable, got {type(callback).__name__}")
    try:
        params = inspect.signature(callback).parameters
    except (TypeError, ValueError):  # some builtins have no signature: legacy form
        params = {}
    if set(params) == {"intermediate_result"}:
        return lambda result: callback(intermediate_result=result)
    return lambda result: callback(result.x)


class Validation:
    """Held-out data scored in one forward pass: ``val_cost`` and ``val_accuracy``.

    The data is validated, cast to ``dtype`` and moved to the namespace ``xp``
    once, here: validation data on the host is copied once to the device that
    holds the training data (see :mod:`flatnn.namespace`), and each
    :meth:`entry` brings two scalars back.

    Parameters
    ----------
    net : Network
    validation : (X_val, y_val)
    dtype : numpy dtype
        The dtype of the parameters it will be called with.
    xp : module, default numpy
        The namespace of the training data and of the parameters.
    """

    def __init__(self, net, validation, dtype, xp=np):
        from flatnn.core.objective import Objective

        try:
            X_val, y_val = validation
        except (TypeError, ValueError):
            raise ValueError("validation must be a pair (X_val, y_val)") from None
        X_val = namespace.asarray(X_val, xp, "validation X_val", "the training X")
        y_val = namespace.asarray(y_val, xp, "validation y_val", "the training X")
        checked = Objective(net, X_val, y_val)
        X = checked.X.astype(dtype, copy=False)
        if xp is np:
            if not np.isfinite(X).all():
                raise ValueError("validation X_val contains NaN or inf")
        else:
            checks.finite_rows(X, "validation X_val")
        self.xp = xp
        self.net = net
        self.X = X
        self.target = as_target(net, checked.y, dtype)
        self.hidden = tuple(activations.get(n) for n in net.hidden_activations)
        self.outloss = losses.get(net.output, net.loss)
        k = net.sizes[-1]
        if k == 1:
            self.truth = self.target[:, 0] > 0.5
        elif losses.is_labels(self.target):
            self.truth = self.target
        else:
            self.truth = self.target.argmax(axis=1)

    def entry(self, params):
        """``{"val_cost": mean loss (no L2 term), "val_accuracy": fraction right}``."""
        thetas = self.net.unpack(params)

        def block(start, stop, i):  # (summed loss, number right) of rows start:stop
            _, z = kernel.forward(thetas, self.hidden, self.X[start:stop])
            if z.shape[1] == 1:
                pred = self.outloss.activate(z.copy())[:, 0] > 0.5
            elif self.net.output == "softmax":  # monotone: the argmax of z is the argmax of a
                pred = z.argmax(axis=1)
            else:
                pred = self.outloss.activate(z.copy()).argmax(axis=1)
            value = self.outloss.value(z, self.target[start:stop])
            if self.xp is np:
                return value, int(np.count_nonzero(pred == self.truth[start:stop]))
            return value, int((pred == self.truth[start:stop]).sum())

        m = self.X.shape[0]
        with np.errstate(all="ignore"):
            if self.xp is np:
                parts = threads.run_blocks(block, m)
            else:  # one block: a GPU runs its own threads
                parts = [block(0, m, 0)]
        value = sum(v for v, _ in parts)  # in block order
        right = sum(c for _, c in parts)
        return {"val_cost": float(value / m), "val_accuracy": right / m}


def as_target(net, y, dtype):
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
    """History, best iterate and callbacks of one training run.

    Parameters
    ----------
    callback : callable or None
        The user's per-epoch / per-iteration callback, in either form.
    validation : Validation or None
        When given, each entry gets ``val_cost`` and ``val_accuracy`` and the
        best iterate is the one of lowest ``val_cost``; else of lowest ``fun``.
    """

    def __init__(self, callback, validation):
        self.notify = wrap_callback(callback)
        self.validation = validation
        self.history = []
        self.best_x = None
        self.best_score = math.inf
        self.best_entry = None
        self.since_best = 0
        self.user_err = np.geterr()  # callbacks run under the caller's error settings
        self.start = time.perf_counter()

    def seconds(self):
        """Wall-clock seconds since the run started."""
        return time.perf_counter() - self.start

    def score(self, x, fun):
        """The score the best iterate is chosen by: ``val_cost`` at ``x``, or ``fun``."""
        if self.validation is not None:
            return self.validation.entry(x)["val_cost"]
        return fun

    def record(self, x, entry):
        """Complete ``entry`` for iterate ``x``, keep the best, call the callback.

        ``entry`` holds the path's own fields (``epoch`` or ``nit``, ``fun``,
        ``nfev``, ...); this adds the validation fields and ``seconds``. ``x`` is
        copied where it is kept. Raises :class:`Stopped` when the callback
        raises ``StopIteration``.
        """
        if self.validation is not None:
            entry.update(self.validation.entry(x))
        entry["seconds"] = self.seconds()
        self.history.append(entry)
        score = _score(entry["val_cost"] if self.validation is not None else entry["fun"])
        if self.best_x is None or score < self.best_score:
            self.best_x, self.best_score, self.best_entry = x.copy(), score, entry
            self.since_best = 0
        else:
            self.since_best += 1
        if self.notify is not None:
            try:
                result = OptimizeResult(nit=len(self.history))
                result.update(entry)
                result.update(x=x.copy(), history=self.history)
                self.notify(result)
            except StopIteration:
                raise Stopped from None

    def offer(self, x, score):
        """Consider an iterate that has no history entry (a stop mid-epoch)."""
        score = _score(score)
        if self.best_x is None or score < self.best_score:
            self.best_x, self.best_score, self.best_entry = x.copy(), score, None

    def result(self, x, fun, jac, *, nfev, status, message, nit=None, base=None, **extra):
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


def _score(value):
    """A cost as a best-iterate score: NaN counts as inf, so any finite iterate beats it."""
    value = float(value)
    return math.inf if math.isnan(value) else value
