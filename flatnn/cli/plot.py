"""``flatnn plot``: learning curves of a run, from its model file or its history file."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any, TextIO

from flatnn.cli import common
from flatnn.cli.parser import CLIError
from flatnn.io import files, history

__all__ = ["add_parser", "run", "title_of", "WRITES_FILE"]

WRITES_FILE = True
"""The product is the plot file."""


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn plot`` and its options to the command line's subparsers."""
    parser = subparsers.add_parser(
        "plot",
        help="draw a run's learning curves from its model or history file",
        description="Draw the learning curves of a run again, from a model file (its stored "
        "history) or a history file written by train --history (.csv or .jsonl). Needs "
        "matplotlib (pip install 'flatnn[plot]'). An existing file is replaced only when "
        "--out names it.",
    )
    parser.add_argument("run", metavar="MODEL|HISTORY", help="model.npz, run.csv or run.jsonl")
    parser.add_argument("--out", metavar="FILE", help="the PNG to write (default: RUN.png)")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def title_of(meta: dict[str, Any], net: Any = None) -> str:
    """The plot's title: data set, network, method and test figure, as far as recorded."""
    settings: dict[str, Any] = meta["settings"] if isinstance(meta.get("settings"), dict) else {}
    parts = [str(meta.get("dataset", settings.get("dataset", "")))]
    if net is not None:
        parts.append("-".join(map(str, net.sizes)) + f" {net.hidden}")
    method = meta.get("method", settings.get("method"))
    if method:
        parts.append(str(method))
    for key, label, scale in (
        ("test_accuracy", "test accuracy", 100),
        ("test_r2", "test R²", 1),
        ("val_accuracy", "validation accuracy", 100),
        ("val_r2", "validation R²", 1),
    ):
        if isinstance(meta.get(key), (int, float)):
            parts.append(f"{label} {scale * meta[key]:.4g}" + ("%" if scale == 100 else ""))
    return " · ".join(p for p in parts if p)


def _load(path: str) -> tuple[list[dict[str, Any]], str]:
    if path.lower().endswith(history.HISTORY_FORMATS):
        try:
            return history.read_history(path), Path(path).stem
        except FileNotFoundError:
            raise CLIError(f"{path}: no such history file") from None
        except (OSError, ValueError) as exc:
            raise CLIError(common.message(exc)) from None
    net, _, meta = common.load_model(path)
    rows = meta.get("history")
    if not rows:
        raise CLIError(f"{path} records no history (trained before flatnn kept it)")
    curves = [{k: _number(v) for k, v in row.items()} for row in rows]
    return curves, title_of(meta, net)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``flatnn plot``; return the exit status."""
    curves, title = _load(args.run)
    if not any("fun" in row for row in curves) or not all(
        "epoch" in row or "nit" in row for row in curves
    ):
        raise CLIError(f"{args.run}: a history needs 'fun' and 'epoch' or 'nit' in every row")
    for row in curves:
        if "epoch" in row:
            row["epoch"] = int(row["epoch"])
        if "nit" in row:
            row["nit"] = int(row["nit"])
    path = args.out or str(Path(args.run).with_suffix(".png"))
    if os.path.exists(path) and args.out is None:
        raise CLIError(f"{path} exists; pass --out {path} to replace it, or --out another name")
    try:
        files.check_writable(path)
    except (OSError, ValueError) as exc:
        raise CLIError(f"--out: {common.message(exc)}") from None
    try:
        from flatnn.reports import plots

        plots.write_learning_curves(path, curves, title=title)
    except ImportError:
        raise CLIError("flatnn plot needs matplotlib (pip install 'flatnn[plot]')") from None
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot write the plot {path}: {common.message(exc)}") from None
    print(f"wrote {path}", file=out)
    return 0
