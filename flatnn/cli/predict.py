"""``flatnn predict``: classify images, or predict the rows of tables, with a saved model."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import numpy as np

from flatnn.base import checks
from flatnn.cli import common, rows
from flatnn.cli.parser import CLIError, add_model_argument

__all__ = ["add_parser", "run", "INTERMIXED"]

INTERMIXED = True
"""Options may stand between the images: ``predict m.npz a.pgm --invert b.pgm``."""


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn predict`` and its options to the command line's subparsers."""
    parser = subparsers.add_parser(
        "predict",
        help="classify images, or predict the rows of tables",
        description="Classify images with a model trained on images, or predict every row "
        "of table files (CSV, Parquet, NPZ) with a model trained by train --data: the "
        "model's scaling is applied, its class names printed. Images: PGM (P2/P5) is read "
        "directly; PNG, JPEG and other formats need Pillow (pip install 'flatnn[images]'); "
        "colour is converted to grey; for a 28x28 model another size is resized and centred "
        "as MNIST's digits were (20x20 box, centre of mass at the centre; the line says "
        "so); other models take their own image size only. MNIST convention: a white "
        "digit on a black background. Each image whose border is mostly light (dark ink on "
        "white paper) is inverted, and its line says so; --invert or --no-invert "
        "decide for every image instead. An unreadable image is reported and "
        "the others are still classified (exit status 2 at the end).",
    )
    add_model_argument(parser)
    parser.add_argument("images", metavar="INPUT", nargs="+", help="image or table files")
    rows.add_predict_options(parser)
    polarity = parser.add_mutually_exclusive_group()
    polarity.add_argument(
        "--invert",
        dest="polarity",
        action="store_const",
        const="invert",
        default="auto",
        help="invert the gray levels of every image (dark digits on a light "
        "background); may stand anywhere among the images",
    )
    polarity.add_argument(
        "--no-invert",
        dest="polarity",
        action="store_const",
        const="keep",
        help="never invert, even images with a light border",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``flatnn predict``; return the exit status (2 when an image could not be read)."""
    net, params, meta = common.load_model(args.model)
    if rows.is_table_model(meta):
        return rows.predict_tables(args, out, net, params, meta)
    if args.out is not None or args.proba:
        raise CLIError("--out and --proba apply to a model trained on a table (train --data)")
    names = rows.class_names(net, meta)
    good, inputs, notes, failed = [], [], [], 0
    for path in args.images:
        try:
            row, note = rows.image_input(path, net, meta, args.polarity)
        except CLIError as exc:  # report it and go on with the other images
            rows.report_unreadable(exc)
            failed += 1
            continue
        good.append(path)
        inputs.append(row)
        notes.append(note)
    if inputs:
        X = np.stack(inputs).astype(params.dtype, copy=False)
        try:
            proba = net.forward(params, X)
            labels = net.predict(params, X)
        except checks.NotFiniteError as exc:
            raise common.unusable_model(args.model, params, exc) from None
        if net.sizes[-1] == 1:
            proba = np.column_stack([1.0 - proba[:, 0], proba[:, 0]])
        for path, label, p, note in zip(good, labels, proba, notes):
            if args.top_k:
                print(f"{path}: {rows.top_k(p, names, args.top_k)}{note}", file=out)
            else:
                print(f"{path}: {names[label]} ({p[label]:.3f}){note}", file=out)
    return 2 if failed else 0
