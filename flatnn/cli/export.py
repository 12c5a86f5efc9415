"""``flatnn export``: a model file as ONNX or safetensors, for use outside flatnn."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, TextIO

from flatnn.cli import common
from flatnn.cli.parser import CLIError, add_model_argument
from flatnn.io import export, files

__all__ = ["add_parser", "run", "FORMATS", "WRITES_FILE"]

FORMATS = {"onnx": ".onnx", "safetensors": ".safetensors"}
"""The export formats and their file extensions."""

WRITES_FILE = True
"""The product is the exported file."""

_CARRIED = ("class_names", "features", "target", "task", "scaler", "dataset")


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn export`` and its options to the command line's subparsers."""
    parser = subparsers.add_parser(
        "export",
        help="write a model as ONNX or safetensors",
        description="Write a model as ONNX (pip install 'flatnn[onnx]'; input X, outputs "
        "'output' and 'label'; a table model's scaling is part of the graph) or safetensors "
        "(pip install 'flatnn[safetensors]'; layer{l}.weight (out, in) and layer{l}.bias, "
        "the spec and class names in its metadata). An existing file is replaced only when "
        "--out names it.",
    )
    add_model_argument(parser)
    parser.add_argument("--to", required=True, choices=tuple(FORMATS), help="the format")
    parser.add_argument(
        "--out", metavar="FILE", help="the file to write (default: MODEL with the format's suffix)"
    )


def _out_path(args: argparse.Namespace) -> tuple[str, bool]:
    path = args.out or str(Path(args.model).with_suffix(FORMATS[args.to]))
    exists = os.path.exists(path)
    if exists and args.out is None:
        raise CLIError(f"{path} exists; pass --out {path} to replace it, or --out another name")
    if os.path.abspath(path) == os.path.abspath(args.model):
        raise CLIError(f"--out {path} is the model file itself")
    try:
        files.check_writable(path)
    except (OSError, ValueError) as exc:
        raise CLIError(f"--out: {common.message(exc)}") from None
    return path, exists


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``flatnn export``; return the exit status."""
    net, params, meta = common.load_model(args.model)
    path, replacing = _out_path(args)
    try:
        if args.to == "onnx":
            export.to_onnx(net, params, path, scaler=meta.get("scaler"))
        else:
            carried = {k: meta[k] for k in _CARRIED if k in meta}
            export.to_safetensors(net, params, path, **carried)
    except ImportError as exc:
        raise CLIError(common.message(exc)) from None
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot export to {path}: {common.message(exc)}") from None
    note = " (replaced the file that was there)" if replacing else ""
    print(f"wrote {path} ({args.to}){note}", file=out)
    return 0
