"""What several commands share: library calls whose errors become one-line CLIErrors.

Loading a data set or a model file, building a network from flags, checking that
a network fits its data and that a run fits in memory: each calls the library
and turns a ``ValueError``, ``OSError`` or ``ImportError`` into the words of
the command line (``--data-dir``, ``pip install 'flatnn[...]'``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from flatnn import datasets
from flatnn.base import memory
from flatnn.cli.parser import DATASETS, CLIError
from flatnn.core.network import Network
from flatnn.io import models

__all__ = [
    "message",
    "format_sizes",
    "load_data",
    "check_fit",
    "network",
    "load_model",
    "model_data",
    "check_memory",
    "unusable_model",
    "cuda_namespace",
]


def message(exc: BaseException) -> str:
    """The whole message of an exception (it may span lines), or its type's name."""
    text = str(exc).strip()
    return text or type(exc).__name__


def format_sizes(sizes: tuple[int, ...]) -> str:
    """``(784, 30, 10)`` as ``'784-30-10'``."""
    return "-".join(map(str, sizes))


def _data_path(data_dir: str | None) -> Path | None:
    # The library takes DIR or DIR/<dataset> alike, as it does for $FLATNN_DATA.
    if data_dir is None:
        return None
    if not Path(data_dir).is_dir():
        raise CLIError(f"--data-dir {data_dir}: no such folder")
    return Path(data_dir)


def _check_captcha_memory(train_captchas: int, dtype: Any) -> None:
    # 4 character cells of 260 pixels a captcha, and about as much again while rendering
    need = 2 * train_captchas * 4 * 260 * np.dtype(dtype).itemsize
    _check_fits(
        need,
        lambda available: (
            f"--train-captchas {train_captchas} would take about "
            f"{memory.format_bytes(need)} of memory, and {available} is available; "
            "render fewer captchas"
        ),
    )


def _check_fits(need: int, message: Callable[[str], str]) -> None:
    # the one test of every memory check; ``message`` is given the free memory, formatted
    available = memory.available_memory()
    if available is not None and need > available:
        raise CLIError(message(memory.format_bytes(available)))


def load_data(
    name: str,
    *,
    data_dir: str | None = None,
    download: bool = True,
    dtype: Any = np.float64,
    limit: int | None = None,
    train: bool = True,
    train_captchas: int | None = None,
) -> dict[str, Any]:
    """:func:`flatnn.datasets.load` as a dict of splits, its errors as one-line CLIErrors.

    Returns
    -------
    dict
        ``X_train, y_train, X_val, y_val, X_test, y_test`` and ``class_names``.
    """
    if name not in DATASETS:
        raise CLIError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if data_dir is not None and name not in ("mnist", "fashion-mnist"):
        raise CLIError(
            f"--data-dir applies to mnist and fashion-mnist; {name} is generated, "
            f"not read from files"
        )
    if train_captchas:
        _check_captcha_memory(train_captchas, dtype)
    try:
        splits = datasets.load(
            name,
            path=_data_path(data_dir),
            download=download,
            dtype=dtype,
            limit=limit,
            train=train,
            train_captchas=train_captchas,
        )
    except FileNotFoundError as exc:
        if data_dir is not None:  # the library's words for what the command line calls --data-dir
            text = message(exc).replace("path argument:", "--data-dir:")
        else:
            text = (
                message(exc) + f"\nOn the command line, pass that folder (DIR or "
                f"DIR/{name}/) as --data-dir DIR."
            )
        raise CLIError(text) from None
    except ImportError as exc:
        text = message(exc)
        if "pip install" not in text:  # the library's message already has the hint
            text += f" (pip install 'flatnn[{name}]')"
        raise CLIError(f"dataset {name} needs an optional package: {text}") from None
    except (ValueError, OSError) as exc:
        raise CLIError(f"cannot load {name}: {message(exc)}") from None
    data = {
        k: getattr(splits, k) for k in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
    }
    data["class_names"] = tuple(splits.class_names)
    return data


def check_fit(net: Network, data: dict[str, Any], dataset: str) -> None:
    """CLIError unless the network's first and last sizes fit the data's features and classes."""
    n_features = data["X_train"].shape[1]
    n_classes = len(data["class_names"])
    if net.sizes[0] != n_features:
        raise CLIError(
            f"sizes {format_sizes(net.sizes)} do not fit {dataset}: the first size "
            f"must be {n_features} (its features per sample), got {net.sizes[0]}"
        )
    if net.sizes[-1] != n_classes and not (net.sizes[-1] == 1 and n_classes == 2):
        raise CLIError(
            f"sizes {format_sizes(net.sizes)} do not fit {dataset}: the last size "
            f"must be {n_classes} (its classes), got {net.sizes[-1]}"
        )


def network(sizes: tuple[int, ...], hidden: str | None, output: str | None, loss: str) -> Network:
    """The :class:`Network` of ``--sizes``, ``--hidden`` (one, or one per layer with commas),
    ``--output`` and ``--loss``."""
    hidden_arg: Any = hidden
    if hidden is not None and "," in hidden:
        hidden_arg = tuple(h.strip() for h in hidden.split(","))
    kwargs: dict[str, Any] = {
        "hidden": hidden_arg if hidden_arg is not None else "sigmoid",
        "loss": loss,
    }
    if output is not None:
        kwargs["output"] = output
    try:
        return Network(sizes, **kwargs)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"bad network: {message(exc)}") from None


def load_model(path: str) -> tuple[Network, np.ndarray, dict[str, Any]]:
    """:func:`flatnn.load`, its errors as one-line CLIErrors."""
    try:
        return models.load(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(message(exc)) from None
    except (OSError, MemoryError) as exc:
        raise CLIError(f"cannot read model {path!r}: {message(exc)}") from None


def model_data(
    args: argparse.Namespace, net: Network, dtype: Any, meta: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The data set a saved model is applied to, loaded as :func:`load_data`'s dict.

    ``--dataset``, else the one the model file records (``meta``); only the test
    files are read for ``--split test`` (so that it works offline with just
    those), and the network is checked to fit the data. Returns the data set's
    name and the dict.
    """
    dataset = args.dataset or meta.get("dataset")
    if dataset is None:
        raise CLIError(f"{args.model} does not record its data set; pass --dataset")
    data = load_data(
        dataset,
        data_dir=args.data_dir,
        download=not args.no_download,
        dtype=dtype,
        limit=args.limit,
        train=args.split != "test",
    )
    check_fit(net, data, dataset)
    return dataset, data


def unusable_model(path: str, params: np.ndarray, exc: BaseException) -> CLIError:
    """The error for a model whose finite weights overflow when applied (a broken model file)."""
    largest = float(np.max(np.abs(params))) if params.size else 0.0
    return CLIError(
        f"{path}: the model cannot be applied: its weights are finite but so large "
        f"(largest |weight| {largest:.3g}) that its outputs overflow {params.dtype}; the file "
        f"holds a broken model (from a diverged run?): train it again"
    )


def check_memory(
    net: Network,
    itemsize: int,
    vectors: int,
    rows: int,
    what: str,
    advice: str = "Use smaller layers.",
) -> None:
    """CLIError unless ``vectors`` parameter vectors and ``rows`` rows of activations fit."""
    need = memory.estimate_bytes(net.n_params, net.sizes, itemsize, vectors, rows)
    _check_fits(
        need,
        lambda available: (
            f"sizes {format_sizes(net.sizes)} have {net.n_params:,} parameters: "
            f"{what} would take about {memory.format_bytes(need)} of memory ({vectors} vectors of "
            f"{memory.format_bytes(net.n_params * itemsize)}"
            + (f", and activations of {rows} rows" if rows else "")
            + f"), and {available} is available. {advice}"
        ),
    )


def cuda_namespace() -> Any:
    """CuPy, checked to see a GPU; a one-line CLIError when either is missing."""
    from flatnn.backends import gpu_objective

    try:
        return gpu_objective.require_cuda()
    except gpu_objective.GPUUnavailable as exc:
        raise CLIError(f"--device cuda: {exc}") from None
