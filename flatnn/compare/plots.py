"""Plots of a comparison (matplotlib: ``pip install flatnn[plot]``).

Per problem: the cost ``J`` and the validation accuracy against passes and
against seconds, one line per method (the median over seeds) with a band
between the seeds' quartiles; the hyperparameter sensitivity (final
validation accuracy of each grid point, seed 0). Across problems: the
Dolan–Moré performance profile of passes and of seconds to target. Every
figure's title states the budget, the grid and the seeds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from flatnn.compare.results import profile_curve, profile_ratios, seed_runs

__all__ = ["have_matplotlib", "write_plots"]


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(runs: list[dict], rows: str, x: str, y: str) -> tuple[np.ndarray, ...] | None:
    curves = [
        (np.array([c[x] for c in r[rows]]), np.array([c[y] for c in r[rows]], dtype=float))
        for r in runs
        if r[rows]
    ]
    curves = [(a, b) for a, b in curves if np.isfinite(b).any()]
    if not curves:
        return None
    hi = max(a[-1] for a, _ in curves)  # a seed that ended early holds its last value
    lo = min(a[0] for a, _ in curves)
    grid = np.linspace(lo, hi, 100) if hi > lo else np.array([lo])
    ys = np.array([np.interp(grid, a, np.where(np.isfinite(b), b, np.nan)) for a, b in curves])
    q1, med, q3 = np.nanpercentile(ys, [25, 50, 75], axis=0)
    return grid, med, q1, q3


def _styles(plt: Any, results: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """One colour and line style per method, the same in every figure (rules dashed)."""
    # tab10's ten distinct colours first, then tab20's lighter ones
    tab10, tab20 = plt.get_cmap("tab10"), plt.get_cmap("tab20")
    colors = [tab10(i) for i in range(10)] + [tab20(2 * i + 1) for i in range(10)]
    styles: dict[str, tuple[Any, str]] = {}
    for problem in results["problems"].values():
        for method, info in problem["methods"].items():
            if method not in styles:
                dash = "--" if info["kind"] == "rule" else "-"
                styles[method] = (colors[len(styles) % 20], dash)
    return styles


def _statement(problem: dict[str, Any]) -> str:
    methods = problem["methods"].values()
    seeds = max((info["seeds"] for info in methods), default=0)
    budget = next((info["budget_passes"] for info in methods), 0)
    grids = {len(info["grid"]) for info in methods if info["grid"]}
    grid = f"{max(grids)}-point learning-rate grid" if grids else "no grid"
    return f"budget {budget:g} passes, {grid} (seed 0), best point x {seeds} seeds"


def _curves(plt: Any, name: str, problem: dict[str, Any], styles: dict, path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    panels = [
        (axes[0, 0], "history", "passes", "cost", "training cost J"),
        (axes[0, 1], "history", "seconds", "cost", "training cost J"),
        (axes[1, 0], "checks", "passes", "val_accuracy", "validation accuracy"),
        (axes[1, 1], "checks", "seconds", "val_accuracy", "validation accuracy"),
    ]
    for method, info in problem["methods"].items():
        runs = seed_runs(info)
        color, style = styles[method]
        for ax, rows, x, y, _ in panels:
            band = _band(runs, rows, x, y)
            if band is None:
                continue
            grid, med, q1, q3 = band
            ax.plot(grid, med, style, color=color, label=method)
            ax.fill_between(grid, q1, q3, color=color, alpha=0.2)
    for ax, rows, x, _, label in panels:
        ax.set(xlabel=f"{x} (an SGD epoch = 1 pass)" if x == "passes" else x, ylabel=label)
        if rows == "history":
            ax.set_yscale("log")
        else:
            ax.axhline(problem["target"], color="grey", lw=0.8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{name}: {_statement(problem)}; lines: median, bands: quartiles over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _sensitivity(plt: Any, name: str, problem: dict[str, Any], styles: dict, path: Path) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = False
    for method, info in problem["methods"].items():
        tuning = sorted(
            (r for r in info["runs"] if r["seed"] == 0 and r["learning_rate"] is not None),
            key=lambda r: r["learning_rate"],
        )
        if len(tuning) > 1:
            lrs = [r["learning_rate"] for r in tuning]
            acc = [r["final"]["val_accuracy"] for r in tuning]
            color, style = styles[method]
            y = [np.nan if a is None else a for a in acc]
            ax.plot(lrs, y, "o" + style, color=color, label=method)
            drawn = True
    if drawn:
        ax.set(xscale="log", xlabel="learning rate", ylabel="final validation accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"{name}: sensitivity, {_statement(problem)}", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=80)
    plt.close(fig)
    return drawn


def _profile(plt: Any, results: dict[str, Any], styles: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, key in zip(axes, ("passes_to_target", "seconds_to_target")):
        ratios = profile_ratios(results, key)
        methods = [m for m in styles if any(m in p for p in ratios.values())]
        finite = [v for p in ratios.values() for v in p.values() if np.isfinite(v)]
        top = max(2.0, 1.1 * max(finite, default=2.0))
        taus = np.geomspace(1.0, top, 200)
        for method in methods:
            color, style = styles[method]
            rho = profile_curve(ratios, method, taus)
            ax.step(taus, rho, style, where="post", color=color, label=method)
        ax.set(
            xscale="log",
            xlabel=f"τ ({key.replace('_', ' ')} / best method's)",
            ylabel="share of problems within τ",
            ylim=(-0.02, 1.02),
        )
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    n = len(results["problems"])
    stated = "; ".join(f"{name}: {_statement(p)}" for name, p in results["problems"].items())
    fig.suptitle(
        f"Performance profile (Dolan & Moré) over {n} problem(s), median over seeds\n{stated}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_plots(results: dict[str, Any], folder: str | Path) -> list[Path]:
    """Write the PNG files into ``folder``; return their paths (none without matplotlib)."""
    if not have_matplotlib():
        return []
    plt = _pyplot()
    folder = Path(folder)
    styles = _styles(plt, results)
    paths = []
    for name, problem in results["problems"].items():
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        path = folder / f"curves_{name}.png"
        _curves(plt, name, problem, styles, path)
        paths.append(path)
        path = folder / f"sensitivity_{name}.png"
        if _sensitivity(plt, name, problem, styles, path):
            paths.append(path)
    path = folder / "profile.png"
    _profile(plt, results, styles, path)
    paths.append(path)
    return paths
