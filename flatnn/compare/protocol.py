"""One run of the protocol: a method, at one learning rate, from one seed, for a budget.

Budget in passes
----------------
Every run gets the same budget in *passes* over the training data: a full
``cost_grad`` counts one, a Hessian-vector product counts one, an SGD epoch
counts one (a batch of ``b`` rows counts ``b/m``). The SGD family runs
``budget`` epochs (rounded to a whole number). A scipy method is stopped by
its callback once it has spent the budget; scipy checks the callback only
between iterations, so a run overshoots by at most one iteration's evaluations (after the budget, a
Hessian-vector product answers zeros, which ends the inner conjugate-gradient
loop of Newton-CG and the trust-region methods at once). The passes a run
really used are recorded.

What is measured
----------------
* the cost ``J`` after every iteration or epoch, at no extra cost: scipy's
  value at the iterate, and for SGD the mean of the epoch's batch costs (an
  estimate: the parameters move during the epoch); the final ``J`` is exact;
* the validation accuracy at ``params0`` (once per problem and seed, before
  the first run from that start and shared by all of them, so not charged to
  one run), at a few log-spaced checkpoints (in passes) and at the end; the
  checkpoints are as many as keep their forward passes under ``eval_share``
  (0.5 %) of the budget, a forward pass costing about a third of a
  ``cost_grad`` per row;
* the test accuracy at the end only;
* accuracies are scored in float32 (:meth:`Problem.accuracy`): half the cost
  of a float64 forward pass, the same argmax but for ties to about 1e-6;
* ``seconds``: the optimizer's own wall-clock time; the protocol's
  bookkeeping inside the callback (validation passes, records) is timed and
  subtracted, and everything else inside the run (the checkpoints, the final
  validation and test scores) is the run's ``overhead_seconds``. Measured on
  the 784-100-10 problems at 20 passes (50000 training, 10000 validation and
  10000 test rows): about 1 % of ``seconds``; the float64 scores were 2.3-2.8 %
  of a scipy method's 5-second run.
"""

from __future__ import annotations

import inspect
import math
import time
from typing import Any

import attrs
import numpy as np

from flatnn.compare.methods import Method
from flatnn.compare.problems import Problem
from flatnn.training.scipy_bridge import minimize
from flatnn.training.sgd_loop import sgd

__all__ = ["Budget", "CountedObjective", "checkpoints", "run_one"]

FORWARD_SHARE = 1.0 / 3.0
"""A scoring forward pass (float32) costs about a third of a ``cost_grad`` per row:
the price of one validation row in passes of a training row. Measured on
784-100-10, 2 threads: 10000 rows in 0.015 s against 0.244 s for ``cost_grad``
on 50000 (a float64 forward costs 0.028 s, nearer three fifths)."""


@attrs.frozen
class Budget:
    """How long one run goes, and how often it is scored.

    Parameters
    ----------
    passes : float
        Passes over the training data (``cost_grad`` + Hessian-vector products;
        an SGD epoch counts one); at least 1.
    max_checkpoints : int, default 20
        At most this many validation checkpoints inside a run (besides
        ``params0`` and the end).
    eval_share : float, default 0.005
        The checkpoints' forward passes stay under this share of ``passes``.
    """

    passes: float = attrs.field(converter=float)
    max_checkpoints: int = attrs.field(default=20, converter=int)
    eval_share: float = attrs.field(default=0.005, converter=float)

    def __attrs_post_init__(self) -> None:
        if not (self.passes >= 1 and math.isfinite(self.passes)):
            raise ValueError(
                f"the budget must be a finite number of passes >= 1, got {self.passes}"
            )
        if self.max_checkpoints < 0:
            raise ValueError(f"max_checkpoints must be >= 0, got {self.max_checkpoints}")
        if not 0 <= self.eval_share < 1:
            raise ValueError(f"eval_share must lie in [0, 1), got {self.eval_share}")


def checkpoints(budget: Budget, m_train: int, m_validation: int, *, whole: bool) -> list[float]:
    """The passes at which a run is scored on validation (besides the start and the end).

    Log-spaced from 1 pass to the budget (end excluded), as many as
    ``budget.eval_share`` affords: each costs ``m_validation / m_train / 3``
    passes. ``whole`` rounds them up to whole passes (SGD epochs).
    """
    cost = max(m_validation, 1) / max(m_train, 1) * FORWARD_SHARE
    n = min(budget.max_checkpoints, int(budget.eval_share * budget.passes / cost))
    if n < 1 or budget.passes <= 1:
        return []
    points = np.geomspace(1.0, budget.passes, n + 1)[:-1]
    if whole:
        points = np.ceil(points - 1e-9)
    return sorted({float(p) for p in points if p < budget.passes})


class CountedObjective:
    """An objective that counts its ``cost_grad`` and ``hessp`` calls.

    Once ``nfev + nhev`` reaches ``budget``, ``hessp`` answers zeros: scipy's
    inner conjugate-gradient loops then end at once (see the module docstring).

    Parameters
    ----------
    objective : Objective or objective-like
    budget : float
        Passes after which ``hessp`` answers zeros.
    """

    def __init__(self, objective: Any, budget: float) -> None:
        self.objective = objective
        self.budget = budget
        self.nfev = 0
        self.nhev = 0

    @property
    def n_params(self) -> int:
        """The objective's parameter count."""
        return int(self.objective.n_params)

    @property
    def net(self) -> Any:
        """The objective's network."""
        return self.objective.net

    @property
    def passes(self) -> int:
        """``cost_grad`` calls plus Hessian-vector products so far."""
        return self.nfev + self.nhev

    def cost_grad(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """``(J, ∇J)``, counted."""
        self.nfev += 1
        return self.objective.cost_grad(params)

    def hessp(self, params: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``H v``, counted; zeros once the budget is spent."""
        if self.passes >= self.budget:
            return np.zeros_like(v)
        self.nhev += 1
        return self.objective.hessp(params, v)


class _Tracker:
    """The callback of one run: the cost row per iteration, validation at checkpoints."""

    def __init__(self, problem: Problem, budget: float, points: list[float], counted: Any) -> None:
        self.problem, self.budget, self.points = problem, budget, list(points)
        self.counted = counted  # None: SGD, an epoch is a pass
        self.history: list[dict[str, float]] = []
        self.checks: list[dict[str, float]] = []
        self.excluded = 0.0
        self.start = time.perf_counter()
        self.validation_passes = 0

    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.excluded

    def score(self, x: np.ndarray, passes: float, seconds: float) -> float:
        accuracy = self.problem.accuracy(x, "validation")
        self.validation_passes += 1
        self.checks.append({"passes": passes, "seconds": seconds, "val_accuracy": accuracy})
        return accuracy

    def __call__(self, intermediate_result: Any) -> None:
        seconds = self.seconds()
        t0 = time.perf_counter()
        r = intermediate_result
        passes = float(self.counted.passes if self.counted is not None else r.epoch + 1)
        self.history.append({"passes": passes, "seconds": seconds, "cost": float(r.fun)})
        while self.points and passes >= self.points[0]:
            del self.points[0]
            if not self.points or passes < self.points[0]:
                self.score(r.x, passes, seconds)
        self.excluded += time.perf_counter() - t0
        if self.counted is not None and passes >= self.budget:
            raise StopIteration


def _scipy_options(method: Method, lr: float | None, budget: float) -> dict[str, Any]:
    n = max(1, math.ceil(budget))
    if method.kind == "callable":
        params = inspect.signature(method.optimizer).parameters
        takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        options: dict[str, Any] = {}
        if lr is not None:
            options["learning_rate"] = lr
        if takes_any or "maxiter" in params:
            options["maxiter"] = n
        return options
    if method.name == "TNC":
        return {"maxfun": n}
    if method.name == "L-BFGS-B":
        return {"maxiter": n, "maxfun": n}
    return {"maxiter": n}


def _optimize(
    problem: Problem, method: Method, lr: float | None, seed: int, budget: Budget, tracker: _Tracker
) -> tuple[Any, float]:
    objective = problem.objective()
    params0, accuracy = problem.start(seed)
    tracker.checks.append({"passes": 0.0, "seconds": 0.0, "val_accuracy": accuracy})
    if method.kind == "rule":
        if lr is None:
            raise ValueError(f"{method.name} is an update rule: it needs a learning rate")
        tracker.start = time.perf_counter()
        res = sgd(
            objective,
            params0,
            epochs=max(1, int(round(budget.passes))),
            batch_size=min(problem.batch_size, problem.m),
            learning_rate=lr,
            method=method.optimizer,
            rng=seed,
            callback=tracker,
        )
        return res, float(len(res.history))
    counted = CountedObjective(objective, budget.passes)
    tracker.counted = counted
    options = _scipy_options(method, lr, budget.passes)
    tracker.start = time.perf_counter()
    res = minimize(counted, params0, method=method.optimizer, options=options, callback=tracker)
    return res, float(counted.passes)


def _first_hit(checks: list[dict[str, float]], target: float) -> dict[str, float] | None:
    return next((c for c in checks if c["val_accuracy"] >= target), None)


def run_one(
    problem: Problem, method: Method, learning_rate: float | None, seed: int, budget: Budget
) -> dict[str, Any]:
    """Run ``method`` on ``problem`` from ``net.init(seed)`` for ``budget``; return its record.

    Parameters
    ----------
    problem : Problem
    method : Method
    learning_rate : float or None
        The grid point (None for a method without one).
    seed : int
        Seeds ``params0 = net.init(seed)`` and the SGD shuffling.
    budget : Budget

    Returns
    -------
    dict
        JSON-ready: ``problem``, ``method``, ``learning_rate``, ``seed``,
        ``budget_passes``, ``status``, ``message``, ``passes``, ``nfev``,
        ``nhev``, ``seconds`` (the optimizer's), ``wall_seconds``,
        ``overhead_seconds``, ``validation_passes``, ``final`` (``cost``,
        ``val_accuracy``, ``test_accuracy``), ``passes_to_target``,
        ``seconds_to_target``, ``history`` (rows of ``passes``, ``seconds``,
        ``cost``) and ``checks`` (rows of ``passes``, ``seconds``,
        ``val_accuracy``).
    """
    assert problem.validation is not None and problem.test is not None
    problem.start(seed)  # once per problem and seed, shared by the runs from there
    wall0 = time.perf_counter()
    points = checkpoints(
        budget, problem.m, problem.validation[0].shape[0], whole=method.kind == "rule"
    )
    tracker = _Tracker(problem, budget.passes, points, None)
    res, passes = _optimize(problem, method, learning_rate, seed, budget, tracker)
    seconds = tracker.seconds()
    val = tracker.score(res.x, passes, seconds)
    test = problem.accuracy(res.x, "test")
    hit = _first_hit(tracker.checks, problem.target)
    wall = time.perf_counter() - wall0
    return {
        "problem": problem.name,
        "method": method.name,
        "learning_rate": learning_rate,
        "seed": int(seed),
        "budget_passes": budget.passes,
        "status": int(res.status),
        "message": str(res.message),
        "passes": passes,
        "nfev": int(res.nfev),
        "nhev": int(res.get("nhev", 0)),
        "seconds": seconds,
        "wall_seconds": wall,
        "overhead_seconds": wall - seconds,
        "validation_passes": tracker.validation_passes,
        "final": {"cost": float(res.fun), "val_accuracy": val, "test_accuracy": test},
        "passes_to_target": None if hit is None else hit["passes"],
        "seconds_to_target": None if hit is None else hit["seconds"],
        "history": tracker.history,
        "checks": tracker.checks,
    }
