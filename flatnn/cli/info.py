"""``flatnn info``: what a model file records (network, data, settings, history, versions)."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, TextIO

from flatnn.cli import common
from flatnn.cli.parser import CLIError, add_model_argument
from flatnn.training import recipes

__all__ = ["add_parser", "run", "config_of"]

# Settings an older model file keeps beside its metadata, not under "settings".
_LEGACY_SETTINGS = ("dataset", "method", "seed", "epochs", "lam", "limit", "preset", "final_fit")


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn info`` and its options to the command line's subparsers."""
    parser = subparsers.add_parser(
        "info",
        help="what a model file records: network, data, settings, history, versions",
        description="Show what a model file records: the network, the data it was trained on "
        "(file, SHA-256, features, target, classes, scaling), every resolved setting, the "
        "history, the test figure and the flatnn/NumPy/SciPy versions.",
    )
    add_model_argument(parser)
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="everything, as one JSON document")
    form.add_argument(
        "--config",
        action="store_true",
        help="the run's resolved settings as TOML (for flatnn train --config FILE)",
    )


def config_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """The run's settings: ``settings`` when the file has them, else the legacy fields."""
    settings = metadata.get("settings")
    if isinstance(settings, dict):
        return settings
    return {k: metadata[k] for k in _LEGACY_SETTINGS if metadata.get(k) is not None}


def _history_line(history: list[dict[str, Any]]) -> str:
    def number(v: Any) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    key = "val_cost" if "val_cost" in history[0] else "fun"
    values = [number(h.get(key)) for h in history]
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    unit = "epochs" if "epoch" in history[0] else "iterations"
    text = f"{len(history)} {unit}"
    if finite:
        best, i = min(finite)
        where = history[i].get("epoch", history[i].get("nit", i))
        where = where + 1 if "epoch" in history[i] else where
        text += f"; best {key} {best:.6g} at {unit[:-1]} {where}; last {values[-1]:.6g}"
    return text


def _lines(path: str, net: Any, params: Any, meta: dict[str, Any]) -> list[str]:
    lines = [
        f"model      {path}",
        f"network    {net!r}",
        f"parameters {net.n_params} ({params.dtype})",
    ]
    if "dataset" in meta:
        sha = meta.get("data_sha256")
        lines.append(f"data       {meta['dataset']}" + (f" (SHA-256 {sha})" if sha else ""))
    if "features" in meta:
        shown = ", ".join(meta["features"][:8]) + (", ..." if len(meta["features"]) > 8 else "")
        lines.append(f"features   {len(meta['features'])}: {shown}")
    if "target" in meta:
        lines.append(f"target     {meta['target']} ({meta.get('task', 'classify')})")
    if isinstance(meta.get("class_names"), list):
        names = meta["class_names"]
        shown = ", ".join(map(str, names[:12])) + (", ..." if len(names) > 12 else "")
        lines.append(f"classes    {len(names)}: {shown}")
    if isinstance(meta.get("scaler"), dict):
        lines.append(f"scaling    {meta['scaler'].get('kind')} (fitted on the training rows)")
    for key in ("test_accuracy", "test_r2", "test_rmse", "val_accuracy", "val_r2", "val_rmse"):
        if isinstance(meta.get(key), (int, float)):
            lines.append(f"{key.replace('_', ' '):<10} {meta[key]:.6g}")
    settings = config_of(meta)
    if settings:
        lines.append("settings   " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    if isinstance(meta.get("history"), list) and meta["history"]:
        lines.append(f"history    {_history_line(meta['history'])}")
    if isinstance(meta.get("versions"), dict):
        lines.append("versions   " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    return lines


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``flatnn info``; return the exit status."""
    net, params, meta = common.load_model(args.model)
    if args.json:
        doc = {
            "model": args.model,
            "network": net.to_dict(),
            "n_params": net.n_params,
            "dtype": str(params.dtype),
            "metadata": meta,
        }
        print(json.dumps(doc, indent=2), file=out)
    elif args.config:
        settings = config_of(meta)
        if not settings:
            raise CLIError(f"{args.model} records no settings")
        header = f"the settings of {args.model}: `flatnn train --config FILE` runs them again"
        try:
            print(recipes.to_toml(settings, header), end="", file=out)
        except (TypeError, ValueError) as exc:
            raise CLIError(f"{args.model}: {common.message(exc)}") from None
    else:
        print("\n".join(_lines(args.model, net, params, meta)), file=out)
    return 0
