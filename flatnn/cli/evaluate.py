"""``flatnn evaluate``: accuracy, per-class accuracy and confusion matrix of a saved model."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from flatnn.base import checks
from flatnn.cli import common
from flatnn.cli import parser as types
from flatnn.cli import rows as table_rows
from flatnn.cli.parser import CLIError
from flatnn.core import metrics

__all__ = ["add_parser", "run", "table"]


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn evaluate`` and its options to the command line's subparsers."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a saved model on a data set or a table (accuracy, per-class scores, "
        "confusion matrix; R², MAE, RMSE for regression)",
        description="Evaluate a saved model on the test split of its data set (taken from "
        "the model file; --dataset overrides), or a model trained on a table on the rows of "
        "--data FILE: accuracy, per-class precision, recall and F1 and the confusion "
        "matrix; R², MAE and RMSE for regression (--json: as JSON, for either).",
    )
    table_rows.add_evaluate_options(parser)
    types.add_model_data_options(parser, split="test")
    types.add_data_options(parser)
    types.add_threads_option(parser)


def table(rows: list[tuple[Any, ...]], header: tuple[Any, ...]) -> str:
    """Rows under a header, each column right-aligned to its widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join(fmt.format(*map(str, r)) for r in [header, *rows])


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``flatnn evaluate``; return the exit status."""
    net, params, meta = common.load_model(args.model)
    if args.data is not None or table_rows.is_table_model(meta):
        if args.data is None:
            raise CLIError(f"{args.model} was trained on a table; pass --data FILE")
        return table_rows.evaluate_table(args, out, net, params, meta)
    dataset, data = common.model_data(args, net, params.dtype, meta)
    X, y = data["X_" + args.split], data["y_" + args.split]
    names = list(data["class_names"])
    k = len(names)
    try:
        predicted = net.predict(params, X)
    except checks.NotFiniteError as exc:
        raise common.unusable_model(args.model, params, exc) from None
    if args.json:
        found = metrics.classification_scores(y, predicted, names)
        text = table_rows.scores_json(found, model=args.model, data=f"{dataset} {args.split}")
        print(text, file=out)
        return 0
    report = metrics.evaluation_report(y, predicted, names)
    confusion, support, per_class = report.confusion, report.support, report.class_accuracy
    print(f"{args.model}: {net!r} on {dataset} {args.split} ({len(y)} samples)", file=out)
    print(f"accuracy {100 * report.accuracy:.2f}%", file=out)
    print("\nper-class accuracy", file=out)
    rows = [
        (names[c], support[c], f"{100 * per_class[c]:.2f}%" if support[c] else "-")
        for c in range(k)
    ]
    print(table(rows, ("class", "samples", "accuracy")), file=out)
    short = [n if len(n) <= 6 else n[:5] + "." for n in names]
    print("\nconfusion matrix (rows: true class, columns: predicted)", file=out)
    print(table([(short[c], *confusion[c]) for c in range(k)], ("", *short)), file=out)
    return 0
