"""What a comparison writes: the JSON of every run, the CSV summary, the profile.

``summary.csv`` has one row per problem and method, over the seeds of the
best grid point: the median and interquartile range (q3 − q1) of the final
test accuracy and of the final cost ``J``, the median passes and seconds to
the target validation accuracy over the seeds that reached it (resolved to
the run's validation checkpoints: the first one at or above the target), and
the fraction of seeds that did, the optimizer's median seconds, and the
protocol's overhead as a share of the optimizer's seconds (``overhead_median``
over those seeds, ``overhead_max`` over every run of the method, grid points
included); every row also states the budget, the grid and the number of seeds.

``profile.csv`` holds the Dolan–Moré performance ratios (Dolan & Moré 2002):
for problem ``p`` and method ``s``, ``t[p, s]`` is the median over seeds of
the passes (or seconds) to target, a seed that missed counting as infinite;
``r[p, s] = t[p, s] / min_s t[p, s]``. A method's profile
``ρ_s(τ) = |{p : r[p, s] <= τ}| / n_problems`` is plotted by
:mod:`flatnn.compare.plots`.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from flatnn.compare.runner import finite

__all__ = [
    "SUMMARY_FIELDS",
    "seed_runs",
    "summary_rows",
    "profile_ratios",
    "profile_curve",
    "write_results",
]

SUMMARY_FIELDS = (
    "problem",
    "method",
    "hyperparameter",
    "best_learning_rate",
    "grid",
    "seeds",
    "budget_passes",
    "target",
    "test_accuracy_median",
    "test_accuracy_iqr",
    "cost_median",
    "cost_iqr",
    "passes_to_target_median",
    "seconds_to_target_median",
    "reached_fraction",
    "seconds_median",
    "overhead_median",
    "overhead_max",
)


def seed_runs(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of a method's best grid point, one per seed, by seed."""
    best = info["best_learning_rate"]
    runs = [r for r in info["runs"] if r["learning_rate"] == best]
    return sorted(runs, key=lambda r: r["seed"])[: info["seeds"]]


def _median(values: list[Any]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.median(v)) if v else None


def _iqr(values: list[Any]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return None
    q1, q3 = np.percentile(v, [25, 75])
    return float(q3 - q1)


def _grid_text(grid: list[float]) -> str:
    if not grid:
        return "none"
    return f"{grid[0]:g}..{grid[-1]:g} ({len(grid)} log-spaced)"


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per problem and method, keyed by :data:`SUMMARY_FIELDS`."""
    rows = []
    for name, problem in results["problems"].items():
        for method, info in problem["methods"].items():
            runs = seed_runs(info)
            tests = [r["final"]["test_accuracy"] for r in runs]
            costs = [r["final"]["cost"] for r in runs]
            hit = [r for r in runs if r["passes_to_target"] is not None]
            overhead = [r["overhead_seconds"] / r["seconds"] for r in runs if r["seconds"] > 0]
            every = [r["overhead_seconds"] / r["seconds"] for r in info["runs"] if r["seconds"] > 0]
            rows.append(
                {
                    "problem": name,
                    "method": method,
                    "hyperparameter": info["hyperparameter"] or "none",
                    "best_learning_rate": info["best_learning_rate"],
                    "grid": _grid_text(info["grid"]),
                    "seeds": len(runs),
                    "budget_passes": info["budget_passes"],
                    "target": problem["target"],
                    "test_accuracy_median": _median(tests),
                    "test_accuracy_iqr": _iqr(tests),
                    "cost_median": _median(costs),
                    "cost_iqr": _iqr(costs),
                    "passes_to_target_median": _median([r["passes_to_target"] for r in hit]),
                    "seconds_to_target_median": _median([r["seconds_to_target"] for r in hit]),
                    "reached_fraction": len(hit) / len(runs) if runs else 0.0,
                    "seconds_median": _median([r["seconds"] for r in runs]),
                    "overhead_median": _median(overhead),
                    "overhead_max": max(every) if every else None,
                }
            )
    return rows


def _time_to_target(runs: list[dict[str, Any]], key: str) -> float:
    values = [math.inf if r[key] is None else r[key] for r in runs]
    return float(np.median(values)) if values else math.inf


def profile_ratios(results: dict[str, Any], key: str = "passes_to_target") -> dict[str, dict]:
    """Performance ratios ``r[p][s]`` (``key``: passes_to_target or seconds_to_target).

    Returns ``{problem: {method: ratio}}``; ``inf`` where the method's median
    missed the target, or where no method reached it.
    """
    ratios: dict[str, dict] = {}
    for name, problem in results["problems"].items():
        t = {m: _time_to_target(seed_runs(info), key) for m, info in problem["methods"].items()}
        best = min(t.values(), default=math.inf)
        ratios[name] = {
            m: (
                v / best if math.isfinite(v) and best > 0 else (1.0 if v == best == 0 else math.inf)
            )
            for m, v in t.items()
        }
    return ratios


def profile_curve(ratios: dict[str, dict], method: str, taus: np.ndarray) -> np.ndarray:
    """``ρ_method(τ)`` for each ``τ``: the share of problems with ratio <= τ."""
    r = np.array([p.get(method, math.inf) for p in ratios.values()], dtype=float)
    if r.size == 0:
        return np.zeros(len(taus))
    return (r[None, :] <= np.asarray(taus, dtype=float)[:, None]).mean(axis=1)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _write_csv(path: Path, fields: tuple[str, ...] | list[str], rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row[k]) for k in fields})


def write_results(results: dict[str, Any], folder: str | Path) -> list[Path]:
    """Write ``results.json``, ``summary.csv`` and ``profile.csv``; return their paths."""
    folder = Path(folder)
    paths = [folder / "results.json", folder / "summary.csv", folder / "profile.csv"]
    paths[0].write_text(json.dumps(finite(results), allow_nan=False) + "\n")
    _write_csv(paths[1], SUMMARY_FIELDS, summary_rows(results))
    passes = profile_ratios(results, "passes_to_target")
    seconds = profile_ratios(results, "seconds_to_target")
    stated = {(r["problem"], r["method"]): r for r in summary_rows(results)}
    fields = (
        "problem",
        "method",
        "passes_ratio",
        "seconds_ratio",
        "budget_passes",
        "grid",
        "seeds",
    )
    rows = [
        {
            "problem": p,
            "method": m,
            "passes_ratio": passes[p][m],
            "seconds_ratio": seconds[p][m],
            **{k: stated[p, m][k] for k in fields[4:]},
        }
        for p in passes
        for m in passes[p]
    ]
    _write_csv(paths[2], fields, rows)
    return paths
