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
  iteration (scipy) with an ``OptimizeResult`` holding a copy of ``x``, ``nit``
  and the fields of that step's history entry; a callback whose only parameter
  is not named ``intermediate_result`` is a legacy ``callback(xk)`` and gets that
  copy of ``x`` (the rule scipy uses). Raising ``StopIteration`` from either
  form stops any path, which still returns the best result seen so far;
* :func:`sgd` also takes ``batch_callback``, called after every batch;
* :func:`sgd`'s ``status`` is 0 when the run completed, 1 after early stopping,
  2 when the cost or the step became NaN or infinite, 3 when the cost diverged
  (grew far above its starting value), 99 after ``StopIteration``; ``success``
  is True for 0 and 1 only, and ``message`` says what happened and what to
  change. :func:`minimize` keeps scipy's own ``status`` and ``success``, except
  99 after ``StopIteration`` and 2 with ``not_finite`` True when the objective
  ended NaN or infinite.

``history`` is a list of dicts, one per epoch or iteration, in order:

==============  ==============================================================
key             value
==============  ==============================================================
epoch / nit     SGD: the epoch index (0, 1, ...); scipy: the iteration (1, 2, ...)
fun             SGD: the mean of the epoch's batch costs, weighted by batch size
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

Nothing here prints, and no NumPy ``RuntimeWarning`` escapes a training path:
a NaN, an overflow or a divergence ends the run with its status and message.
Progress reaches the caller through the callbacks.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import scipy.optimize
from scipy.optimize import OptimizeResult

from flatnn.base import checks, namespace
from flatnn.core.network import Network
from flatnn.core.objective import Objective
from flatnn.training import regularizers as _dropout
from flatnn.training import rules as optimizers
from flatnn.training.driver import (
    STATUS_DIVERGED,
    STATUS_DONE,
    STATUS_EARLY_STOPPED,
    STATUS_NOT_FINITE,
    STATUS_STOPPED,
    Recorder,
    Stopped,
    Validation,
    as_target,
    wrap_callback,
)
from flatnn.training.step import BatchStep

__all__ = [
    "sgd",
    "minimize",
    "SCIPY_METHODS",
    "HESSP_METHODS",
    "STATUS_DONE",
    "STATUS_EARLY_STOPPED",
    "STATUS_NOT_FINITE",
    "STATUS_DIVERGED",
    "STATUS_STOPPED",
]

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

DIVERGENCE_FACTOR = 1e3
""":func:`sgd` stops with status 3 when a batch cost exceeds this many times
``max(1, cost of the first batch)``: the cost has blown up, and the rest of the
run would only produce noise (a learning rate 10-100x too large does this)."""


# ------------------------------------------------------------------ helpers
def _objective(net, X, y, lam, who):
    if isinstance(net, Network):
        if X is None or y is None:
            raise TypeError(f"{who}(net, params0, X, y, ...) needs X and y when net is a Network")
        return Objective(net, X, y, lam)
    if not (callable(getattr(net, "cost_grad", None)) and hasattr(net, "n_params")):
        raise TypeError(
            f"{who} takes a flatnn.Network or an objective with cost_grad(params) "
            f"and n_params; got {type(net).__name__}"
        )
    if X is not None or y is not None:
        raise TypeError(
            f"{who}: the objective {type(net).__name__} carries its own data; omit X and y"
        )
    if lam != 0.0:
        raise ValueError(
            f"{who}: the objective carries its own lam "
            f"({getattr(net, 'lam', '?')}); omit lam (got {lam!r})"
        )
    return net


def _check_params0(params0, n_params, xp=np):
    """``params0`` for a training run: float32/float64, ``n_params`` entries, finite.

    ``xp`` is the namespace of the data: a NumPy ``params0`` moves there.
    """
    params0 = checks.flat_vector(params0, n_params, "params0", dtypes="float32/64", xp=xp)
    return checks.finite(params0, "params0")


def _all_finite(a, xp):
    return bool(np.isfinite(a).all() if xp is np else xp.isfinite(a).all())


# the counts of sgd (epochs, batch_size, ...) and scipy's options: see flatnn._checks
_check_count = checks.integer


def _validation(validation, net, dtype, xp=np):
    if validation is None:
        return None
    if net is None:
        raise TypeError("validation needs the objective's network (an attribute net)")
    return Validation(net, validation, dtype, xp)


# --------------------------------------------------------------------- SGD
def _transformed(transform, Xb, gen):
    out = transform(Xb, gen)
    if getattr(out, "shape", None) != Xb.shape or getattr(out, "dtype", None) != Xb.dtype:
        raise ValueError(
            f"transform returned an array of shape {getattr(out, 'shape', None)} "
            f"and dtype {getattr(out, 'dtype', None)}; expected the batch's "
            f"{Xb.shape} {Xb.dtype}"
        )
    return out


def _stop_message(status, cost, epoch, batch, lr, reference):
    where = f"in epoch {epoch}, batch {batch}"
    if status == STATUS_NOT_FINITE:
        what = f"the cost became {cost} {where}"
    else:
        what = (
            f"the cost diverged {where}: {cost:.4g}, more than {DIVERGENCE_FACTOR:g} "
            f"times its start ({reference:.4g})"
        )
    return (
        f"{what}; the learning rate {lr:g} is too large for this network and data: try "
        f"{lr / 10:g} or less."
    )


def sgd(
    net,
    params0,
    X=None,
    y=None,
    lam=0.0,
    *,
    epochs,
    batch_size,
    learning_rate,
    method="sgd",
    rng=None,
    shuffle=True,
    validation=None,
    early_stopping=None,
    callback=None,
    batch_callback=None,
    dropout=None,
    max_norm=None,
    transform=None,
):
    """Minibatch stochastic gradient descent with a pluggable update rule.

    Each epoch draws one permutation of the ``m`` rows from ``rng`` and walks
    it in batches of ``batch_size`` (the last batch may be smaller), gathered
    into a buffer the loop reuses. A batch of ``b`` rows is evaluated with L2
    strength ``lam · b / m``, so that the batch gradients, weighted by
    ``b / m``, add up to the full-batch gradient of
    ``J = (1/m) Σ loss + lam/(2m) Σ ‖theta[:, 1:]‖²``: the objective does not
    change with the batch size. The rule turns each gradient into a step,
    ``params ← params + step`` (see :mod:`flatnn.optimizers`).

    The loop works on a copy of ``params0`` that it updates in place, with the
    built-in rules' in-place form (bit-identical to their pure ``update``); a
    custom rule gets the pure contract. The data is validated once per call.

    **On a GPU.** The loop computes with the namespace of ``X`` (see
    :mod:`flatnn.namespace`): given CuPy data it runs entirely on the device.
    The parameters, the rule's state, every batch (gathered into a reused
    device buffer), the dropout masks and the validation data live there;
    ``y``, ``params0`` and the validation data are moved there once when they
    come from NumPy. Only scalars cross to the host: each batch's cost (for
    the divergence check and the history) and the two numbers of a validation
    pass. The shuffling permutation and the dropout masks are drawn on the
    host by the NumPy generator ``rng`` and copied over (once per epoch, once
    per batch): the same seed then gives the same run on the CPU and the GPU,
    to rounding. ``result.x``, ``result.jac`` and the ``x`` of the callbacks
    are arrays of the data's namespace (``cupy.asnumpy(result.x)`` brings ``x``
    home): a run on the device ends where the next one, or a prediction on
    device data, starts, without a round trip. A custom rule must compute with
    the namespace of its arguments (array methods and operators do).

    Parameters
    ----------
    net : Network or Objective
        A network (with ``X``, ``y`` and ``lam``) or a :class:`flatnn.Objective`,
        whose data and ``lam`` are used (then omit ``X``, ``y``, ``lam``). The
        loop needs the data in this process: other objective-like objects
        raise TypeError (use :func:`minimize` for them).
    params0 : ndarray, shape (n_params,)
        Starting point; never modified. NumPy, or an array on the device of ``X``.
    X : ndarray, shape (m, sizes[0])
        Never shuffled or modified (a non-float ``X`` is converted once).
        NumPy, or a device array (CuPy): then the loop runs on that device.
    y : ndarray, shape (m,) or (m, k)
    lam : float, default 0
        L2 strength of the whole-data objective.
    epochs : int
        Number of passes over the data (>= 1).
    batch_size : int
        Rows per batch, ``1 <= batch_size <= m``.
    learning_rate : float or callable
        A number, or a schedule ``epoch -> learning rate`` (epochs count from 0)
        such as :func:`flatnn.optimizers.step_decay`.
    method : str or rule, default "sgd"
        ``sgd``, ``momentum``, ``nesterov``, ``adam``, ``rmsprop`` (default
        hyperparameters), or a rule object: a configured built-in such as
        ``flatnn.optimizers.momentum(0.95)``, or any object with
        ``init(params) -> state`` and ``update(grad, state, params,
        learning_rate) -> (step, state)``.
    rng : None, int or numpy.random.Generator
        Shuffling; the same seed gives bit-identical results.
    shuffle : bool, default True
        False walks the rows in order (then ``rng`` is unused).
    validation : (X_val, y_val), optional
        Adds ``val_cost`` (mean loss, no L2 term) and ``val_accuracy`` to each
        epoch's history entry (one forward pass over the validation data).
    early_stopping : int, optional
        Patience: stop when the validation cost has not improved for this many
        epochs. The best parameters seen are returned, also when all epochs
        ran. Needs ``validation``.
    callback : callable, optional
        Called after each epoch, see :mod:`flatnn.training`.
    batch_callback : callable, optional
        Called after every batch with an ``OptimizeResult`` holding ``epoch``,
        ``batch`` (index within the epoch), ``fun`` (the batch cost, before the
        step), ``nfev``, ``learning_rate`` and ``x`` (a read-only view of the
        working parameters, valid during the call only: copy it to keep it;
        on a device, the working array itself, which cannot be made read-only:
        never write into it).
        Raising ``StopIteration`` stops after that batch; the result is then
        the best of the finished epochs' iterates and the current one (by
        validation cost when ``validation`` is given).

    dropout : sequence of float, optional
        Inverted-dropout rates, one per layer input: the input's, then one per
        hidden layer (``len(net.sizes) - 1`` numbers in ``[0, 1)``). A new mask
        is drawn from ``rng`` for every batch, after the batch's transform;
        validation passes, ``fun``/``jac`` of the result and every other path
        use the network without dropout. See :mod:`flatnn.dropout`.
    max_norm : float, optional
        After every step, scale each unit's incoming weight vector (a row of
        ``theta[:, 1:]``, bias excluded) back to norm ``max_norm`` when it is
        longer.
    transform : callable, optional
        ``transform(X_batch, rng) -> X_batch`` applied to every training batch
        (data augmentation, e.g. :func:`flatnn.augment.translate`), with the
        loop's generator. It gets the loop's own copy of the batch, never a
        view of ``X``, and must return an array of the same shape and dtype.

    Returns
    -------
    OptimizeResult
        ``x`` (dtype of the work: float32 when ``params0`` and ``X`` are float32;
        an array of the namespace of ``X``, like ``jac``),
        ``fun`` and ``jac`` (the full training objective and its gradient at
        ``x``, from one extra pass, counted in ``nfev``), ``nit`` (epochs run),
        ``nfev`` = ``njev`` (batches evaluated, plus that final pass),
        ``success``, ``status`` (0 all epochs run, 1 early stopping, 2 the cost
        or the step became non-finite, 3 the cost diverged, 99 a callback raised
        StopIteration), ``message``, ``history``.

        After all epochs ``x`` is the last iterate, unless ``early_stopping``
        is given. With ``early_stopping`` (whether or not it triggered), and
        after StopIteration, a non-finite or a diverged cost, ``x`` is the best
        iterate seen: best by validation cost when ``validation`` is given,
        else by the epoch's training-cost estimate (the weighted mean of its
        batch costs), or ``params0`` if no epoch finished.
    """
    obj = _objective(net, X, y, lam, "sgd")
    if not isinstance(net, Network):
        if not isinstance(getattr(obj, "net", None), Network) or not hasattr(obj, "X"):
            raise TypeError(
                f"sgd needs the training data in this process (a Network with "
                f"X, y, or a flatnn.Objective); got {type(obj).__name__}: use "
                f"flatnn.minimize for it"
            )
    net, X, lam = obj.net, obj.X, float(obj.lam)
    xp = namespace.namespace_of(X)
    on_host = xp is np
    params0 = _check_params0(params0, net.n_params, xp)
    m = X.shape[0]
    epochs = _check_count(epochs, "epochs", 1)
    batch_size = _check_count(batch_size, "batch_size", 1, m)
    if early_stopping is not None:
        early_stopping = _check_count(early_stopping, "early_stopping", 1)
        if validation is None:
            raise ValueError("early_stopping needs validation=(X_val, y_val)")
    if learning_rate is None:
        raise TypeError("sgd needs learning_rate (a number or a schedule epoch -> rate)")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    schedule = optimizers.as_schedule(learning_rate)
    rule = optimizers.get(method)
    notify_batch = wrap_callback(batch_callback, "batch_callback")
    work = np.float32 if (params0.dtype == np.float32 and X.dtype == np.float32) else np.float64
    X = X.astype(work, copy=False)  # a no-op for float data of the work's precision
    if on_host:
        if not np.isfinite(X).all():
            rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
            raise ValueError(f"X contains NaN or inf ({rows.size} rows, first at row {rows[0]})")
    else:
        checks.finite_rows(X)
    target = as_target(net, obj.y if on_host else namespace.asarray(obj.y, xp, "y"), work)
    recorder = Recorder(callback, _validation(validation, net, work, xp))
    gen = np.random.default_rng(rng)

    params = params0.astype(work, copy=True)  # the loop's own; params0 is never touched
    inplace = optimizers.has_inplace(rule)
    state = rule.inplace_init(params) if inplace else rule.init(params)
    grad, scratch = xp.empty_like(params), xp.empty_like(params)
    thetas, grads, scratches = net.unpack(params), net.unpack(grad), net.unpack(scratch)
    step_batch = BatchStep(net, lam, m, xp)
    rates = None if dropout is None else _dropout.check_rates(net, dropout)
    if rates is not None and not any(rates):
        rates = None
    max_norm = _dropout.check_max_norm(max_norm)
    if transform is not None and not callable(transform):
        raise TypeError(
            f"transform must be a callable (X_batch, rng) -> X_batch, got "
            f"{type(transform).__name__}"
        )
    # Batches are gathered into one reused buffer, still in cache when the first
    # product reads it. Measured on 60000 x 784 float32 MNIST: 0.019-0.030 s of
    # gathering per epoch at batch 10, 128 and 1000, against 0.046-0.048 s for a
    # permuted copy of X per epoch and its slices (and no 188 MB second copy).
    # A transform always gets that buffer, so it can never write into X.
    permute = shuffle and batch_size < m
    if permute or transform is not None:
        X_buf = xp.empty((min(batch_size, m), X.shape[1]), dtype=work)

    nfev = 0
    reference = None
    status, message = STATUS_DONE, f"completed {epochs} epoch{'s' if epochs > 1 else ''}"
    user_err = recorder.user_err
    with np.errstate(all="ignore"):  # non-finite values end the run with a status instead
        try:
            for epoch in range(epochs):
                lr = optimizers.learning_rate_at(schedule, epoch)
                if permute:
                    # drawn on the host (the same stream on every device), moved once
                    order = gen.permutation(m) if on_host else xp.asarray(gen.permutation(m))
                    targets = target[order]  # small next to X: one gather per epoch
                total = 0.0
                for batch, lo in enumerate(range(0, m, batch_size)):
                    hi = min(lo + batch_size, m)
                    b = hi - lo
                    if permute:
                        if on_host:
                            Xb = np.take(X, order[lo:hi], axis=0, out=X_buf[:b], mode="clip")
                        else:
                            Xb = xp.take(X, order[lo:hi], axis=0, out=X_buf[:b])
                        tb = targets[lo:hi]
                    else:
                        Xb, tb = X[lo:hi], target[lo:hi]
                    if transform is not None:
                        if not permute:
                            X_buf[:b] = Xb
                            Xb = X_buf[:b]
                        Xb = _transformed(transform, Xb, gen)
                    masks = None
                    if rates is not None:  # drawn on the host too: a seed gives one run
                        masks = _dropout.draw_masks(net, rates, b, gen, work)
                        if not on_host:
                            masks = [None if k is None else xp.asarray(k) for k in masks]
                    if not inplace:  # a pure rule may keep the arrays it is given
                        grad = xp.empty_like(params)
                        grads = net.unpack(grad)
                    cost = step_batch(thetas, Xb, tb, grads, scratches, masks)
                    nfev += 1
                    if reference is None and math.isfinite(cost):
                        reference = max(cost, 1.0)
                    if not math.isfinite(cost) or cost > DIVERGENCE_FACTOR * reference:
                        status = STATUS_NOT_FINITE if not math.isfinite(cost) else STATUS_DIVERGED
                        message = _stop_message(status, cost, epoch, batch, lr, reference)
                        break
                    if inplace:
                        state = rule.inplace_update(grad, state, params, lr, scratch)
                    else:
                        step, state = rule.update(grad, state, params, lr)
                        if (
                            getattr(step, "shape", None) != params.shape
                            or getattr(step, "dtype", None) != params.dtype
                        ):
                            raise ValueError(
                                f"{type(rule).__name__}.update returned a step of shape "
                                f"{getattr(step, 'shape', None)} and dtype "
                                f"{getattr(step, 'dtype', None)}; expected {params.shape} "
                                f"{params.dtype}"
                            )
                        if namespace.namespace_of(step) is not xp:
                            raise TypeError(
                                f"{type(rule).__name__}.update returned a step of type "
                                f"{type(step).__module__}.{type(step).__name__}; the "
                                f"parameters are {type(params).__module__}."
                                f"{type(params).__name__} (write the rule with array "
                                f"methods, or the namespace of grad)"
                            )
                        params = params + step
                        thetas = net.unpack(params)
                    if max_norm is not None:
                        _dropout.apply_max_norm(thetas, max_norm)
                    total += cost * b
                    if notify_batch is not None:
                        if on_host:
                            x_view = params.view()
                            x_view.flags.writeable = False
                        else:  # a device array cannot be made read-only
                            x_view = params
                        try:
                            with np.errstate(**user_err):
                                notify_batch(
                                    OptimizeResult(
                                        epoch=epoch,
                                        batch=batch,
                                        fun=cost,
                                        nfev=nfev,
                                        learning_rate=lr,
                                        x=x_view,
                                    )
                                )
                        except StopIteration:
                            status = STATUS_STOPPED
                            message = "`batch_callback` raised `StopIteration`."
                            if _all_finite(params, xp):
                                recorder.offer(params, recorder.score(params, total / hi))
                            break
                if status != STATUS_DONE:
                    break
                if not _all_finite(params, xp):  # a step overflowed after a finite cost
                    status = STATUS_NOT_FINITE
                    message = _stop_message(status, math.nan, epoch, batch, lr, reference)
                    break
                entry = {"epoch": epoch, "fun": total / m, "learning_rate": lr, "nfev": nfev}
                with np.errstate(**user_err):
                    recorder.record(params, entry)
                if early_stopping is not None and recorder.since_best >= early_stopping:
                    status = STATUS_EARLY_STOPPED
                    message = (
                        f"early stopping: the validation cost has not improved for "
                        f"{recorder.since_best} epochs; returning the parameters of "
                        f"epoch {epoch - recorder.since_best}"
                    )
                    break
        except Stopped:
            status, message = STATUS_STOPPED, "`callback` raised `StopIteration`."
    if status == STATUS_DONE and early_stopping is None:
        x = params
    elif recorder.best_x is not None:
        x = recorder.best_x
    else:
        x = params0.astype(work, copy=True)
    fun, jac = obj.cost_grad(x)
    nfev += 1
    return recorder.result(x, fun, jac, nfev=nfev, status=status, message=message)


# ------------------------------------------------------------ scipy bridge
_SCIPY_BY_KEY = {name.lower(): name for name in SCIPY_METHODS}
_HESSP_KEYS = {name.lower() for name in HESSP_METHODS}
_SGD_OPTIONS = tuple(
    name
    for name, p in inspect.signature(sgd).parameters.items()
    if p.kind is p.KEYWORD_ONLY and name not in ("method", "callback", "validation")
)
_SGD_REQUIRED = ("epochs", "batch_size", "learning_rate")
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


def _check_options(options):
    if options is None:
        return None
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    for key, value in options.items():
        if key in _COUNT_OPTIONS and value is not None:
            _check_count(value, f"options[{key!r}]", _COUNT_OPTIONS[key])
        elif key in _TOLERANCE_OPTIONS and value is not None:
            checks.real(value, f"options[{key!r}]", 0)
    return options


class _ScipyProblem:
    """The objective as scipy sees it, and the per-iteration record.

    scipy works in float64: each evaluation casts the iterate to the work
    dtype (so a float32 ``X`` is used as it is) and the gradient back. The last
    few evaluations are remembered, so that a callback's point (usually the one
    the line search just evaluated) is not evaluated twice.
    """

    def __init__(self, obj, work, recorder):
        self.obj = obj
        self.work = work
        self.recorder = recorder
        self.nfev = 0
        self.nhev = 0
        self._recent = []  # (x, f, g) of the last few evaluations

    def evaluate(self, x):
        """``(J, ∇J)`` at float64 ``x``, from the cache or one evaluation.

        A point where the objective overflows (or a non-finite ``x``, which a
        line search can reach from there) is ``J = inf`` with a zero gradient,
        as scipy expects of a point outside the domain: line searches step back
        from it, and a run that ends there gets status 2 from :func:`minimize`.
        """
        for xr, f, g in reversed(self._recent):
            if np.array_equal(xr, x):
                return f, g
        if np.isfinite(x).all():
            try:
                f, g = self.obj.cost_grad(x.astype(self.work, copy=False))
            except checks.NotFiniteError:
                f, g = math.inf, np.zeros(x.shape, self.work)
        else:
            f, g = math.inf, np.zeros(x.shape, self.work)
        self.nfev += 1
        self._recent.append((x.copy(), f, g))
        del self._recent[:-4]
        return f, g

    def fun(self, x):
        """scipy's ``fun`` with ``jac=True``."""
        f, g = self.evaluate(x)
        return f, np.array(g, dtype=np.float64)  # scipy's own copy: the cache stays intact

    def hessp(self, x, v):
        """scipy's ``hessp``: the objective's exact ``H v``."""
        self.nhev += 1
        Hv = self.obj.hessp(
            x.astype(self.work, copy=False), np.asarray(v).astype(self.work, copy=False)
        )
        return Hv.astype(np.float64, copy=False)

    def on_iteration(self, intermediate_result):
        """scipy's callback: an ``OptimizeResult``, or the iterate (TNC, custom methods)."""
        x = np.asarray(getattr(intermediate_result, "x", intermediate_result), dtype=np.float64)
        f, _ = self.evaluate(x)
        entry = {"nit": len(self.recorder.history) + 1, "fun": float(f), "nfev": self.nfev}
        with np.errstate(**self.recorder.user_err):
            self.recorder.record(x.astype(self.work), entry)


def minimize(
    net,
    params0,
    X=None,
    y=None,
    lam=0.0,
    *,
    method="L-BFGS-B",
    options=None,
    callback=None,
    validation=None,
):
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
        scipy's options (``maxiter``, ``gtol``, ...; counts must be integers
        >= 1 and tolerances numbers >= 0), or :func:`sgd`'s keywords.
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
        cost when ``validation`` is given, else by ``J``), ``status`` 99. When
        the objective became NaN or infinite, ``status`` is 2, ``success``
        False, ``not_finite`` True and ``x`` the best iterate with a finite
        objective (else ``params0``). ``not_finite`` tells that case from
        scipy's own status codes, which it keeps (2 is also CG's "precision
        loss" and TNC's "converged").
    """
    if (
        isinstance(method, str)
        and method.lower() in optimizers.RULES
        or (not isinstance(method, str) and optimizers.is_rule(method))
    ):
        return _minimize_sgd(net, params0, X, y, lam, method, options, callback, validation)
    if isinstance(method, str):
        if method.lower() not in _SCIPY_BY_KEY:
            raise ValueError(
                f"unknown method {method!r}; expected one of "
                f"{list(SCIPY_METHODS)}, a built-in rule {list(optimizers.RULES)}, "
                f"a rule object or a callable"
            )
        scipy_method = _SCIPY_BY_KEY[method.lower()]
        use_hessp = method.lower() in _HESSP_KEYS
    elif callable(method):
        scipy_method, use_hessp = method, True
    else:
        raise TypeError(
            f"method must be a string, a rule object or a callable, got {type(method).__name__}"
        )
    options = _check_options(options)
    obj = _objective(net, X, y, lam, "minimize")
    params0 = _check_params0(params0, obj.n_params)
    work = params0.dtype
    recorder = Recorder(callback, _validation(validation, getattr(obj, "net", None), work))
    problem = _ScipyProblem(obj, work, recorder)
    kwargs = {"hessp": problem.hessp} if use_hessp else {}
    with np.errstate(all="ignore"):  # a non-finite objective ends with status 2 instead
        try:
            res = scipy.optimize.minimize(
                problem.fun,
                params0.astype(np.float64),
                jac=True,
                method=scipy_method,
                callback=problem.on_iteration,
                options=options,
                **kwargs,
            )
        except Stopped:
            if recorder.best_x is None:
                x = params0.astype(work, copy=True)
                f, g = problem.evaluate(x.astype(np.float64))
            else:
                x = recorder.best_x
                f, g = problem.evaluate(x.astype(np.float64))
            return recorder.result(
                x,
                f,
                g,
                nfev=problem.nfev,
                status=STATUS_STOPPED,
                message="`callback` raised `StopIteration`.",
                nhev=problem.nhev,
            )
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
        f, g = problem.evaluate(x.astype(np.float64))
    res["not_finite"] = not_finite
    return recorder.result(
        x,
        f,
        g,
        base=res,
        nfev=problem.nfev,
        status=status,
        message=message,
        nit=res.get("nit", len(recorder.history)),
        nhev=problem.nhev,
        success=success,
    )


def _minimize_sgd(net, params0, X, y, lam, method, options, callback, validation):
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - set(_SGD_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown options {unknown} for method {method!r}; the SGD "
            f"loop takes {list(_SGD_OPTIONS)}"
        )
    missing = [k for k in _SGD_REQUIRED if k not in options]
    if missing:
        raise ValueError(f"method {method!r} runs the SGD loop and needs options {missing}")
    return sgd(
        net, params0, X, y, lam, method=method, callback=callback, validation=validation, **options
    )
