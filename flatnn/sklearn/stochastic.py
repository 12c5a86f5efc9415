"""The SGD family's ``fit`` and ``partial_fit``: scikit-learn's semantics over :func:`flatnn.sgd`.

:func:`flatnn.sgd` runs the epochs with scikit-learn's L2 form (``l2="per_batch"``:
a batch of ``b`` rows gets ``alpha / (2b)·Σ‖W‖²``, or ``alpha / (2·Σ_b w)`` with
weights), the per-sample weights, the optimizer state a ``partial_fit``
continues (``initial_state`` / ``result.state``) and ``on_nonfinite="continue"``
(a diverging epoch is recorded as ``nan`` and the run goes on, as in
scikit-learn). The ``tol`` / ``n_iter_no_change`` rule is the driver's:
``monitor="fun"`` (the training loss) or ``"val_score"`` (accuracy or R² on the
held-out rows, weighted, through ``score=``), patience ``n_iter_no_change + 1``,
``on_plateau`` the adaptive rate's division by 5, and the count and best value
that carry over from one ``partial_fit`` or warm start to the next passed in as
``initial_stopping`` and read back from ``result.stopping``. This module gives
``sgd`` scikit-learn's schedules (:class:`Schedule`) and keeps, after each
epoch, scikit-learn's record: ``loss_curve_``, ``validation_scores_``, ``t_``.

A run whose weights end non-finite keeps the best finite weights and warns.
When even the starting weights give a non-finite training cost, the data is at
fault: ValueError, in scikit-learn's words.
"""

from __future__ import annotations

import math
import types
import warnings
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from flatnn.base import checks, namespace
from flatnn.sklearn import device as devices
from flatnn.training import STATUS_DONE, STATUS_EARLY_STOPPED, STATUS_NOT_FINITE, sgd
from flatnn.training import rules as optimizers

__all__ = ["Schedule", "StochasticFit", "sgd_rule"]

NON_FINITE_MESSAGE = (
    "Solver produced non-finite parameter weights. The input data may contain large"
    " values and need to be preprocessed."
)


class Schedule:
    """scikit-learn's learning-rate schedules as a flatnn schedule ``epoch -> rate``.

    ``constant``: ``learning_rate_init``; ``invscaling``: ``learning_rate_init /
    (t + 1) ** power_t`` with ``t`` the samples seen before the epoch (a fit's
    first epoch uses ``learning_rate_init``: scikit-learn starts each fit's
    optimizer afresh); ``adaptive``: the current rate, divided by 5 by the fit's
    stopping logic (:meth:`decay`).
    """

    def __init__(
        self, kind: str, initial: float, rate: float, power_t: float, t0: int, m: int, fresh: bool
    ) -> None:
        self.kind, self.initial, self.rate, self.power_t = kind, initial, rate, power_t
        self.t0, self.m, self.fresh = t0, m, fresh

    def __call__(self, epoch: int) -> float:
        if self.kind != "invscaling":
            return self.rate
        if self.fresh and epoch == 0:
            return self.initial
        return self.initial / (self.t0 + epoch * self.m + 1) ** self.power_t

    def decay(self) -> bool:
        """Divide the adaptive rate by 5; return False when it is already <= 1e-6."""
        if self.kind != "adaptive" or self.rate <= 1e-6:
            return False
        self.rate /= 5.0
        return True


def sgd_rule(name: Any, est: Any) -> Any:
    """The update rule solver ``name`` of estimator ``est`` runs (a rule object as is).

    scikit-learn's ``"sgd"`` is Nesterov or classical momentum (plain descent at
    ``momentum=0``).
    """
    if not isinstance(name, str):
        return name
    if name == "adam":
        return optimizers.adam(float(est.beta_1), float(est.beta_2), float(est.epsilon))
    if name == "rmsprop":
        return optimizers.rmsprop(eps=float(est.epsilon))
    beta = float(est.momentum)
    if name == "sgd" and beta == 0:
        return optimizers.sgd()
    nesterov = name == "nesterov" or (name == "sgd" and est.nesterovs_momentum)
    return optimizers.nesterov(beta) if nesterov else optimizers.momentum(beta)


class StochasticFit:
    """The SGD family's fit, a part of the estimators (not public on its own)."""

    loss_curve_: list[float]
    best_loss_: float | None
    validation_scores_: list[float] | None
    best_validation_score_: float | None
    optimizer_state_: Any

    def _hold_out(self: Any, data: tuple, rs: Any, first_pass: bool) -> tuple:
        """Split off ``validation_fraction`` of the rows: ``(train data, (X_val, y_val, w_val))``.

        Stratified as scikit-learn does: a binary classifier's split only, on its
        boolean column. Sample weights follow their rows.
        """
        X, target, y, weights = data
        stratify = None
        if self._is_classifier and self.n_outputs_ == 1:
            stratify = target.astype(bool)
        rows_train, rows_val = train_test_split(
            np.arange(X.shape[0]),
            random_state=rs,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        if rows_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase "
                "'validation_fraction' or the size of your dataset."
            )
        if first_pass or self.validation_scores_ is None:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        w_train, w_val = (
            (None, None) if weights is None else (weights[rows_train], weights[rows_val])
        )
        train = (X[rows_train], target[rows_train], None, w_train)
        return train, (X[rows_val], self._score_target(y, rows_val), w_val)

    def _batch_size(self: Any, m: int) -> int:
        if self.batch_size == "auto":
            return min(200, m)
        if self.batch_size > m:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. "
                "It is going to be clipped",
                UserWarning,
                stacklevel=5,
            )
            return m
        return int(self.batch_size)

    def _schedule(self: Any, method: Any, m: int, incremental: bool) -> Schedule:
        # scikit-learn's adam ignores learning_rate; its sgd schedules the rate
        kind = "constant" if method == "adam" else self.learning_rate
        rate0 = float(self.learning_rate_init)
        keep = incremental and self._current_rate is not None
        rate = self._current_rate if keep else rate0
        fresh = not incremental or self.t_ == 0
        return Schedule(kind, rate0, rate, float(self.power_t), self.t_, m, fresh)

    def _fit_stochastic(
        self: Any,
        data: tuple,
        params: Any,
        method: Any,
        rs: Any,
        incremental: bool,
        first_pass: bool,
        xp: Any = None,
    ) -> None:
        """``data``: ``(X, target, y, sample weights or None)``, validated."""
        ctx = types.SimpleNamespace(validation=None, last=None)
        if self.early_stopping:
            data, ctx.validation = self._hold_out(data, rs, first_pass)
        elif self.best_loss_ is None:  # a warm start after a fit with early stopping
            self.best_loss_ = np.inf
        X, target, _, weights = data
        m = X.shape[0]
        batch_size = self._batch_size(m)
        ctx.m, ctx.schedule = m, self._schedule(method, m, incremental)
        ctx.epochs = 1 if incremental else int(self.max_iter)
        saved = self.optimizer_state_ if incremental else None
        if xp is not None:  # the data, and the state partial_fit continues, to the device
            X, target = xp.asarray(X), xp.asarray(target)
            if ctx.validation is not None:
                ctx.validation = (xp.asarray(ctx.validation[0]), *ctx.validation[1:])
            if saved is not None:
                saved = devices.map_arrays(saved, xp.asarray)
        self.n_iter_ = 0
        alpha = float(self.alpha)
        stopping = self._stopping(ctx)
        try:
            result = sgd(
                self.network_,
                params,
                X,
                target,
                alpha,
                epochs=ctx.epochs,
                batch_size=batch_size,
                learning_rate=ctx.schedule,
                method=sgd_rule(method, self),
                rng=np.random.default_rng(rs.randint(np.iinfo(np.int32).max)),
                shuffle=self.shuffle,
                callback=lambda intermediate_result: self._on_epoch(intermediate_result, ctx),
                sample_weight=weights,
                on_nonfinite="continue",
                l2="per_batch",
                initial_state=saved,
                **stopping,
            )
        except checks.NotFiniteError as exc:  # even params0 overflows the objective
            result = self._start_result(params, X, target, weights, exc)
        self._stopped(result, ctx, stopping["initial_stopping"])
        self.optimizer_state_ = devices.map_arrays(result.get("state"), namespace.to_numpy)
        result.x = namespace.to_numpy(result.x)
        result.jac = None if result.jac is None else namespace.to_numpy(result.jac)
        self._current_rate = ctx.schedule.rate
        self._finish_stochastic(result, ctx, incremental)

    def _stopping(self: Any, ctx: Any) -> dict[str, Any]:
        """``sgd``'s stopping options: scikit-learn's ``tol`` / ``n_iter_no_change`` rule."""
        if ctx.validation is not None:
            X_val, y_val, w_val = ctx.validation
            monitor, best = "val_score", self.best_validation_score_
            extra: dict[str, Any] = {
                "score": lambda x: self._score_params(x, X_val, y_val, w_val),
                "return_best": True,  # the best held-out score's weights, as scikit-learn
            }
        else:
            monitor, best, extra = "fun", self.best_loss_, {"return_best": False}
        carried = {"monitor": monitor, "best": best, "since_best": self._no_improvement_count}
        return {
            "monitor": monitor,
            "tol": float(self.tol),
            "early_stopping": self.n_iter_no_change + 1,  # scikit-learn stops above the count
            "on_plateau": ctx.schedule.decay,
            "initial_stopping": carried,
            **extra,
        }

    def _stopped(self: Any, result: Any, ctx: Any, carried: dict[str, Any]) -> None:
        """Keep the stopping state the run ended with, for a next partial_fit or warm start."""
        stopping = result.get("stopping")
        ctx.best = None
        if stopping is None:  # the run's result was replaced (see _start_result)
            return
        self._no_improvement_count = stopping["since_best"]
        if ctx.validation is None:
            self.best_loss_ = stopping["best"]
            return
        if stopping["best"] > carried["best"]:  # this run beat the score it started from
            ctx.best = result.x
        self.best_validation_score_ = stopping["best"]

    def _start_result(self: Any, params: Any, X: Any, target: Any, weights: Any, exc: Any) -> Any:
        """The weights the fit started from, as a failed run's result (see the module notes).

        For a run whose weights overflow even the cost: the starting weights are
        the best ones known to give a finite cost; when they do not either, the
        data is at fault (ValueError in scikit-learn's words).
        """
        try:
            fun = float(self.network_.cost(params, X, target, 0.0, sample_weight=weights))
        except checks.NotFiniteError as again:
            raise ValueError(f"{NON_FINITE_MESSAGE} (flatnn: {again})") from exc
        return OptimizeResult(
            x=params,
            fun=fun,
            jac=None,
            nit=self.n_iter_,
            success=False,
            status=STATUS_NOT_FINITE,
            message=f"{exc}; the weights the fit started from are kept",
            history=[],
        )

    def _on_epoch(self: Any, intermediate_result: Any, ctx: Any) -> None:
        """scikit-learn's bookkeeping after an epoch; StopIteration when it stops."""
        loss = float(intermediate_result.fun)
        self.n_iter_ += 1
        self.t_ += ctx.m
        self.loss_ = loss
        self.loss_curve_.append(loss)
        x = intermediate_result.x  # None for an epoch that ended non-finite
        if x is not None:
            ctx.last = x
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
        if ctx.validation is not None:
            score = float(intermediate_result.val_score)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")

    def _finish_stochastic(self: Any, result: Any, ctx: Any, incremental: bool) -> None:
        stopped = result.status == STATUS_EARLY_STOPPED
        if stopped and self.verbose:
            what = "Validation score" if ctx.validation is not None else "Training loss"
            print(
                f"{what} did not improve more than tol={float(self.tol):f} for "
                f"{self.n_iter_no_change} consecutive epochs. Stopping."
            )
        if result.status in (STATUS_DONE, STATUS_EARLY_STOPPED) and ctx.last is not None:
            x = ctx.best if ctx.best is not None else ctx.last
        else:
            x = self._after_divergence(result, ctx)
        self.params_ = np.ascontiguousarray(namespace.to_numpy(x))
        self.result_ = result
        if not incremental and not stopped and result.status == STATUS_DONE:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                f"the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _after_divergence(self: Any, result: Any, ctx: Any) -> Any:
        """Record a diverged run as scikit-learn does; the best finite weights to keep."""
        if not math.isfinite(float(result.fun)):
            raise ValueError(
                f"{NON_FINITE_MESSAGE} (flatnn: {result.message}; the training cost is "
                f"{float(result.fun)} even at the best weights seen)"
            )
        warnings.warn(
            f"{self.solver!r} stopped: {result.message}; the remaining epochs are "
            f"recorded as nan (as scikit-learn records them) and the best finite weights are kept.",
            ConvergenceWarning,
            stacklevel=5,
        )
        left = ctx.epochs - self.n_iter_
        self.loss_curve_.extend([math.nan] * left)
        if ctx.validation is not None:
            self.validation_scores_.extend([math.nan] * left)
        self.n_iter_ += left
        self.t_ += ctx.m * left
        self.loss_ = math.nan
        self._no_improvement_count = 0
        return ctx.best if ctx.best is not None else result.x
