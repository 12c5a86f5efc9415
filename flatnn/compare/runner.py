"""The comparison: tune each method on validation, rerun the best with N seeds, resume.

For every problem and method: each point of the method's learning-rate grid
runs once (seed 0) for the budget and is scored by its final validation
accuracy (ties: the lower final cost ``J``); the best point then runs with
seeds ``0 .. seeds-1`` (seed 0 is the tuning run itself). A method without a
hyperparameter runs once per seed.

Each run is written to ``<folder>/runs/`` as soon as it ends; running again
with the same folder and settings loads the finished runs instead of
repeating them (a folder of other settings is refused).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from flatnn.compare.methods import Method, default_methods, get_method
from flatnn.compare.problems import Problem, get_problem
from flatnn.compare.protocol import Budget, run_one

__all__ = ["Settings", "RunStore", "compare", "finite", "selection_score"]

DEFAULT_BUDGETS = {
    "xor": (2000.0, 300.0),
    "mnist-mlp": (30.0, 5.0),
    "mnist-deep": (30.0, 5.0),
    "fashion-mlp": (30.0, 5.0),
    "captcha-mlp": (100.0, 10.0),
}
"""Passes per run ``(full, quick)`` of each named problem; others: ``(30, 5)``."""


@attrs.frozen
class Settings:
    """The protocol's settings, stated in every output.

    Parameters
    ----------
    budget : float or None
        Passes per run; None: each problem's default (:data:`DEFAULT_BUDGETS`).
    grid_points : int, optional
        Learning rates per method (log-spaced over its range); default 7, quick 3.
    grid_range : (low, high) or None
        One learning-rate range for every method (default: each method's own).
    seeds : int, optional
        Seeds of the best point; default 5, quick 2.
    max_checkpoints : int, default 20
        Validation checkpoints per run, at most (see :class:`Budget`).
    eval_share : float, default 0.005
        Share of the budget the checkpoints may cost.
    quick : bool, default False
        Small data, small budgets, 3 grid points and 2 seeds (tests).
    """

    budget: float | None = None
    grid_points: int | None = None
    grid_range: tuple[float, float] | None = None
    seeds: int | None = None
    max_checkpoints: int = 20
    eval_share: float = 0.005
    quick: bool = False

    def __attrs_post_init__(self) -> None:
        # Budget checks them (a budget of None: each problem's default, checked later)
        Budget(1.0 if self.budget is None else self.budget, self.max_checkpoints, self.eval_share)
        if self.grid_points is not None and self.grid_points < 1:
            raise ValueError(f"grid_points must be >= 1, got {self.grid_points}")
        if self.seeds is not None and self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if self.grid_range is not None and not 0 < self.grid_range[0] <= self.grid_range[1]:
            raise ValueError(
                f"grid_range must be (low, high) with 0 < low <= high, got {self.grid_range}"
            )

    @property
    def n_points(self) -> int:
        """Learning rates per method: ``grid_points``, else 7 (quick: 3)."""
        return self.grid_points if self.grid_points is not None else (3 if self.quick else 7)

    @property
    def n_seeds(self) -> int:
        """Seeds of the best point: ``seeds``, else 5 (quick: 2)."""
        return self.seeds if self.seeds is not None else (2 if self.quick else 5)

    def budget_for(self, problem: Problem) -> Budget:
        """The budget of each run on ``problem``."""
        passes = self.budget
        if passes is None:
            full, quick = DEFAULT_BUDGETS.get(problem.name, (30.0, 5.0))
            passes = quick if self.quick else full
        return Budget(passes, self.max_checkpoints, self.eval_share)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        d = attrs.asdict(self)
        d.update(grid_points=self.n_points, seeds=self.n_seeds)
        d["grid_range"] = None if self.grid_range is None else list(self.grid_range)
        return d


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def selection_score(record: dict[str, Any]) -> tuple[float, float]:
    """How a grid point ranks: (final validation accuracy, −final cost); NaN ranks last."""
    final = record["final"]
    acc = final.get("val_accuracy")
    cost = final.get("cost")
    acc = -math.inf if acc is None or math.isnan(acc) else acc
    cost = math.inf if cost is None or math.isnan(cost) else cost
    return acc, -cost


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


class RunStore:
    """The run folder: ``protocol.json`` and one JSON file per finished run.

    Parameters
    ----------
    folder : path-like
        Created when missing.
    settings : Settings
        Must equal those stored in the folder by an earlier run, if any.

    Raises
    ------
    ValueError
        When the folder holds runs of other settings.
    """

    def __init__(self, folder: str | Path, settings: Settings) -> None:
        self.folder = Path(folder)
        self.settings = settings
        self.folder.mkdir(parents=True, exist_ok=True)
        stored = self.folder / "protocol.json"
        wanted = settings.to_dict()
        if stored.exists():
            old = json.loads(stored.read_text())
            if old != wanted:
                raise ValueError(
                    f"{self.folder} holds runs of other settings ({old}); "
                    f"these are {wanted}: use a new folder"
                )
        else:
            stored.write_text(json.dumps(wanted, indent=1) + "\n")

    def path(self, problem: str, method: str, lr: float | None, seed: int) -> Path:
        """Where the run of this key is written."""
        point = "none" if lr is None else f"{lr:.6g}"
        name = f"{_safe(method)}_lr-{point}_seed-{seed}.json"
        return self.folder / "runs" / _safe(problem) / name

    def load(self, problem: str, method: str, lr: float | None, seed: int) -> dict | None:
        """The finished run of this key, or None."""
        path = self.path(problem, method, lr, seed)
        return json.loads(path.read_text()) if path.exists() else None

    def save(self, record: dict[str, Any]) -> None:
        """Write one finished run (atomically: a stopped run leaves no half file)."""
        path = self.path(
            record["problem"], record["method"], record["learning_rate"], record["seed"]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(finite(record), allow_nan=False) + "\n")
        tmp.replace(path)


Progress = Callable[[str], None]


def _run(
    store: RunStore,
    problem: Problem,
    method: Method,
    lr: float | None,
    seed: int,
    budget: Budget,
    progress: Progress | None,
    counter: list[int],
) -> dict[str, Any]:
    counter[0] += 1
    record = store.load(problem.name, method.name, lr, seed)
    done = record is not None
    if record is None:
        record = finite(run_one(problem, method, lr, seed, budget))
        store.save(record)
    if progress is not None:
        progress(_progress_line(record, counter[0], done))
    return record


def _progress_line(r: dict[str, Any], index: int, done: bool) -> str:
    lr = "" if r["learning_rate"] is None else f" lr={r['learning_rate']:.3g}"
    f = r["final"]
    if done:
        return f"[{index}] {r['problem']} {r['method']}{lr} seed {r['seed']}: done before, skipped"

    def pct(v: Any) -> str:
        return "nan" if v is None else f"{100 * v:.2f}%"

    target = r["passes_to_target"]
    return (
        f"[{index}] {r['problem']} {r['method']}{lr} seed {r['seed']}: "
        f"{r['passes']:.0f}/{r['budget_passes']:g} passes, {r['seconds']:.3g} s, "
        f"J {f['cost'] if f['cost'] is not None else float('nan'):.4g}, "
        f"val {pct(f['val_accuracy'])}, test {pct(f['test_accuracy'])}, "
        f"target {'not reached' if target is None else f'at {target:g} passes'}"
    )


def _method_runs(
    store: RunStore, problem: Problem, method: Method, progress: Progress | None, counter: list[int]
) -> dict[str, Any]:
    s = store.settings
    budget = s.budget_for(problem)
    grid = method.grid(s.n_points, s.grid_range)
    seeds = s.n_seeds
    tuning = [_run(store, problem, method, lr, 0, budget, progress, counter) for lr in grid]
    best = max(tuning, key=selection_score)["learning_rate"] if tuning else None
    runs = list(tuning)  # seed 0 of the best point is its tuning run
    for seed in range(1 if tuning else 0, seeds):
        runs.append(_run(store, problem, method, best, seed, budget, progress, counter))
    return {
        "grid": list(grid),
        "best_learning_rate": best,
        "seeds": seeds,
        "budget_passes": budget.passes,
        "runs": runs,
    }


def compare(
    problems: Sequence[str | Problem],
    methods: Sequence[str | Method] | None = None,
    *,
    folder: str | Path,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the protocol on every problem and method; return everything it measured.

    Parameters
    ----------
    problems : sequence of str or Problem
        Names of :data:`flatnn.compare.NAMES`, ``module:attr``, or Problems.
    methods : sequence of str or Method, optional
        Default: every rule and every scipy method fit for the network (the
        dense ones are skipped above :data:`flatnn.compare.DENSE_MAX_PARAMS`).
    folder : path-like
        The run folder (created; resumed when it holds runs of these settings).
    settings : Settings, optional
    progress : callable, optional
        Called with one line per run.

    Returns
    -------
    dict
        ``settings``, ``problems`` (name -> facts, with ``methods`` name ->
        ``grid``, ``best_learning_rate``, ``seeds``, ``budget_passes``,
        ``runs``, and ``skipped``).
    """
    settings = Settings() if settings is None else settings
    plan = []  # every problem and method resolved first: bad input creates no folder
    for spec in problems:
        problem = get_problem(spec, quick=settings.quick)
        if methods is None:
            chosen, skipped = default_methods(problem.net.n_params)
        else:
            chosen, skipped = [get_method(m) for m in methods], []
        plan.append((problem, chosen, skipped))
    store = RunStore(folder, settings)
    counter = [0]
    out: dict[str, Any] = {"settings": settings.to_dict(), "problems": {}}
    for problem, chosen, skipped in plan:
        entry: dict[str, Any] = {**problem.describe(), "skipped": skipped, "methods": {}}
        for method in chosen:
            info = _method_runs(store, problem, method, progress, counter)
            entry["methods"][method.name] = {**method.describe(), **info}
        out["problems"][problem.name] = entry
    return out
