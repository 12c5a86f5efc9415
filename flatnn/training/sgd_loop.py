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

The bookkeeping (history, validation, best iterate, callbacks, statuses) and
the contract both paths speak are the driver's (:mod:`flatnn.training.driver`).

**Batches and the L2 term.** Each epoch draws one permutation of the ``m`` rows
from ``rng`` and walks it in batches of ``batch_size`` (the last may be
smaller). A batch of ``b`` rows is evaluated with L2 strength ``lam · b / m``
(``lam · W_b / W`` with sample weights): the batch gradients, weighted by
``b / m``, add up to the gradient of ``J``, whatever the batch size. The loop
updates its copy of ``params0`` with the rules' in-place form (bit-identical
to their pure ``update``); a custom rule gets the pure contract.

**On a GPU.** The loop computes with the namespace of ``X`` (see
:mod:`flatnn.namespace`): given CuPy data, the parameters, the rule's state,
every batch, the masks and the validation data live on the device (NumPy ``y``,
``params0``, weights and validation data are moved there once); only each
batch's cost and a validation pass's two numbers reach the host. The order and
the masks are drawn on the host from ``rng``: a seed gives the same run on the
CPU and the GPU, to rounding. ``result.x`` and ``jac`` stay on the device.

**Stopping and the best iterate.** Each epoch's entry is judged by ``monitor``:
``"fun"`` (the epoch's cost estimate), ``"val_cost"`` (the default with
``validation``) or ``"val_score"``, the value of ``score(x)`` (a callable,
higher is better, e.g. accuracy or R² on held-out rows, recorded in the
history as ``val_score``). The best iterate is the best entry so far; an entry
*improves* (resets the patience count) only when it beats the best by more
than ``tol``; ``initial_stopping`` continues a previous run's count (the
driver's ``Recorder``, scikit-learn's rule). ``early_stopping`` is the patience (an
int, or ``math.inf`` to never stop); when it runs out, ``on_plateau()`` is
called if given: a true return resets the count and goes on (e.g. after the
caller's schedule lowered the rate), else the run stops with status 1.
``return_best`` (default: whether ``early_stopping`` is given) returns the best
iterate instead of the last after a completed run.

**Callbacks.** ``callback`` runs after each epoch (the driver's contract),
``batch_callback`` after every batch with ``epoch``, ``batch``, ``fun`` (the
batch cost before the step), ``nfev``, ``learning_rate`` and ``x`` (a read-only
view, valid during the call); its ``StopIteration`` stops with the best iterate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from flatnn.base import checks
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
    resolve_objective,
    wrap_callback,
)
from flatnn.training.sgd_options import SGDOptions, check_options, training_data
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


# -------------------------------------------------------------------- loop
class _Loop:
    """One run of :func:`sgd`: the working parameters, the rule's state and the named steps."""

    def __init__(
        self,
        obj: Any,
        params0: Any,
        options: SGDOptions,
        batches: Batches,
        recorder: Recorder,
        notify_batch: Any,
    ) -> None:
        net, xp, rule = obj.net, batches.xp, options.rule
        self.obj, self.net, self.xp, self.on_host = obj, net, xp, xp is np
        self.params0, self.work, self.options = params0, batches.X.dtype, options
        self.rule, self.batches, self.recorder = rule, batches, recorder
        self.rates, self.max_norm = options.rates, options.max_norm
        self.notify_batch = notify_batch
        self.params = params0.astype(self.work, copy=True)  # the loop's own copy
        self.inplace = optimizers.has_inplace(rule)
        params = self.params
        if options.initial_state is not None:
            self.state = optimizers.copy_state(options.initial_state)
        else:
            self.state = rule.inplace_init(params) if self.inplace else rule.init(params)
        self.grad, self.scratch = xp.empty_like(params), xp.empty_like(params)
        self.thetas, self.grads = net.unpack(params), net.unpack(self.grad)
        self.scratches = net.unpack(self.scratch)
        weights, m = batches.weights, batches.X.shape[0]
        self.total_share: float = m if weights is None else float(weights.sum(dtype=np.float64))
        self.kernel = self.batch_step(m, None if weights is None else self.total_share)
        self.kernels: dict[int, Any] = {}
        self.nfev = 0
        self.reference: float | None = None
        self.status, self.message = STATUS_DONE, ""
        self.problem: tuple[int, str] | None = None  # on_nonfinite="continue": the first one

    def batch_step(self, m: float, total_weight: float | None) -> Any:
        """The batch kernel for ``m`` rows (total weight ``total_weight``) in the L2 share."""
        if total_weight is None:
            return BatchStep(self.net, float(self.obj.lam), int(m), self.xp)
        lam = float(self.obj.lam)
        return BatchStep(self.net, lam, int(m), self.xp, total_weight=total_weight)

    def kernel_for(self, b: int, wb: Any) -> Any:
        """``l2="per_batch"``: the batch's own kernel, whose L2 share is ``lam`` itself."""
        if self.options.l2 == "per_data":
            return self.kernel
        if wb is not None:
            return self.batch_step(b, float(wb.sum(dtype=np.float64)))
        if b not in self.kernels:
            self.kernels[b] = self.batch_step(b, None)
        return self.kernels[b]

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
        kernel = self.kernel_for(Xb.shape[0], wb)
        if wb is None:
            return float(kernel(self.thetas, Xb, tb, self.grads, self.scratches, masks))
        return float(kernel(self.thetas, Xb, tb, self.grads, self.scratches, masks, weights=wb))

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
        """End the run with ``status``; with ``on_nonfinite="continue"`` a non-finite or
        diverged epoch ends only itself (the first such status is the run's)."""
        if status in (STATUS_NOT_FINITE, STATUS_DIVERGED) and self.options.on_nonfinite != "stop":
            if self.problem is None:
                self.problem = (status, message)
            return False
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
            share = Xb.shape[0] if wb is None else float(wb.sum(dtype=np.float64))
            if not share:  # all its weights are 0: the batch's rows are not in the objective
                continue
            cost = self.evaluate(Xb, tb, wb)
            if not self.cost_ok(cost, where, Xb, tb, wb):
                return self.record_nonfinite(epoch, lr)
            self.update(lr)
            total += cost * share
            seen += share
            if not self.notify(where, cost, total / seen):
                return False
        if not self.finite(self.params):  # a step overflowed after a finite cost
            self.stop(STATUS_NOT_FINITE, self.not_finite_message(math.nan, where, None))
            return self.record_nonfinite(epoch, lr)
        entry = {
            "epoch": epoch,
            "fun": total / self.total_share,
            "learning_rate": lr,
            "nfev": self.nfev,
        }
        with np.errstate(**self.recorder.user_err):
            self.recorder.record(self.params, entry)
        return self.patient(epoch)

    def record_nonfinite(self, epoch: int, lr: float) -> bool:
        """After a non-finite or diverged batch: the run ends, or (``on_nonfinite="continue"``)
        the epoch is recorded with NaN values and the run goes on."""
        if self.problem is None:
            return False
        entry = {"epoch": epoch, "fun": math.nan, "learning_rate": lr, "nfev": self.nfev}
        with np.errstate(**self.recorder.user_err):
            self.recorder.record(None, entry)
        return self.patient(epoch)

    def patient(self, epoch: int) -> bool:
        """early stopping: False (status 1) once the monitored value stopped improving."""
        since, patience = self.recorder.since_best, self.options.early_stopping
        if patience is None or since < patience:
            return True
        on_plateau = self.options.on_plateau
        if on_plateau is not None and on_plateau():
            self.recorder.since_best = 0
            return True
        return self.stop(
            STATUS_EARLY_STOPPED,
            f"early stopping: {self.recorder.monitor} has not improved for {since} epochs; "
            f"returning the parameters of epoch {epoch - since}",
        )

    def run(self) -> OptimizeResult:
        """All epochs (or until a stop), then the result at the chosen iterate."""
        epochs, schedule = self.options.epochs, self.options.schedule
        self.message = f"completed {epochs} epoch{'s' if epochs > 1 else ''}"
        with np.errstate(all="ignore"):  # non-finite values end the run with a status instead
            try:
                for epoch in range(epochs):
                    if not self.epoch(epoch, optimizers.learning_rate_at(schedule, epoch)):
                        break
            except Stopped:
                self.stop(STATUS_STOPPED, "`callback` raised `StopIteration`.")
        if self.problem is not None and self.status == STATUS_DONE:
            self.status, self.message = self.problem
        return self.result()

    def result(self) -> OptimizeResult:
        """The result at the last iterate, or the best one (see :func:`sgd`'s Returns).

        An iterate whose objective overflows (finite weights too large for the
        network) is not returned: the best finite one is, with status 2.
        """
        recorder = self.recorder
        candidates = [self.params0.astype(self.work, copy=True)]
        if recorder.best_x is not None:
            candidates.append(recorder.best_x)
        if self.status == STATUS_DONE and not self.options.return_best:
            candidates.append(self.params)
        done = {"status": self.status, "message": self.message, "state": self.state}
        done["stopping"] = recorder.stopping_state()
        if not self.options.final_eval:  # no pass over the data: fun NaN, jac None
            return recorder.result(candidates[-1], math.nan, None, nfev=self.nfev, **done)
        while True:
            x = candidates.pop()
            try:
                with np.errstate(all="ignore"):
                    fun, jac = self.obj.cost_grad(x)
                break
            except checks.NotFiniteError as error:
                if not candidates:
                    raise
                self.status, self.message = (
                    STATUS_NOT_FINITE,
                    (
                        f"the objective overflows at the final iterate ({error}); returning the "
                        f"best iterate with a finite objective (or params0): try a smaller "
                        f"learning rate, or scale X."
                    ),
                )
        self.nfev += 1
        done.update(status=self.status, message=self.message)
        return recorder.result(x, fun, jac, nfev=self.nfev, **done)


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
    early_stopping: float | None = None,
    callback: Callable[..., Any] | None = None,
    batch_callback: Callable[..., Any] | None = None,
    dropout: Any = None,
    max_norm: float | None = None,
    transform: Callable[[Any, np.random.Generator], Any] | None = None,
    sample_weight: Any = None,
    score: Callable[[Any], float] | None = None,
    monitor: str | None = None,
    tol: float = 0.0,
    on_plateau: Callable[[], Any] | None = None,
    return_best: bool | None = None,
    on_nonfinite: str = "stop",
    l2: str = "per_data",
    initial_state: Any = None,
    final_eval: bool = True,
    initial_stopping: dict[str, Any] | None = None,
) -> OptimizeResult:
    """Minibatch stochastic gradient descent with a pluggable update rule (see the module).

    Parameters
    ----------
    net, params0 : Network or Objective; ndarray, shape (n_params,)
        A network (with ``X``, ``y``, ``lam``), or a :class:`flatnn.Objective` (its own
        data); the starting point, never modified.
    X, y, lam, sample_weight
        As in :meth:`flatnn.Network.cost`: ``X`` (m, n_features; scipy.sparse too, never
        made dense), ``y`` (m,) or (m, k), ``sample_weight`` (m,). ``X`` is never modified.
    epochs, batch_size : int
        Passes over the data (>= 1); rows per batch (``1 <= batch_size <= m``).
    learning_rate : float or callable
        A number, or a schedule ``epoch -> rate`` (:mod:`flatnn.optimizers`).
    method : str or rule, default "sgd"
        ``sgd``, ``momentum``, ``nesterov``, ``adam``, ``rmsprop``, a configured built-in
        such as ``flatnn.optimizers.momentum(0.95)``, or any ``init``/``update`` object.
    rng, shuffle : seed or numpy.random.Generator; bool, default True
        Order, masks, transforms (a seed gives bit-identical runs); False keeps the order.
    validation : (X_val, y_val), optional
        Adds ``val_cost`` and ``val_accuracy`` to each history entry.
    early_stopping : int or inf, optional
        Patience (epochs without improvement; ``inf``: never stop), then the best iterate.
    score, monitor, tol, on_plateau, return_best, callback, batch_callback
        Stopping, the best iterate, the callbacks after each epoch / batch: see the module.
    dropout, max_norm, transform : optional
        Dropout rate per layer input (or ``{layer input: rate}``); the max-norm radius of
        each unit's incoming weights; ``transform(X_batch, rng) -> X_batch`` (augmentation).
    on_nonfinite, l2 : {"stop", "continue"}; {"per_data", "per_batch"}
        At a NaN, inf or diverged cost: end the run, or record the epoch as NaN and go on.
        A batch's L2 share: ``lam·b/m`` (the whole-data ``J``), or ``lam`` itself.
    initial_state, initial_stopping : optional
        A previous ``result.state`` (the rule's) and ``result.stopping`` to continue.
    final_eval : bool, default True
        ``fun`` and ``jac`` at the returned ``x`` (one more pass); False: NaN and None.

    Returns
    -------
    OptimizeResult
        ``x`` (the work's dtype, ``X``'s namespace), ``fun`` and ``jac`` (the objective at
        ``x``, counted in ``nfev``), ``nit`` (epochs run), ``nfev`` = ``njev``, ``success``,
        ``status``, ``message``, ``history``, ``state`` (the rule's), ``stopping`` (the
        driver's ``Recorder.stopping_state()``). ``x`` is the last iterate unless
        ``return_best``; else, or after a stop, the best (or ``params0``).
    """
    settings = {k: v for k, v in locals().items() if k not in ("net", "X", "y", "lam")}
    return _setup(net, X, y, lam, settings).run()


def _setup(net: Any, X: Any, y: Any, lam: float, settings: dict[str, Any]) -> _Loop:
    """The run's loop, every argument checked once."""
    weights = settings.pop("sample_weight")
    obj = resolve_objective(
        net, X, y, lam, "sgd", **({} if weights is None else {"sample_weight": weights})
    )
    if not isinstance(getattr(obj, "net", None), Network) or not hasattr(obj, "X"):
        raise TypeError(
            f"sgd needs the training data in this process (a Network with X, y, or a "
            f"flatnn.Objective); got {type(obj).__name__}: use flatnn.minimize for it"
        )
    X, target, weights, params0, xp = training_data(obj, settings.pop("params0"))
    validation, monitor = settings.pop("validation"), settings.pop("monitor")
    score, tol = settings.pop("score"), settings.pop("tol")
    if score is not None and not callable(score):
        raise TypeError(f"score must be a callable params -> float, got {type(score).__name__}")
    callback, batch_callback = settings.pop("callback"), settings.pop("batch_callback")
    options = check_options(
        obj.net, X.shape[0], has_monitor=validation is not None or monitor is not None, **settings
    )
    notify_batch = wrap_callback(batch_callback, "batch_callback")
    checked = None if validation is None else Validation(obj.net, validation, X.dtype, xp)
    stopping = settings.pop("initial_stopping")
    recorder = Recorder(callback, checked, monitor=monitor, score=score, tol=tol, stopping=stopping)
    batches = Batches(
        X, target, weights, options.batch_size, options.shuffle, options.transform, options.rng, xp
    )
    return _Loop(obj, params0, options, batches, recorder, notify_batch)
