"""The table and image paths of ``flatnn predict`` and ``flatnn evaluate``.

A model trained on a table (``flatnn train --data``) records its feature
columns, scaler and class names; :func:`predict_tables` and
:func:`evaluate_table` read new rows for it through
:func:`flatnn.datasets.prepared.rows_for_model`. :func:`image_input` turns any
image into an image model's input row (colour to grey, other sizes fitted as
MNIST's digits, a wrong shape refused). Class names, not indices, are printed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from typing import Any, TextIO

import numpy as np

from flatnn.base import checks
from flatnn.cli import common
from flatnn.cli import parser as types
from flatnn.cli.parser import CLIError
from flatnn.core import metrics
from flatnn.core.network import Network
from flatnn.datasets import images, prepared
from flatnn.io import files

__all__ = [
    "add_evaluate_options",
    "add_predict_options",
    "class_names",
    "evaluate_table",
    "image_input",
    "is_table_model",
    "predict_tables",
    "report_unreadable",
    "scores_json",
    "top_k",
]


def add_predict_options(parser: argparse.ArgumentParser) -> None:
    """``--out FILE``, ``--proba`` and ``--top-k K`` of ``flatnn predict``."""
    parser.add_argument(
        "--out", metavar="FILE", help="write the predictions as CSV to FILE (tables)"
    )
    parser.add_argument(
        "--proba", action="store_true", help="print every class's probability (tables)"
    )
    parser.add_argument(
        "--top-k",
        type=types.positive_int,
        metavar="K",
        help="the K most probable classes of each input",
    )


def add_evaluate_options(parser: argparse.ArgumentParser) -> None:
    """``--data FILE`` and ``--json`` of ``flatnn evaluate``."""
    parser.add_argument(
        "--data", metavar="FILE", help="a table with the model's columns and its target"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="the scores (accuracy, per-class precision/recall/F1, confusion matrix; R², MAE, "
        "RMSE) as one JSON document",
    )


def is_table_model(meta: dict[str, Any]) -> bool:
    """True for a model trained on a table (its file names its feature columns)."""
    return isinstance(meta.get("features"), list)


def class_names(net: Network, meta: dict[str, Any]) -> list[str]:
    """The model's class names as text: those of ``flatnn train``, or of a saved
    ``flatnn.sklearn.MLPClassifier`` (indices only for a file that records none)."""
    names = meta.get("class_names")
    estimator = meta.get("flatnn.sklearn")  # a file saved by flatnn.sklearn's MLPClassifier
    if names is None and isinstance(estimator, dict):
        names = estimator.get("classes")
    k = max(net.sizes[-1], 2)
    if isinstance(names, list) and len(names) == k:
        return [str(n) for n in names]
    return [str(i) for i in range(k)]


def _probabilities(net: Network, params: np.ndarray, X: np.ndarray, path: str) -> np.ndarray:
    try:
        out = net.forward(params, X)
    except checks.NotFiniteError as exc:
        raise common.unusable_model(path, params, exc) from None
    if net.sizes[-1] == 1:
        return np.column_stack([1.0 - out[:, 0], out[:, 0]])
    return out


def top_k(proba: np.ndarray, names: list[str], k: int) -> str:
    """``'3 (0.912), 8 (0.051)'``: the ``k`` most probable classes of one row."""
    order = np.argsort(-proba, kind="stable")[:k]
    return ", ".join(f"{names[c]} ({proba[c]:.3f})" for c in order)


def _read_rows(path: str, meta: dict[str, Any], dtype: Any, need_target: bool) -> Any:
    try:
        return prepared.rows_for_model(path, meta, need_target=need_target, dtype=dtype)
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except (ValueError, ImportError, OSError) as exc:
        raise CLIError(common.message(exc)) from None


def _prediction_table(
    args: argparse.Namespace, net: Network, params: np.ndarray, meta: dict[str, Any]
) -> tuple[list[str], list[list[Any]]]:
    header, rows = ["file", "row", "prediction"], []
    names = class_names(net, meta)
    classify = meta.get("task", "classify") == "classify"
    if classify and args.proba:
        header += [f"p({n})" for n in names]
    if classify and args.top_k:
        header.append(f"top {args.top_k}")
    for path in args.images:
        X, _, _ = _read_rows(path, meta, params.dtype, need_target=False)
        if not classify:
            values = net.forward(params, X)[:, 0]
            rows += [[path, i + 1, f"{v:.6g}"] for i, v in enumerate(values)]
            continue
        proba = _probabilities(net, params, X, args.model)
        for i, p in enumerate(proba):
            row: list[Any] = [path, i + 1, names[int(np.argmax(p))]]
            if args.proba:
                row += [f"{v:.6f}" for v in p]
            if args.top_k:
                row.append(top_k(p, names, args.top_k))
            rows.append(row)
    return header, rows


def predict_tables(
    args: argparse.Namespace, out: TextIO, net: Network, params: np.ndarray, meta: dict[str, Any]
) -> int:
    """Predict every row of the table files ``args.images``; CSV on stdout or in ``--out``."""
    if args.out is not None:
        try:
            files.check_writable(args.out)
        except (OSError, ValueError) as exc:
            raise CLIError(f"--out: {common.message(exc)}") from None
    header, rows = _prediction_table(args, net, params, meta)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if args.out is None:
        print(text.getvalue(), end="", file=out)
        return 0
    replacing = os.path.exists(args.out)
    try:
        files.write_bytes_atomically(args.out, text.getvalue().encode("utf-8"))
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot write {args.out}: {common.message(exc)}") from None
    note = " (replaced the file that was there)" if replacing else ""
    print(f"wrote {len(rows)} predictions to {args.out}{note}", file=out)
    return 0


def image_input(
    path: str, net: Network, meta: dict[str, Any], polarity: str
) -> tuple[np.ndarray, str]:
    """An image file as the model's input row, and a note for its line of output.

    Colour is converted to grey; a light background is inverted (``polarity``
    ``"auto"``) or not (``"keep"``), or always (``"invert"``); another size is
    fitted as MNIST's digits were, for a 28 x 28 model; other shapes are refused.
    A model whose inputs are no known image shape takes grey images of exactly
    its number of pixels.
    """
    if path.lower().endswith((".csv", ".parquet", ".pq", ".npz", ".npy")):
        raise CLIError(
            f"{path}: a table, but the model was not trained on "
            f"a table (train --data FILE records its columns)"
        )
    shape = images.model_image_shape(net.sizes[0], meta.get("dataset"))
    try:
        # a model of no known image shape (xor's 2 inputs): grey images of its pixel count
        img = (
            images.read_any_image(path)
            if shape is not None
            else images.read_image(path, n_pixels=net.sizes[0])
        )
    except (ValueError, ImportError) as exc:
        raise CLIError(common.message(exc)) from None
    except FileNotFoundError:
        raise CLIError(f"{path}: no such image file") from None
    except OSError as exc:
        raise CLIError(f"{path}: cannot read: {common.message(exc)}") from None
    notes = []
    invert = polarity == "invert"
    if polarity == "auto" and images.light_background(img):
        invert = True
        notes.append("inverted: light background")
    if invert:
        img = 1.0 - img
    if shape is None:
        return img.reshape(-1), "".join(f" [{n}]" for n in notes)
    try:
        row, resized = images.image_row(img, shape, name=path)
    except ValueError as exc:
        raise CLIError(common.message(exc)) from None
    if resized:
        notes.append(f"resized from {img.shape[0]}x{img.shape[1]} and centred")
    return row, "".join(f" [{n}]" for n in notes)


def _print_scores(s: dict[str, Any], out: TextIO, header: str) -> None:
    print(header, file=out)
    if s["task"] == "regress":
        print(f"R² {s['r2']:.6g}  MAE {s['mae']:.6g}  RMSE {s['rmse']:.6g}", file=out)
        return
    print(f"accuracy {100 * s['accuracy']:.2f}%", file=out)
    from flatnn.cli.evaluate import table

    rows = [
        (c["class"], c["support"], f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}")
        for c in s["classes"]
    ]
    print("\n" + table(rows, ("class", "rows", "precision", "recall", "F1")), file=out)
    short = [str(c["class"])[:6] for c in s["classes"]]
    print("\nconfusion matrix (rows: true class, columns: predicted)", file=out)
    confusion = [(short[i], *r) for i, r in enumerate(s["confusion"])]
    print(table(confusion, ("", *short)), file=out)


def scores_json(s: dict[str, Any], **extra: Any) -> str:
    """Scores (:mod:`flatnn.core.metrics`) and ``extra`` fields as one JSON document
    (an undefined figure, such as R² of a constant target, as null)."""
    doc = dict(s, **extra)
    doc = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in doc.items()}
    return json.dumps(doc, indent=2)


def evaluate_table(
    args: argparse.Namespace, out: TextIO, net: Network, params: np.ndarray, meta: dict[str, Any]
) -> int:
    """Score a table-trained model on ``args.data`` (its target column required)."""
    if not is_table_model(meta):
        raise CLIError(f"{args.model} was not trained on a table; use --dataset")
    X, y, _ = _read_rows(args.data, meta, params.dtype, need_target=True)
    try:
        if meta.get("task") == "regress":
            s = metrics.regression_scores(y[:, 0], net.forward(params, X)[:, 0])
        else:
            names = list(meta.get("class_names") or [])
            s = metrics.classification_scores(y, net.predict(params, X), names)
    except checks.NotFiniteError as exc:
        raise common.unusable_model(args.model, params, exc) from None
    if args.json:
        print(scores_json(s, model=args.model, data=args.data), file=out)
    else:
        _print_scores(s, out, f"{args.model}: {net!r} on {args.data} ({s['m']} rows)")
    return 0


def report_unreadable(exc: CLIError) -> None:
    """One stderr line for an input that could not be read (the others still run)."""
    print(f"flatnn: error: {exc}", file=sys.stderr, flush=True)
