"""The built-in stochastic loop: :func:`sgd`, a short loop over named steps.

One epoch reads like the algorithm::

    for each batch (X_b, y_b, w_b) of a fresh permutation:     batches
        X_b ← transform(X_b, rng)                               transform
        masks ← dropout masks drawn from rng                    regularisers
        cost, g ← J_b and its gradient (one fused pass)         kernel
        stop if cost is NaN/inf or diverged                     (status 2 or 3)
        params ← params + rule(g)                               rule
        max-norm on each unit's incoming weights                regularisers
    history entry, best iterate, callback, early stopping       record (the driver)

The bookkeeping (history, validation, best iterate, callbacks, statuses) is the
driver's (:mod:`flatnn.training.driver`), shared with :func:`flatnn.minimize`.

The contract both paths speak (arguments, result, callbacks, statuses, history)
is stated in :mod:`flatnn.training.driver`.

**Batches and the L2 term.** Each epoch draws one permutation of the ``m`` rows
from ``rng`` and walks it in batches of ``batch_size`` (the last may be
smaller). A batch of ``b`` rows is evaluated with L2 strength ``lam · b / m``
(``lam · W_b / W`` with sample weights), so that the batch gradients, weighted
by ``b / m``, add up to the full-batch gradient of
``J = (1/m) Σ loss + lam/(2m) Σ ‖theta[:, 1:]‖²``: the objective does not
change with the batch size. The loop updates a copy of ``params0`` in place
with the built-in rules' in-place form (bit-identical to their pure
``update``); a custom rule gets the pure contract.

**On a GPU.** The loop computes with the namespace of ``X`` (see
:mod:`flatnn.namespace`): given CuPy data it runs entirely on the device. The
parameters, the rule's state, every batch, the dropout masks and the validation
data live there; ``y``, ``params0``, the sample weights and the validation data
are moved there once when they come from NumPy. Only scalars cross to the host:
each batch's cost and the two numbers of a validation pass. The permutation and
the dropout masks are drawn on the host by the NumPy generator ``rng`` and
copied over: the same seed gives the same run on the CPU and the GPU, to
rounding. ``result.x``, ``result.jac`` and the callbacks' ``x`` are arrays of
the data's namespace (``cupy.asnumpy(result.x)`` brings ``x`` home). A custom
rule must compute with the namespace of its arguments (array methods and
operators do).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from flatnn.base import checks, namespace
from flatnn.core.network import Network
from flatnn.training import regularizers
from flatnn.training import rules as optimizers
from flatnn.training.batches import Batches
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
    check_params0,
    resolve_objective,
    wrap_callback,
)
from flatnn.training.step import BatchStep

__all__ = [
    "sgd",
    "DIVERGENCE_FACTOR",
    "STATUS_DONE",
    "STATUS_EARLY_STOPPED",
    "STATUS_NOT_FINITE",
    "STATUS_DIVERGED",
    "STATUS_STOPPED",
]

DIVERGENCE_FACTOR = 1e3
""":func:`sgd` stops with status 3 when a batch cost exceeds this many times
``max(1, cost of the first batch)``: the cost has blown up, and the rest of the
run would only produce noise (a learning rate 10-100x too large does this)."""


def __getattr__(name: str) -> Any:
    # minimize and its method tables live in flatnn.training.scipy_bridge; code
    # that imported them from here (flatnn/__init__, the CLI, the estimators)
    # still finds them. Lazy: scipy_bridge imports this module.
    if name in ("minimize", "SCIPY_METHODS", "HESSP_METHODS"):
        from flatnn.training import scipy_bridge

        return getattr(scipy_bridge, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------ checks
def _finite_X(X: Any, on_host: bool) -> None:
    if on_host:
        if not np.isfinite(X).all():
            rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
            raise ValueError(f"X contains NaN or inf ({rows.size} rows, first at row {rows[0]})")
    else:
        checks.finite_rows(X)


def _dropout_rates(net: Network, dropout: Any) -> tuple[float, ...] | None:
    """The rates per layer input, or None when there is no dropout.

    A mapping ``{layer input index: rate}`` names only the layers that drop
    (the others get 0); its keys must be layer-input indices.
    """
    if dropout is None:
        return None
    if isinstance(dropout, Mapping):
        n = len(net.sizes) - 1
        rates = [0.0] * n
        for key, rate in dropout.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
                raise TypeError(
                    f"dropout's keys must be layer-input indices (int 0..{n - 1}: the input, "
                    f"then each hidden layer), got {key!r}"
                )
            if not 0 <= key < n:
                raise ValueError(
                    f"dropout has a rate for layer input {key}; {net!r} has layer inputs "
                    f"0..{n - 1} (the input, then each hidden layer)"
                )
            rates[int(key)] = rate
        dropout = rates
    rates_t = regularizers.check_rates(net, dropout)
    return rates_t if any(rates_t) else None


# -------------------------------------------------------------------- loop
class _Loop:
    """One run of :func:`sgd`: the working parameters, the rule's state and the named steps."""

    def __init__(
        self,
        obj: Any,
        params0: Any,
        rule: Any,
        batches: Batches,
        recorder: Recorder,
        rates: Any,
        max_norm: Any,
        notify_batch: Any,
        early_stopping: Any,
    ) -> None:
        net, xp = obj.net, batches.xp
        self.obj, self.net, self.xp, self.on_host = obj, net, xp, xp is np
        self.params0, self.work = params0, batches.X.dtype
        self.rule, self.batches, self.recorder = rule, batches, recorder
        self.rates, self.max_norm = rates, max_norm
        self.notify_batch, self.early_stopping = notify_batch, early_stopping
        self.params = params0.astype(self.work, copy=True)  # the loop's own copy
        self.inplace = optimizers.has_inplace(rule)
        params = self.params
        self.state = rule.inplace_init(params) if self.inplace else rule.init(params)
        self.grad, self.scratch = xp.empty_like(params), xp.empty_like(params)
        self.thetas, self.grads = net.unpack(params), net.unpack(self.grad)
        self.scratches = net.unpack(self.scratch)
        weights = batches.weights
        m = batches.X.shape[0]
        if weights is None:
            self.kernel: Any = BatchStep(net, float(obj.lam), m, xp)
            self.total_share: float = m
        else:
            self.total_share = float(weights.sum(dtype=np.float64))
            weighted: Any = BatchStep  # total_weight=: the weighted batch step (training/step.py)
            self.kernel = weighted(net, float(obj.lam), m, xp, total_weight=self.total_share)
        self.nfev = 0
        self.reference: float | None = None
        self.status, self.message = STATUS_DONE, ""
        self.epochs = 1
        self.schedule: Callable[[int], float] = optimizers.constant(1.0)

    # the named steps of a batch
    def evaluate(self, Xb: Any, tb: Any, wb: Any) -> float:
        """kernel (with this batch's dropout masks): the batch cost; its gradient into grads."""
        masks = None
        if self.rates is not None:  # drawn on the host too: a seed gives one run
            masks = regularizers.draw_masks(
                self.net, self.rates, Xb.shape[0], self.batches.gen, self.work
            )
            if not self.on_host:
                masks = [None if k is None else self.xp.asarray(k) for k in masks]
        if not self.inplace:  # a pure rule may keep the arrays it is given
            self.grad = self.xp.empty_like(self.params)
            self.grads = self.net.unpack(self.grad)
        self.nfev += 1
        if wb is None:
            return self.kernel(self.thetas, Xb, tb, self.grads, self.scratches, masks)
        return self.kernel(self.thetas, Xb, tb, self.grads, self.scratches, masks, weights=wb)

    def update(self, lr: float) -> None:
        """rule, then max-norm: ``params ← params + step`` in place (or a new array)."""
        if self.inplace:
            self.state = self.rule.inplace_update(
                self.grad, self.state, self.params, lr, self.scratch
            )
        else:
            step, self.state = self.rule.update(self.grad, self.state, self.params, lr)
            optimizers.check_step(self.rule, step, self.params)
            self.params = self.params + step
            self.thetas = self.net.unpack(self.params)
        if self.max_norm is not None:
            regularizers.apply_max_norm(self.thetas, self.max_norm)

    def stop(self, status: int, message: str) -> bool:
        self.status, self.message = status, message
        return False

    def cost_ok(
        self, cost: float, where: tuple[int, int, float], Xb: Any, tb: Any, wb: Any
    ) -> bool:
        """False (and the status) when the batch cost is non-finite or diverged."""
        if not math.isfinite(cost):
            return self.stop(STATUS_NOT_FINITE, self.not_finite_message(cost, where, (Xb, tb, wb)))
        if self.reference is None:
            self.reference = max(cost, 1.0)
        if cost <= DIVERGENCE_FACTOR * self.reference:
            return True
        epoch, batch, lr = where
        what = (
            f"the cost diverged in epoch {epoch}, batch {batch}: {cost:.4g}, more than "
            f"{DIVERGENCE_FACTOR:g} times its start ({self.reference:.4g})"
        )
        return self.stop(STATUS_DIVERGED, self.too_fast(what, lr))

    def not_finite_message(
        self, cost: float, where: tuple[int, int, float], batch: tuple[Any, Any, Any] | None
    ) -> str:
        """What became non-finite: the transform's batch, the start, or the steps."""
        epoch, index, lr = where
        at = f"in epoch {epoch}, batch {index}"
        if batch is None:  # a step overflowed
            return self.too_fast(f"the parameters became non-finite {at}", lr)
        Xb, tb, wb = batch
        if self.batches.transform is not None and not bool(self.xp.isfinite(Xb).all()):
            return (
                f"the cost became {cost} {at}: the transform returned NaN or inf in the "
                f"batch; check the transform."
            )
        if self.nfev == 1:  # before any step: params0, the data or lam, not the rate
            lam = float(self.obj.lam)
            plain = BatchStep(self.net, 0.0, self.batches.X.shape[0], self.xp)
            extra = {} if wb is None else {"weights": wb}
            loss = plain(self.thetas, Xb, tb, self.grads, self.scratches, **extra)
            if lam and math.isfinite(loss):
                what = (
                    f"the L2 term overflows (lam={lam:g}, loss {loss:.4g}): use a smaller lam "
                    f"or smaller starting weights"
                )
            else:
                what = f"the loss is {loss} at params0: check the scale of X and y, and params0"
            return f"the cost of the first batch is {cost} before any step: {what}."
        return self.too_fast(f"the cost became {cost} {at}", lr)

    @staticmethod
    def too_fast(what: str, lr: float) -> str:
        return (
            f"{what}; the learning rate {lr:g} is too large for this network and data: "
            f"try {lr / 10:g} or less."
        )

    def notify(self, where: tuple[int, int, float], cost: float, mean: float) -> bool:
        """batch_callback; False (and status 99) after StopIteration."""
        if self.notify_batch is None:
            return True
        epoch, batch, lr = where
        x_view = self.params
        if self.on_host:  # a device array cannot be made read-only
            x_view = self.params.view()
            x_view.flags.writeable = False
        info = OptimizeResult(
            epoch=epoch, batch=batch, fun=cost, nfev=self.nfev, learning_rate=lr, x=x_view
        )
        try:
            with np.errstate(**self.recorder.user_err):
                self.notify_batch(info)
        except StopIteration:
            if self.finite(self.params):
                self.recorder.offer(self.params, self.recorder.score(self.params, mean))
            return self.stop(STATUS_STOPPED, "`batch_callback` raised `StopIteration`.")
        return True

    def finite(self, a: Any) -> bool:
        return bool(np.isfinite(a).all() if self.on_host else self.xp.isfinite(a).all())

    # one epoch, the run, the result
    def epoch(self, epoch: int, lr: float) -> bool:
        """One pass over the data; False when the run ends here."""
        total = seen = 0.0
        where = (epoch, 0, lr)
        for batch, (Xb, tb, wb) in enumerate(self.batches.epoch()):
            where = (epoch, batch, lr)
            cost = self.evaluate(Xb, tb, wb)
            if not self.cost_ok(cost, where, Xb, tb, wb):
                return False
            self.update(lr)
            share = Xb.shape[0] if wb is None else float(wb.sum(dtype=np.float64))
            total += cost * share
            seen += share
            if not self.notify(where, cost, total / seen):
                return False
        if not self.finite(self.params):  # a step overflowed after a finite cost
            return self.stop(STATUS_NOT_FINITE, self.not_finite_message(math.nan, where, None))
        entry = {
            "epoch": epoch,
            "fun": total / self.total_share,
            "learning_rate": lr,
            "nfev": self.nfev,
        }
        with np.errstate(**self.recorder.user_err):
            self.recorder.record(self.params, entry)
        return self.patient(epoch)

    def patient(self, epoch: int) -> bool:
        """early stopping: False (status 1) once the validation cost stopped improving."""
        since = self.recorder.since_best
        if self.early_stopping is None or since < self.early_stopping:
            return True
        return self.stop(
            STATUS_EARLY_STOPPED,
            f"early stopping: the validation cost has not improved for {since} epochs; "
            f"returning the parameters of epoch {epoch - since}",
        )

    def run(self) -> OptimizeResult:
        """All epochs (or until a stop), then the result at the chosen iterate."""
        epochs, schedule = self.epochs, self.schedule
        self.message = f"completed {epochs} epoch{'s' if epochs > 1 else ''}"
        with np.errstate(all="ignore"):  # non-finite values end the run with a status instead
            try:
                for epoch in range(epochs):
                    if not self.epoch(epoch, optimizers.learning_rate_at(schedule, epoch)):
                        break
            except Stopped:
                self.stop(STATUS_STOPPED, "`callback` raised `StopIteration`.")
        return self.result()

    def result(self) -> OptimizeResult:
        """The result at the last iterate, or the best one (see :func:`sgd`'s Returns)."""
        recorder = self.recorder
        if self.status == STATUS_DONE and self.early_stopping is None:
            x = self.params
        elif recorder.best_x is not None:
            x = recorder.best_x
        else:
            x = self.params0.astype(self.work, copy=True)
        fun, jac = self.obj.cost_grad(x)
        self.nfev += 1
        return recorder.result(
            x, fun, jac, nfev=self.nfev, status=self.status, message=self.message
        )


def _training_data(obj: Any, params0: Any) -> tuple[Any, Any, Any, Any, Any]:
    """``(X, target, weights, params0, xp)`` in the work dtype and the data's namespace."""
    net, X = obj.net, obj.X
    xp = namespace.namespace_of(X)
    params0 = check_params0(params0, net.n_params, xp)
    work = np.float32 if (params0.dtype == np.float32 and X.dtype == np.float32) else np.float64
    X = X.astype(work, copy=False)  # a no-op for float data of the work's precision
    _finite_X(X, xp is np)
    y = obj.y if xp is np else namespace.asarray(obj.y, xp, "y")
    weights = getattr(obj, "sample_weight", None)
    if weights is not None:
        weights = namespace.asarray(weights, xp, "sample_weight", "the training X")
        weights = weights.astype(work, copy=False)
    return X, as_target(net, y, work), weights, params0, xp


def sgd(
    net: Any,
    params0: Any,
    X: Any = None,
    y: Any = None,
    lam: float = 0.0,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float | Callable[[int], float],
    method: Any = "sgd",
    rng: Any = None,
    shuffle: bool = True,
    validation: Any = None,
    early_stopping: int | None = None,
    callback: Callable[..., Any] | None = None,
    batch_callback: Callable[..., Any] | None = None,
    dropout: Any = None,
    max_norm: float | None = None,
    transform: Callable[[Any, np.random.Generator], Any] | None = None,
    sample_weight: Any = None,
) -> OptimizeResult:
    """Minibatch stochastic gradient descent with a pluggable update rule (see the module).

    Parameters
    ----------
    net : Network or Objective
        A network (with ``X``, ``y``, ``lam``) or a :class:`flatnn.Objective` (its data, ``lam``
        and weights are used). Other objective-like objects: use :func:`flatnn.minimize`.
    params0 : ndarray, shape (n_params,)
        Starting point; never modified. NumPy, or an array on the device of ``X``.
    X : ndarray, shape (m, sizes[0])
        Never shuffled or modified. NumPy, or a device array (CuPy): the loop runs there.
    y : ndarray, shape (m,) or (m, k)
    lam : float, default 0
        L2 strength of the whole-data objective.
    epochs : int
        Passes over the data (>= 1).
    batch_size : int
        Rows per batch, ``1 <= batch_size <= m``.
    learning_rate : float or callable
        A number, or a schedule ``epoch -> rate`` (from 0), e.g. ``optimizers.step_decay``.
    method : str or rule, default "sgd"
        ``sgd``, ``momentum``, ``nesterov``, ``adam``, ``rmsprop``, a configured built-in
        (``flatnn.optimizers.momentum(0.95)``), or an object with ``init``/``update``.
    rng : None, int or numpy.random.Generator
        Shuffling, dropout masks, transforms; the same seed gives bit-identical results.
    shuffle : bool, default True
        False walks the rows in order.
    validation : (X_val, y_val), optional
        Adds ``val_cost`` and ``val_accuracy`` to each epoch's history entry.
    early_stopping : int, optional
        Patience: stop when ``val_cost`` has not improved for this many epochs; the best
        parameters are returned, also when all epochs ran. Needs ``validation``.
    callback : callable, optional
        Called after each epoch (see the module).
    batch_callback : callable, optional
        Called after every batch with ``epoch``, ``batch``, ``fun`` (the batch cost before
        the step), ``nfev``, ``learning_rate`` and ``x`` (a read-only view valid during the
        call). ``StopIteration`` stops after that batch (the result: the best iterate).
    dropout : sequence of float or {int: float}, optional
        Inverted-dropout rates in ``[0, 1)``, one per layer input (the input's, then each
        hidden layer's), or a mapping ``{layer input: rate}``. See :mod:`flatnn.dropout`.
    max_norm : float, optional
        After every step, each unit's incoming weights (a row of ``theta[:, 1:]``) are
        scaled back to norm ``max_norm`` when longer.
    transform : callable, optional
        ``transform(X_batch, rng) -> X_batch`` for every batch (e.g.
        :func:`flatnn.augment.translate`); it gets the loop's own copy of the batch.
    sample_weight : ndarray, shape (m,), optional
        Weights ``w >= 0``; a batch's cost is its weighted mean (L2 share ``lam·W_b/W``).

    Returns
    -------
    OptimizeResult
        ``x`` (float32 when ``params0`` and ``X`` are; of the namespace of ``X``), ``fun``
        and ``jac`` (the full objective at ``x``, one extra pass counted in ``nfev``),
        ``nit`` (epochs run), ``nfev`` = ``njev``, ``success``, ``status``, ``message``,
        ``history``. ``x`` is the last iterate after all epochs without
        ``early_stopping``; else the best iterate (by ``val_cost`` with ``validation``,
        else by the epoch's ``fun``), or ``params0`` if no epoch finished.
    """
    weights = {} if sample_weight is None else {"sample_weight": sample_weight}
    obj = resolve_objective(net, X, y, lam, "sgd", **weights)
    if not isinstance(getattr(obj, "net", None), Network) or not hasattr(obj, "X"):
        raise TypeError(
            f"sgd needs the training data in this process (a Network with X, y, or a "
            f"flatnn.Objective); got {type(obj).__name__}: use flatnn.minimize for it"
        )
    settings = dict(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        rng=rng,
        shuffle=shuffle,
        early_stopping=early_stopping,
        dropout=dropout,
        max_norm=max_norm,
        transform=transform,
    )
    return _setup(obj, params0, method, validation, callback, batch_callback, **settings).run()


def _setup(
    obj: Any,
    params0: Any,
    method: Any,
    validation: Any,
    callback: Any,
    batch_callback: Any,
    **settings: Any,
) -> _Loop:
    """The run's loop, every argument checked once (in the order of the signature)."""
    X, target, weights, params0, xp = _training_data(obj, params0)
    m = X.shape[0]
    epochs = checks.integer(settings["epochs"], "epochs", 1)
    batch_size = checks.integer(settings["batch_size"], "batch_size", 1, m)
    early_stopping = settings["early_stopping"]
    if early_stopping is not None:
        early_stopping = checks.integer(early_stopping, "early_stopping", 1)
        if validation is None:
            raise ValueError("early_stopping needs validation=(X_val, y_val)")
    if settings["learning_rate"] is None:
        raise TypeError("sgd needs learning_rate (a number or a schedule epoch -> rate)")
    shuffle = settings["shuffle"]
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    schedule = optimizers.as_schedule(settings["learning_rate"])
    rule = optimizers.get(method)
    notify_batch = wrap_callback(batch_callback, "batch_callback")
    net = obj.net
    recorder = Recorder(
        callback, None if validation is None else Validation(net, validation, X.dtype, xp)
    )
    gen = np.random.default_rng(settings["rng"])
    rates = _dropout_rates(net, settings["dropout"])
    max_norm = regularizers.check_max_norm(settings["max_norm"])
    transform = settings["transform"]
    if transform is not None and not callable(transform):
        raise TypeError(
            f"transform must be a callable (X_batch, rng) -> X_batch, got "
            f"{type(transform).__name__}"
        )
    batches = Batches(X, target, weights, batch_size, bool(shuffle), transform, gen, xp)
    loop = _Loop(
        obj, params0, rule, batches, recorder, rates, max_norm, notify_batch, early_stopping
    )
    loop.epochs, loop.schedule = epochs, schedule
    return loop
