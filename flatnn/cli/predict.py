"""``flatnn predict``: classify grayscale images with a saved model."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

import numpy as np

from flatnn.base import checks
from flatnn.cli import common
from flatnn.cli.parser import CLIError
from flatnn.datasets import images

__all__ = ["add_parser", "run", "INTERMIXED"]

INTERMIXED = True
"""Options may stand between the images: ``predict m.npz a.pgm --invert b.pgm``."""


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn predict`` and its options to the command line's subparsers."""
    parser = subparsers.add_parser(
        "predict",
        help="classify grayscale images of the model's input size",
        description="Classify grayscale images of the model's input size (28x28 for MNIST). "
        "PGM (P2/P5) is read directly; PNG and other formats need Pillow "
        "(pip install 'flatnn[images]'). MNIST convention: a white digit on a "
        "black background. Each image whose border is mostly light (dark ink on "
        "white paper) is inverted, and its line says so; --invert or --no-invert "
        "decide for every image instead. An unreadable image is reported and "
        "the others are still classified (exit status 2 at the end).",
    )
    parser.add_argument("model", metavar="MODEL", help="a model file written by flatnn train")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
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


def _read(path: str, n_pixels: int) -> np.ndarray:
    try:
        return images.read_image(path, n_pixels=n_pixels)
    except (ValueError, ImportError) as exc:
        raise CLIError(common.message(exc)) from None
    except FileNotFoundError:
        raise CLIError(f"{path}: no such image file") from None
    except OSError as exc:
        raise CLIError(f"{path}: cannot read: {common.message(exc)}") from None


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``flatnn predict``; return the exit status (2 when an image could not be read)."""
    net, params, meta = common.load_model(args.model)
    n_in = net.sizes[0]
    names = meta.get("class_names")
    k = net.sizes[-1]
    if not (isinstance(names, list) and len(names) == max(k, 2)):
        names = [str(i) for i in range(max(k, 2))]
    good, rows, notes, failed = [], [], [], 0
    for path in args.images:
        try:
            img = _read(path, n_in)
        except CLIError as exc:  # report it and go on with the other images
            print(f"flatnn: error: {exc}", file=sys.stderr, flush=True)
            failed += 1
            continue
        invert = args.polarity == "invert"
        note = ""
        if args.polarity == "auto" and images.light_background(img):
            invert, note = True, " [inverted: light background]"
        good.append(path)
        rows.append(1.0 - img.reshape(-1) if invert else img.reshape(-1))
        notes.append(note)
    if rows:
        X = np.stack(rows).astype(params.dtype, copy=False)
        try:
            proba = net.forward(params, X)
            labels = net.predict(params, X)
        except checks.NotFiniteError as exc:
            raise common.unusable_model(args.model, params, exc) from None
        if k == 1:
            p = np.where(labels == 1, proba[:, 0], 1.0 - proba[:, 0])
        else:
            p = proba[np.arange(len(labels)), labels]
        for path, label, prob, note in zip(good, labels, p, notes):
            print(f"{path}: {names[label]} ({prob:.3f}){note}", file=out)
    return 2 if failed else 0
