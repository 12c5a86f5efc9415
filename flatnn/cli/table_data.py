"""``flatnn train --data FILE``: the options and steps of training on a table of your own.

The train command calls these: :func:`add_arguments` adds the options,
:func:`load` reads the table and its splits (as a dict like the built-in data
sets'), :func:`network` fits ``--sizes`` to its features and classes,
:func:`history_writer` opens ``--history``, :func:`model_metadata` is what the
model file stores, and :func:`result_line` reports the test figure. The work is
done by :mod:`flatnn.datasets.prepared`, :mod:`flatnn.io.history` and
:mod:`flatnn.io.metadata`; errors become one-line :class:`CLIError` s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from typing import Any

import numpy as np

from flatnn.cli import common, train_options
from flatnn.cli import parser as types
from flatnn.cli.parser import CLIError
from flatnn.core import metrics
from flatnn.core.network import Network
from flatnn.datasets import prepared, scaling, tables
from flatnn.io import history, metadata

__all__ = [
    "add_arguments",
    "arrays_sha256",
    "history_writer",
    "load",
    "load_checks",
    "model_metadata",
    "network",
    "recording",
    "result_line",
    "settings_of",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--data``, ``--target``, ``--task``, ``--val-split``, ``--val``, ``--test``,
    ``--scale`` and ``--history`` to the train command's parser."""
    group = parser.add_argument_group("your own table (instead of --dataset)")
    group.add_argument(
        "--data",
        metavar="FILE",
        help="train on a table: CSV with a header row, Parquet (pyarrow), NPZ (X, y) or "
        "a NAME_X.npy / NAME_y.npy pair",
    )
    group.add_argument("--target", metavar="COLUMN", help="the target column (default: the last)")
    group.add_argument(
        "--task",
        choices=tables.TASKS,
        help="default: inferred (integers or text: classify; other numbers: regress)",
    )
    split = group.add_mutually_exclusive_group()
    split.add_argument(
        "--val-split",
        type=types.float_in(0.0, 1.0, low_open=True, high_open=True),
        metavar="F",
        help="hold out this share of the rows for validation (stratified by class, seeded)",
    )
    split.add_argument("--val", metavar="FILE", help="validation rows (the same columns)")
    group.add_argument("--test", metavar="FILE", help="test rows (the same columns)")
    group.add_argument(
        "--scale",
        choices=scaling.SCALINGS,
        default="standard",
        help="feature scaling fitted on the training rows, stored in the model (default standard)",
    )
    parser.add_argument(
        "--history",
        metavar="FILE",
        help="write the history as the run goes, one row per epoch or iteration (.csv or .jsonl)",
    )


def load_checks(args: argparse.Namespace) -> None:
    """CLIError for a table option given without ``--data``."""
    for flag in ("target", "task", "val_split", "val", "test"):
        if getattr(args, flag, None) is not None and args.data is None:
            raise CLIError(f"--{flag.replace('_', '-')} applies to --data FILE")


def load(args: argparse.Namespace, dtype: Any) -> dict[str, Any]:
    """The table's splits as the train command's data dict, plus ``"table"`` (TableData).

    Without ``--test``, the test figures are those of the validation rows.
    """
    load_checks(args)
    try:
        data = prepared.load_table_data(
            args.data,
            target=args.target,
            task=args.task,
            val_split=args.val_split,
            val=args.val,
            test=args.test,
            scale=args.scale,
            seed=args.seed,
            dtype=dtype,
        )
    except FileNotFoundError as exc:
        raise CLIError(common.message(exc)) from None
    except (ValueError, ImportError, OSError) as exc:
        raise CLIError(common.message(exc)) from None
    out = {k: getattr(data, k) for k in ("X_train", "y_train", "X_val", "y_val")}
    if args.test is None:  # no test file: report on the validation rows
        out["X_test"], out["y_test"] = data.X_val, data.y_val
    else:
        out["X_test"], out["y_test"] = data.X_test, data.y_test
    limit = getattr(args, "limit", None)
    if limit is not None:  # --limit N: the first N rows of every split, as for --dataset
        out = {k: v[:limit] for k, v in out.items()}
    out["class_names"] = tuple(str(c) for c in data.class_names) or ("",)
    out["table"] = data
    return out


def network(args: argparse.Namespace, cfg: dict[str, Any], data: dict[str, Any]) -> Network:
    """The network for the table: ``--sizes`` checked against it, else the recipe's hidden
    layers between the table's features and its classes (one identity unit to regress)."""
    table: prepared.TableData = data["table"]
    n_in, n_out = data["X_train"].shape[1], table.n_outputs
    if args.sizes is not None:
        sizes = tuple(args.sizes)
        if sizes[0] != n_in or sizes[-1] != n_out:
            what = f"{n_out} classes" if table.train.task == "classify" else "1 output (regress)"
            raise CLIError(
                f"--sizes {common.format_sizes(sizes)} do not fit {args.data}: it has {n_in} "
                f"features and {what}; use {n_in}-...-{n_out}"
            )
    else:
        sizes = (n_in, *tuple(cfg["sizes"])[1:-1], n_out)
    options = table.network_options()
    output = args.output or options.get("output")
    loss = options.get("loss", args.loss)
    return common.network(sizes, cfg["hidden"], output, loss)


def history_writer(args: argparse.Namespace) -> history.HistoryWriter | None:
    """The ``--history`` writer (opened now, so a bad path fails before training), or None."""
    path = getattr(args, "history", None)
    if path is None:
        return None
    if os.path.isdir(path):
        raise CLIError(f"--history {path}: is a folder; name a .csv or .jsonl file")
    others = {"--out": getattr(args, "out", None), "--data": getattr(args, "data", None)}
    for flag, other in others.items():
        if other is not None and os.path.abspath(other) == os.path.abspath(path):
            raise CLIError(f"--history {path} is also {flag}; name another file")
    if os.path.exists(path) and not args.quiet:
        print(f"flatnn: --history {path}: replacing the file that was there", file=sys.stderr)
    try:
        return history.HistoryWriter(path)
    except (OSError, ValueError) as exc:
        raise CLIError(f"--history: {common.message(exc)}") from None


def arrays_sha256(data: dict[str, Any]) -> str:
    """SHA-256 of a built-in data set's training arrays (``X_train`` then ``y_train``, their
    bytes in C order): the same data gives the same digest on every machine."""
    digest = hashlib.sha256()
    for key in ("X_train", "y_train"):
        digest.update(np.ascontiguousarray(data[key]).tobytes())
    return digest.hexdigest()


def recording(writer: history.HistoryWriter | None, on_step: Any) -> Any:
    """``on_step`` that first writes each epoch's or iteration's record to ``writer``."""
    if writer is None:
        return on_step

    def record(intermediate_result: Any) -> Any:
        try:
            writer.write({k: v for k, v in dict(intermediate_result).items() if k != "x"})
        except (OSError, ValueError) as exc:  # a full disk: the run goes on, once told
            print(f"flatnn: --history: {common.message(exc)}", file=sys.stderr)
        return on_step(intermediate_result)

    return record


def settings_of(args: argparse.Namespace, cfg: dict[str, Any]) -> dict[str, Any]:
    """Every setting of the run as ``--print-config`` states them, as JSON data (a dtype by
    its name, tuples as lists): what ``flatnn info --config`` prints back."""
    settings = {}
    for key, value in train_options.settings(args, cfg).items():
        if isinstance(value, np.dtype):
            value = value.name
        elif isinstance(value, tuple):
            value = list(value)
        settings[key] = value
    return settings


def model_metadata(
    args: argparse.Namespace,
    cfg: dict[str, Any],
    data: dict[str, Any],
    res: Any,
    net: Network | None = None,
    params: np.ndarray | None = None,
) -> dict[str, Any]:
    """What the model file stores: the run record, and for ``--data`` the table's description
    and test figures (``test_accuracy``, or ``test_r2`` and ``test_rmse``; ``val_*`` when
    there are no test rows and the validation rows were scored)."""
    table = data.get("table")
    record = metadata.run_metadata(
        settings_of(args, cfg),
        getattr(res, "history", ()) or (),
        seed=args.seed,
        data_sha256=table.train.sha256 if table is not None else arrays_sha256(data),
    )
    if table is not None:
        record.update(table.model_metadata())
        record["test_accuracy"] = None
        record.setdefault("class_names", None)  # regression: no classes
        if net is not None and params is not None:
            record.update(_scores(net, params, data)[1])
    return record


def result_line(
    net: Network,
    params: np.ndarray,
    data: dict[str, Any],
    seconds: float,
    path: str,
    replacing: bool = False,
) -> str:
    """The last line of a table run: its test figure, time and model file."""
    text = _scores(net, params, data)[0]
    note = " (replaced the file that was there)" if replacing else ""
    return f"{text}; trained in {seconds:.1f}s; saved {path}{note}"


def _scores(net: Network, params: np.ndarray, data: dict[str, Any]) -> tuple[str, dict]:
    """The test figure of a table run in words, and as metadata."""
    table: prepared.TableData = data["table"]
    X, y = data["X_test"], data["y_test"]
    # without --test the figures are the validation rows', and stored as val_*
    which, key = ("test", "test") if len(table.y_test) else ("validation", "val")
    if len(y) == 0:
        return "no test or validation rows to score", {}
    if table.train.task == "classify":
        s = metrics.classification_scores(y, net.predict(params, X), table.class_names)
        return (
            f"{which} accuracy {100 * s['accuracy']:.2f}% ({s['m']} rows)",
            {f"{key}_accuracy": s["accuracy"]},
        )
    s = metrics.regression_scores(y[:, 0], net.forward(params, X)[:, 0])
    figures = {f"{key}_{k}": s[k] for k in ("r2", "rmse") if np.isfinite(s[k])}
    return (
        f"{which} R² {s['r2']:.4f}, RMSE {s['rmse']:.4g}, MAE {s['mae']:.4g} ({s['m']} rows)",
        figures,
    )
