"""The ``flatnn`` command line: train, evaluate, predict, gradcheck, compare.

``flatnn COMMAND --help`` describes each command. Exit status: 0 on success,
1 when ``gradcheck`` finds an error above ``--rtol`` or training diverged (the
cost became non-finite or blew up: the message says what to change), 2 for bad input (an
unknown data set, malformed ``--sizes``, a missing or corrupt model file, sizes
that do not fit the data, an unreadable image: one line on stderr, never a
traceback), 130 when training was stopped with Ctrl-C (the best model so far
is still saved; a second Ctrl-C aborts without saving).

This is the only module of flatnn that prints; the library reports progress
through the training callback, and this module turns it into lines.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from flatnn import __version__, datasets
from flatnn.base import namespace, threads
from flatnn.cli import presets as recipes
from flatnn.core import metrics
from flatnn.core.gradcheck import check_grad
from flatnn.core.network import Network
from flatnn.datasets import images
from flatnn.io import models as io
from flatnn.training import rules as optimizers
from flatnn.training import sgd_loop as training
from flatnn.training import transforms as augment
from flatnn.training.sgd_loop import SCIPY_METHODS, minimize, sgd

__all__ = ["run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DATASETS = datasets.NAMES
METHODS = tuple(optimizers.RULES) + SCIPY_METHODS

# Per-data-set defaults and presets of `flatnn train` (every entry is a flag):
# the table lives in flatnn/recipes.py.
DEFAULTS = recipes.DEFAULTS
PRESETS = recipes.PRESETS
# Learning rates used when --method changes the rule but --learning-rate is not given.
RULE_LEARNING_RATES = recipes.RULE_LEARNING_RATES


class CLIError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise CLIError(f"{message} (see '{self.prog} --help')")


# ------------------------------------------------------------- arguments
def _sizes(text):
    parts = text.replace(",", "-").split("-")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layer sizes like 784-256-10, got {text!r}"
        ) from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected at least two sizes >= 1 like 784-256-10, got {text!r}"
        )
    return sizes


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a seed >= 0, got {value}")
    return value


def _float_in(low, high=math.inf, low_open=False):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if (
            not (low < value if low_open else low <= value)
            or not value <= high
            or math.isnan(value)
            or math.isinf(value)
        ):
            interval = f"{'(' if low_open else '['}{low}, {high}]"
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
        return value

    return parse


def _method(text):
    for name in METHODS:
        if text.lower() == name.lower():
            return name
    raise argparse.ArgumentTypeError(
        f"unknown method {text!r}; expected one of {', '.join(METHODS)}"
    )


def _dataset(text):
    if text not in DATASETS:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {text!r}; expected one of {', '.join(DATASETS)}"
        )
    return text


def _build_parser():
    parser = _ArgumentParser(
        prog="flatnn",
        description="Multilayer perceptrons on one flat parameter vector.",
        epilog="Exit status: 0 ok, 1 gradcheck failed or training diverged, 2 bad input, 130 "
        "stopped by Ctrl-C (model saved). Data: $FLATNN_DATA/<dataset>/ or --data-dir.",
    )
    parser.add_argument("--version", action="version", version=f"flatnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    sub.required = True

    data_help = (
        "folder holding one subfolder per data set (mnist/, fashion-mnist/), like "
        "$FLATNN_DATA; or the folder holding the files themselves"
    )
    limit_help = (
        "use only the first N samples of each split: a quick smoke run (the full data when omitted)"
    )

    train = sub.add_parser(
        "train",
        help="train a network and save it",
        description="Train a network and save it. With no arguments: 784-384-10 relu on "
        "MNIST with momentum SGD, float32, 6 epochs (>= 98% test accuracy). "
        "Defaults depend on --dataset; every one is a flag.",
    )
    train.add_argument(
        "--dataset",
        type=_dataset,
        default="mnist",
        help=f"one of {', '.join(DATASETS)} (default mnist)",
    )
    train.add_argument(
        "--sizes",
        type=_sizes,
        metavar="N-N-...",
        help="layer sizes, input to output, e.g. 784-256-10 (default per "
        "data set: mnist 784-384-10, fashion-mnist 784-256-10, captcha "
        "260-200-200-36, xor 2-4-2)",
    )
    train.add_argument(
        "--hidden",
        help="hidden activation, or one per hidden layer "
        "separated by commas: sigmoid, tanh, relu, leaky_relu, "
        "identity (default relu; xor tanh)",
    )
    train.add_argument(
        "--output", help="output activation (default softmax, or sigmoid for one output unit)"
    )
    train.add_argument(
        "--loss",
        default="cross_entropy",
        help="cross_entropy or squared_error (default cross_entropy)",
    )
    train.add_argument(
        "--method",
        type=_method,
        metavar="NAME",
        help=f"update rule ({', '.join(optimizers.RULES)}: minibatch SGD with "
        f"--epochs, "
        f"--batch-size, --learning-rate) or scipy method "
        f"({', '.join(SCIPY_METHODS)}: full batch, --maxiter); case-"
        f"insensitive (default momentum; xor L-BFGS-B)",
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        help="passes over the data (default: the recipe's, flatnn/recipes.py; "
        "6 on mnist, 12 on fashion-mnist)",
    )
    train.add_argument(
        "--batch-size",
        type=_positive_int,
        help="rows per batch (default: the recipe's; 64 on mnist, 128 on "
        "fashion-mnist and with --preset best)",
    )
    train.add_argument(
        "--learning-rate",
        type=_float_in(0, low_open=True),
        help="initial learning rate (default: the recipe's for its own rule: "
        "mnist 0.1, fashion-mnist 0.2, captcha 0.001, --preset best 0.05; "
        "for another --method: sgd 0.1, momentum/nesterov 0.05, "
        "adam/rmsprop 0.001)",
    )
    train.add_argument(
        "--lr-decay",
        type=_float_in(0, 1, low_open=True),
        metavar="FACTOR",
        help="multiply the learning rate by FACTOR after each epoch "
        "(default 0.6 on mnist, 0.8 on fashion-mnist, 1 = constant)",
    )
    train.add_argument(
        "--momentum",
        type=_float_in(0, 1),
        metavar="BETA",
        help="beta of momentum and nesterov (default 0.9)",
    )
    train.add_argument(
        "--lam",
        type=_float_in(0),
        help="L2 strength lam of J = mean loss + lam/(2m) sum of squared "
        "weights (default 5 on mnist and fashion-mnist, 1 on captcha, 0 on "
        "xor and with --preset best)",
    )
    train.add_argument(
        "--maxiter",
        type=_positive_int,
        default=200,
        help="iterations of a scipy method (function evaluations for TNC; default 200)",
    )
    train.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seed of the initial weights and the shuffling (default 0)",
    )
    train.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help="precision of weights and data (default: the recipe's; float32 "
        "except captcha's fast recipe and xor)",
    )
    train.add_argument("--data-dir", metavar="DIR", help=data_help)
    train.add_argument(
        "--no-download", action="store_true", help="fail instead of downloading missing data files"
    )
    train.add_argument("--limit", type=_positive_int, metavar="N", help=limit_help)
    train.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="fast",
        help="recipe the defaults come from (flatnn/recipes.py): fast (default; "
        "MNIST >= 98%% in well under a minute) or best (the most accurate "
        "recipe found within 10 minutes of training on 2 cores: dropout, "
        "max-norm, translations, cosine schedule; see README)",
    )
    train.add_argument(
        "--dropout",
        type=_float_in(0, 1),
        metavar="RATE",
        help="dropout rate of the hidden units, SGD rules only (default 0; best preset 0.3)",
    )
    train.add_argument(
        "--input-dropout",
        type=_float_in(0, 1),
        metavar="RATE",
        help="dropout rate of the input units, SGD rules only (default 0; best preset 0.1)",
    )
    train.add_argument(
        "--max-norm",
        type=_float_in(0),
        metavar="C",
        help="after each step, cap the norm of every unit's incoming weights "
        "at C; 0 = off (default off; best preset 3.5)",
    )
    train.add_argument(
        "--augment",
        type=_float_in(0),
        metavar="PIXELS",
        help="shift each training image by a random whole number of pixels, "
        "up to PIXELS in each direction; square images only, 0 = off "
        "(default off; best preset on mnist 2)",
    )
    train.add_argument(
        "--schedule",
        choices=("exponential", "cosine"),
        help="learning-rate schedule: exponential (x --lr-decay per epoch; "
        "default) or cosine (half a cosine down to 0 over --epochs)",
    )
    train.add_argument(
        "--warmup",
        type=_float_in(0),
        metavar="EPOCHS",
        help="ramp the learning rate up linearly over the first EPOCHS epochs (default 0)",
    )
    train.add_argument(
        "--train-captchas",
        type=_positive_int,
        metavar="N",
        help="captcha only: render N captchas (4N characters) for training "
        "(default 400; best preset 32000)",
    )
    train.add_argument(
        "--final-fit",
        action="store_true",
        help="train on training + validation data (no validation curve): "
        "for the final model once the recipe is fixed",
    )
    train.add_argument(
        "--plot",
        action="store_true",
        help="write the learning curves (cost and accuracy per epoch, training "
        "and validation) as a PNG next to the model (needs matplotlib)",
    )
    train.add_argument(
        "--out",
        metavar="PATH",
        help="where to save the model (default flatnn-<dataset>.npz in the "
        "current folder; checked before training; an existing file is "
        "replaced, and the last line says so)",
    )
    train.add_argument("--quiet", action="store_true", help="print only the final result")
    train.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: train on an NVIDIA GPU, the data copied there once (the "
        "SGD rules run flatnn.sgd on the GPU, a scipy method runs over "
        "a GPUObjective); needs flatnn[gpu], i.e. CuPy (default cpu)",
    )

    evaluate = sub.add_parser(
        "evaluate",
        help="accuracy, per-class accuracy and confusion matrix of a saved model",
        description="Evaluate a saved model on the test split of its data set (taken from "
        "the model file; --dataset overrides).",
    )
    evaluate.add_argument("model", metavar="MODEL", help="a model file written by flatnn train")
    evaluate.add_argument(
        "--dataset", type=_dataset, help=f"one of {', '.join(DATASETS)} (default: the model's)"
    )
    evaluate.add_argument(
        "--split",
        choices=("test", "val", "train"),
        default="test",
        help="which split (default test)",
    )
    evaluate.add_argument("--data-dir", metavar="DIR", help=data_help)
    evaluate.add_argument(
        "--no-download", action="store_true", help="fail instead of downloading missing data files"
    )
    evaluate.add_argument("--limit", type=_positive_int, metavar="N", help=limit_help)

    predict = sub.add_parser(
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
    predict.add_argument("model", metavar="MODEL", help="a model file written by flatnn train")
    predict.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    polarity = predict.add_mutually_exclusive_group()
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

    grad = sub.add_parser(
        "gradcheck",
        help="check backpropagation against finite differences",
        description="Compare the analytic gradient of a random network on random data "
        "with fourth-order central differences in float64; print the worst "
        "relative error. Exit 1 if it exceeds --rtol.",
    )
    grad.add_argument(
        "--sizes",
        type=_sizes,
        default=(5, 4, 3),
        metavar="N-N-...",
        help="layer sizes (default 5-4-3)",
    )
    grad.add_argument("--hidden", default="sigmoid", help="hidden activation(s) (default sigmoid)")
    grad.add_argument("--output", help="output activation (default softmax / sigmoid)")
    grad.add_argument("--loss", default="cross_entropy", help="default cross_entropy")
    grad.add_argument("--lam", type=_float_in(0), default=0.1, help="L2 strength (default 0.1)")
    grad.add_argument("--samples", type=_positive_int, default=8, help="random samples (default 8)")
    grad.add_argument(
        "--coords",
        type=_positive_int,
        metavar="N",
        help="check only N random coordinates (default all)",
    )
    grad.add_argument("--seed", type=_seed, default=0, help="seed (default 0)")
    grad.add_argument(
        "--rtol",
        type=_float_in(0),
        default=1e-6,
        help="largest acceptable relative error (default 1e-6)",
    )

    for command in (train, evaluate, grad):
        command.add_argument(
            "--threads",
            type=_positive_int,
            metavar="N",
            help="threads for full-batch evaluations (default: "
            "$FLATNN_NUM_THREADS, else every core this process may use)",
        )

    parser.predict_parser = predict
    sub.add_parser(
        "compare",
        add_help=False,
        help="run the optimizer comparison "
        "(experiments/compare_optimizers.py; needs a source checkout)",
        description="All arguments go to experiments/compare_optimizers.py.",
    )
    return parser


# ------------------------------------------------------------------ data
def _data_path(data_dir):
    # The library takes DIR or DIR/<dataset> alike, as it does for $FLATNN_DATA.
    if data_dir is None:
        return None
    if not Path(data_dir).is_dir():
        raise CLIError(f"--data-dir {data_dir}: no such folder")
    return Path(data_dir)


def _message(exc):
    """The whole message of an exception (it may span lines), or its type's name."""
    text = str(exc).strip()
    return text or type(exc).__name__


def load_data(
    name,
    *,
    data_dir=None,
    download=True,
    dtype=np.float64,
    limit=None,
    train=True,
    train_captchas=None,
):
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
        # 4 character cells of 260 pixels a captcha, and about as much again while rendering
        need = 2 * train_captchas * 4 * 260 * np.dtype(dtype).itemsize
        available = _available_memory()
        if available is not None and need > available:
            raise CLIError(
                f"--train-captchas {train_captchas} would take about "
                f"{_fmt_bytes(need)} of memory, and {_fmt_bytes(available)} is "
                f"available; render fewer captchas"
            )
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
            text = _message(exc).replace("path argument:", "--data-dir:")
        else:
            text = (
                _message(exc) + f"\nOn the command line, pass that folder (DIR or "
                f"DIR/{name}/) as --data-dir DIR."
            )
        raise CLIError(text) from None
    except ImportError as exc:
        text = _message(exc)
        if "pip install" not in text:  # the library's message already has the hint
            text += f" (pip install 'flatnn[{name}]')"
        raise CLIError(f"dataset {name} needs an optional package: {text}") from None
    except (ValueError, OSError) as exc:
        raise CLIError(f"cannot load {name}: {_message(exc)}") from None
    data = {
        k: getattr(splits, k) for k in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
    }
    data["class_names"] = tuple(splits.class_names)
    return data


def _check_fit(net, data, dataset):
    n_features = data["X_train"].shape[1]
    n_classes = len(data["class_names"])
    if net.sizes[0] != n_features:
        raise CLIError(
            f"sizes {_fmt_sizes(net.sizes)} do not fit {dataset}: the first size "
            f"must be {n_features} (its features per sample), got {net.sizes[0]}"
        )
    if net.sizes[-1] != n_classes and not (net.sizes[-1] == 1 and n_classes == 2):
        raise CLIError(
            f"sizes {_fmt_sizes(net.sizes)} do not fit {dataset}: the last size "
            f"must be {n_classes} (its classes), got {net.sizes[-1]}"
        )


def _fmt_sizes(sizes):
    return "-".join(map(str, sizes))


def _network(sizes, hidden, output, loss):
    if hidden is not None and "," in hidden:
        hidden = tuple(h.strip() for h in hidden.split(","))
    kwargs = {"hidden": hidden if hidden is not None else "sigmoid", "loss": loss}
    if output is not None:
        kwargs["output"] = output
    try:
        return Network(sizes, **kwargs)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"bad network: {_message(exc)}") from None


def _load_model(path):
    try:
        return io.load(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(_message(exc)) from None
    except (OSError, MemoryError) as exc:
        raise CLIError(f"cannot read model {path!r}: {_message(exc)}") from None


# ------------------------------------------------------------ memory
def _available_memory():
    """Bytes of memory this process may still use (MemAvailable, capped by a cgroup), or None."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            room = max(int(limit) - used, 0)
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    if available is None and hasattr(os, "sysconf"):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            pass
    return available


def _fmt_bytes(n):
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


def _check_memory(net, itemsize, vectors, rows, what, advice="Use smaller layers."):
    """CLIError unless ``vectors`` parameter vectors and ``rows`` rows of activations fit."""
    need = net.n_params * itemsize * vectors + 4 * rows * sum(net.sizes) * itemsize
    available = _available_memory()
    if available is not None and need > available:
        raise CLIError(
            f"sizes {_fmt_sizes(net.sizes)} have {net.n_params:,} parameters: {what} would take "
            f"about {_fmt_bytes(need)} of memory ({vectors} vectors of "
            f"{_fmt_bytes(net.n_params * itemsize)}"
            + (f", and activations of {rows} rows" if rows else "")
            + f"), and {_fmt_bytes(available)} is available. {advice}"
        )


# Parameter-sized vectors each method keeps: the parameters, the gradient, the
# rule's state, the best iterate; scipy's own (L-BFGS-B: 2 x 10 history pairs).
_TRAIN_VECTORS = {"sgd": 5, "momentum": 6, "nesterov": 6, "adam": 7, "rmsprop": 6, "L-BFGS-B": 28}


# -------------------------------------------------------------- progress
class _Progress:
    """Per-epoch lines, an in-epoch bar on terminals, and the Ctrl-C flag.

    ``on_batch`` is :func:`flatnn.sgd`'s ``batch_callback`` and ``on_step`` the
    per-epoch (or per-iteration) ``callback``; after Ctrl-C either raises
    ``StopIteration``, which makes the training path return its best result.
    """

    def __init__(self, out, n_batches, total, quiet):
        self.out = out
        self.n_batches = n_batches
        self.total = total  # epochs, or the scipy method's iteration limit
        self.quiet = quiet
        self.bar = (not quiet) and out.isatty()
        self.interrupted = False
        self.last_draw = 0.0
        self.epoch_start = time.perf_counter()
        self.width = len(str(total))

    def on_sigint(self, signum, frame):
        if self.interrupted:  # second Ctrl-C: abort now
            raise KeyboardInterrupt
        self.interrupted = True
        self._clear()
        print(
            "interrupted: stopping after this batch and saving the best model so far "
            "(Ctrl-C again to abort without saving)",
            file=sys.stderr,
            flush=True,
        )

    def on_batch(self, intermediate_result):
        """``batch_callback``: the bar, and the stop after Ctrl-C."""
        if self.interrupted:
            raise StopIteration
        if self.bar:
            r = intermediate_result
            now = time.perf_counter()
            done_batches = r.batch + 1
            if now - self.last_draw > 0.1 or done_batches == self.n_batches:
                self.last_draw = now
                width = 30
                done = int(width * done_batches / self.n_batches)
                self.out.write(
                    f"\repoch {r.epoch + 1:>{self.width}}/{self.total} "
                    f"[{'=' * done}{' ' * (width - done)}] "
                    f"{done_batches}/{self.n_batches}  cost {r.fun:.4f}  "
                    f"{now - self.epoch_start:5.1f}s"
                )
                self.out.flush()

    def _clear(self):
        if self.bar:
            self.out.write("\r" + " " * 100 + "\r")
            self.out.flush()

    def on_step(self, intermediate_result):
        """The training callback: one line per epoch (SGD) or iteration (scipy)."""
        r = intermediate_result
        now = time.perf_counter()
        if not self.quiet:
            self._clear()
            if "epoch" in r:
                head = f"epoch {r.epoch + 1:>{self.width}}/{self.total}"
                tail = f"lr {r.learning_rate:<9.4g} {now - self.epoch_start:6.1f}s"
            else:
                head = f"iter {r.nit:>{self.width}}"
                tail = f"nfev {r.nfev:<6d} {r.seconds:7.1f}s"
            line = f"{head}  cost {r.fun:9.4f}"
            if "val_cost" in r:
                line += f"  val_cost {r.val_cost:9.4f}  val_acc {100 * r.val_accuracy:6.2f}%"
            print(f"{line}  {tail}", file=self.out, flush=True)
        self.epoch_start = now
        if self.interrupted:
            raise StopIteration


class _sigint:
    """Context manager installing a SIGINT handler (main thread only)."""

    def __init__(self, handler):
        self.handler = handler
        self.previous = None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self.handler)
        except ValueError:  # not the main thread: keep the default behaviour
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


# -------------------------------------------------------------- commands
def _count_flag(value, flag):
    """A whole-number flag parsed as a float (``--augment 2``, ``--warmup 3``)."""
    if value != int(value):
        raise CLIError(f"{flag} takes a whole number, got {value:g}")
    return int(value)


def _resolve_train_args(args):
    d = PRESETS[args.preset][args.dataset]
    method = args.method or d["method"]
    if args.learning_rate is not None:
        learning_rate = args.learning_rate
    elif method == d["method"] or method not in RULE_LEARNING_RATES:
        learning_rate = d["learning_rate"]
    else:
        learning_rate = RULE_LEARNING_RATES[method]
    if args.momentum is not None and method not in ("momentum", "nesterov"):
        raise CLIError(f"--momentum applies to the methods momentum and nesterov, not {method}")
    cfg = dict(
        sizes=args.sizes or d["sizes"],
        hidden=args.hidden or d["hidden"],
        method=method,
        epochs=args.epochs or d["epochs"],
        batch_size=args.batch_size or d["batch_size"],
        learning_rate=learning_rate,
        lr_decay=args.lr_decay if args.lr_decay is not None else d["lr_decay"],
        momentum=args.momentum if args.momentum is not None else d.get("momentum"),
        lam=args.lam if args.lam is not None else d["lam"],
        dtype=np.dtype(args.dtype or d["dtype"]),
        schedule=args.schedule or d["schedule"],
        warmup=(_count_flag(args.warmup, "--warmup") if args.warmup is not None else d["warmup"]),
        input_dropout=(
            args.input_dropout if args.input_dropout is not None else d["input_dropout"]
        ),
        dropout=args.dropout if args.dropout is not None else d["dropout"],
        max_norm=(args.max_norm or None) if args.max_norm is not None else d["max_norm"],
        augment=(
            _count_flag(args.augment, "--augment") if args.augment is not None else d["augment"]
        ),
        train_captchas=args.train_captchas or d["train_captchas"],
    )
    if args.train_captchas is not None and args.dataset != "captcha":
        raise CLIError(f"--train-captchas applies to --dataset captcha, not {args.dataset}")
    for key, flag in (("input_dropout", "--input-dropout"), ("dropout", "--dropout")):
        if not cfg[key] < 1:
            raise CLIError(f"{flag} must be a rate in [0, 1), got {cfg[key]:g}")
    if cfg["method"] not in optimizers.RULES:
        used = [
            (key, flag)
            for key, flag in (
                ("input_dropout", "--input-dropout"),
                ("dropout", "--dropout"),
                ("max_norm", "--max-norm"),
                ("augment", "--augment"),
                ("warmup", "--warmup"),
            )
            if cfg[key]
        ] + ([("schedule", "--schedule cosine")] if cfg["schedule"] == "cosine" else [])
        if used:
            # name where each setting came from: a flag typed, or the preset's recipe
            named = [
                flag
                if getattr(args, key, None) is not None
                else f"{flag} (from --preset {args.preset})"
                for key, flag in used
            ]
            raise CLIError(
                f"{', '.join(named)} appl{'ies' if len(used) == 1 else 'y'} to the "
                f"SGD rules ({', '.join(optimizers.RULES)}), not {cfg['method']}"
            )
    return cfg


def _learning_rate(cfg):
    """The schedule of a recipe: exponential or cosine, with the optional warm-up."""
    lr, epochs = cfg["learning_rate"], cfg["epochs"]
    if cfg["schedule"] == "cosine":
        schedule = optimizers.cosine_decay(lr, epochs)
    elif cfg["lr_decay"] != 1:
        schedule = optimizers.exponential_decay(lr, cfg["lr_decay"])
    else:
        schedule = lr
    return optimizers.warmup(schedule, cfg["warmup"]) if cfg["warmup"] else schedule


def _write_plot(path, history):
    """Learning curves of one run as a PNG at ``path`` (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] + 1 if "epoch" in h else h["nit"] for h in history]
    fig, (ax_cost, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_cost.plot(
        epochs, [h["fun"] for h in history], label="training (J, mean of the batches as trained)"
    )
    if "val_cost" in history[0]:
        ax_cost.plot(epochs, [h["val_cost"] for h in history], label="validation (mean loss)")
    ax_cost.set_xlabel("epoch")
    ax_cost.set_ylabel("cost")
    ax_cost.set_yscale("log")
    ax_cost.legend()
    if "train_accuracy" in history[0]:
        ax_acc.plot(
            epochs,
            [100 * h["train_accuracy"] for h in history],
            label="training (first 10000 rows)",
        )
    if "val_accuracy" in history[0]:
        ax_acc.plot(epochs, [100 * h["val_accuracy"] for h in history], label="validation")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    fig.tight_layout()
    tmp = f"{path}.{os.getpid()}.tmp.png"
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def _rule(method, momentum):
    """The update rule object for a built-in rule name and an optional --momentum."""
    if momentum is not None and method in ("momentum", "nesterov"):
        return optimizers.RULES[method](momentum)
    return optimizers.get(method)


def _save_model(path, net, params, **metadata):
    """io.save, and if ``path`` became unwritable during training, a temporary file instead."""
    try:
        return io.save(path, net, params, **metadata)
    except (OSError, ValueError) as exc:
        import tempfile

        fd, fallback = tempfile.mkstemp(prefix="flatnn-", suffix=".npz")
        os.close(fd)
        try:
            io.save(fallback, net, params, **metadata)
        except (OSError, ValueError):
            raise CLIError(f"cannot save the model to {path}: {_message(exc)}") from None
        print(
            f"flatnn: cannot save the model to {path} ({_message(exc)}); saved it to "
            f"{fallback} instead",
            file=sys.stderr,
        )
        return fallback


def _check_train_memory(net, cfg):
    method = cfg["method"]
    if method in optimizers.RULES:
        _check_memory(
            net,
            cfg["dtype"].itemsize,
            _TRAIN_VECTORS[method],
            cfg["batch_size"],
            f"training them with {method} in {cfg['dtype']}",
        )
    else:  # scipy works in float64; BFGS keeps an n x n inverse Hessian
        vectors = net.n_params if method == "BFGS" else _TRAIN_VECTORS.get(method, 10)
        _check_memory(net, 8, vectors, 0, f"training them with {method}")


def cmd_train(args, out):
    cfg = _resolve_train_args(args)
    xp = _cuda_namespace() if args.device == "cuda" else None  # before any data is read
    net = _network(cfg["sizes"], cfg["hidden"], args.output, args.loss)
    path = args.out or f"flatnn-{args.dataset}.npz"
    try:  # found out now, not after the whole training run
        io.check_writable(path)
    except (OSError, ValueError) as exc:
        raise CLIError(f"--out: {_message(exc)}") from None
    replacing = os.path.exists(path)
    _check_train_memory(net, cfg)
    data = load_data(
        args.dataset,
        data_dir=args.data_dir,
        download=not args.no_download,
        dtype=cfg["dtype"],
        limit=args.limit,
        train_captchas=cfg["train_captchas"],
    )
    _check_fit(net, data, args.dataset)
    if cfg["augment"] and math.isqrt(net.sizes[0]) ** 2 != net.sizes[0]:
        raise CLIError(
            f"--augment shifts square images; {args.dataset} has {net.sizes[0]} input features"
        )
    X, y = data["X_train"], data["y_train"]
    validation = (data["X_val"], data["y_val"]) if len(data["y_val"]) else None
    if args.final_fit and validation is not None and args.dataset != "xor":
        # xor's validation split is its training set
        X, y = np.concatenate([X, data["X_val"]]), np.concatenate([y, data["y_val"]])
    if args.final_fit:
        validation = None
    if xp is not None:  # copied to the GPU once; the whole run stays there
        X, y = xp.asarray(X), xp.asarray(y)
    m = X.shape[0]
    plot_path = None
    if args.plot:
        try:
            import matplotlib  # noqa: F401

            plot_path = str(Path(path).with_suffix(".png"))
        except ImportError:
            print(
                "flatnn: --plot needs matplotlib (pip install 'flatnn[plot]'); training without it",
                file=sys.stderr,
            )
    params0 = net.init(args.seed, dtype=cfg["dtype"])
    method = cfg["method"]
    is_rule = method in optimizers.RULES
    epochs = cfg["epochs"]
    batch_size = min(cfg["batch_size"], m)
    n_batches = math.ceil(m / batch_size)
    progress = _Progress(out, n_batches, epochs if is_rule else args.maxiter, args.quiet)

    if not args.quiet:
        if is_rule:
            beta = (
                f" {cfg['momentum']:g}"
                if cfg["momentum"] is not None and method in ("momentum", "nesterov")
                else ""
            )
            plan = (
                f"{method}{beta}, {epochs} epoch{'s' if epochs > 1 else ''}, batch "
                f"{batch_size}, learning rate {cfg['learning_rate']:g}"
                + (
                    " cosine"
                    if cfg["schedule"] == "cosine"
                    else f" x {cfg['lr_decay']:g}/epoch"
                    if cfg["lr_decay"] != 1
                    else ""
                )
                + (f", warm-up {cfg['warmup']}" if cfg["warmup"] else "")
                + (
                    f", dropout {cfg['input_dropout']:g}/{cfg['dropout']:g}"
                    if cfg["input_dropout"] or cfg["dropout"]
                    else ""
                )
                + (f", max-norm {cfg['max_norm']:g}" if cfg["max_norm"] else "")
                + (f", shifts up to {cfg['augment']} px" if cfg["augment"] else "")
                + (", training + validation data" if args.final_fit else "")
            )
        else:
            # TNC counts function evaluations, not iterations
            plan = f"{method}, {'maxfun' if method == 'TNC' else 'maxiter'} {args.maxiter}"
        print(
            f"{args.dataset}: {m} training samples; {net!r}, {net.n_params} parameters, "
            f"{cfg['dtype']}; {plan}",
            file=out,
            flush=True,
        )

    train_accuracy = []
    on_step = progress.on_step
    if plot_path is not None:
        # training accuracy for the plot, on a fixed slice: bounded cost per epoch
        X_acc, y_acc = X[:10000], y[:10000]

        def on_step(intermediate_result):
            train_accuracy.append(net.accuracy(intermediate_result.x, X_acc, y_acc))
            return progress.on_step(intermediate_result)

    start = time.perf_counter()
    try:
        with _sigint(progress.on_sigint):
            if is_rule:
                rates = (cfg["input_dropout"],) + (cfg["dropout"],) * (len(net.sizes) - 2)
                res = sgd(
                    net,
                    params0,
                    X,
                    y,
                    cfg["lam"],
                    epochs=epochs,
                    batch_size=batch_size,
                    learning_rate=_learning_rate(cfg),
                    method=_rule(method, cfg["momentum"]),
                    rng=args.seed,
                    validation=validation,
                    callback=on_step,
                    batch_callback=progress.on_batch,
                    dropout=rates if any(rates) else None,
                    max_norm=cfg["max_norm"],
                    transform=(augment.translate(cfg["augment"]) if cfg["augment"] else None),
                )
            else:
                limit_key = "maxfun" if method == "TNC" else "maxiter"
                problem = (
                    (net, X, y, cfg["lam"])
                    if xp is None
                    else (_gpu().GPUObjective(net, X, y, cfg["lam"], xp=xp), None, None, 0.0)
                )
                res = minimize(
                    problem[0],
                    params0,
                    *problem[1:],
                    method=method,
                    options={limit_key: args.maxiter},
                    validation=validation,
                    callback=on_step,
                )
    except KeyboardInterrupt:
        progress._clear()
        print("aborted: no model saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError) as exc:
        raise CLIError(f"cannot train: {_message(exc)}") from None
    except MemoryError:
        progress._clear()
        raise CLIError(
            f"cannot train: out of memory ({net.n_params:,} parameters, "
            f"{len(y)} samples); use smaller layers, --batch-size or --limit"
        ) from None
    seconds = time.perf_counter() - start
    progress._clear()
    interrupted = res.status == training.STATUS_STOPPED
    # scipy's own status codes overlap flatnn's (TNC's 2 is "converged"): not_finite
    failed = (
        res.status in (training.STATUS_NOT_FINITE, training.STATUS_DIVERGED)
        if is_rule
        else bool(res.get("not_finite"))
    )
    scores = [h.get("val_cost", h["fun"]) for h in res.history]
    if failed and not np.isfinite(scores).any():  # res.x is params0
        print(f"training failed: {res.message} No model saved.", file=sys.stderr)
        return EXIT_FAILED

    params = namespace.to_numpy(res.x)  # from the GPU after --device cuda
    test_accuracy = net.accuracy(params, data["X_test"], data["y_test"])
    heldout = {}
    if args.dataset == "captcha":
        heldout = _captcha_heldout(net, params, cfg["dtype"], args.limit)
    path = _save_model(
        path,
        net,
        params,
        dataset=args.dataset,
        class_names=list(data["class_names"]),
        test_accuracy=test_accuracy,
        method=method,
        seed=args.seed,
        epochs=epochs if is_rule else None,
        lam=cfg["lam"],
        train_seconds=round(seconds, 2),
        limit=args.limit,
        interrupted=interrupted,
        diverged=failed,
        preset=args.preset,
        final_fit=args.final_fit,
        train_captchas=cfg["train_captchas"],
        **heldout,
    )
    if plot_path is not None and res.history:
        history = [dict(h, train_accuracy=a) for h, a in zip(res.history, train_accuracy)]
        try:
            _write_plot(plot_path, history)
        except (OSError, ValueError) as exc:
            print(f"flatnn: cannot write the plot {plot_path}: {_message(exc)}", file=sys.stderr)
            plot_path = None
    if failed:
        best = res.history[int(np.nanargmin(np.where(np.isfinite(scores), scores, np.nan)))]
        where = f"epoch {best['epoch'] + 1}" if "epoch" in best else f"iteration {best['nit']}"
        print(
            f"training failed: {res.message} Saved the best model so far ({where}, test "
            f"accuracy {100 * test_accuracy:.2f}%) to {path}.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if not is_rule and not res.success and not interrupted:
        print(f"note: {method} stopped without success: {res.message}", file=sys.stderr)
    print(
        f"test accuracy {100 * test_accuracy:.2f}% ({len(data['y_test'])} samples); "
        + (
            f"held-out captchas (seed {datasets.CAPTCHA_HELDOUT[0]}, used by no split): "
            f"characters {100 * heldout['heldout_accuracy']:.2f}%, whole captchas "
            f"{100 * heldout['heldout_captcha_accuracy']:.2f}% "
            f"({heldout['heldout_captchas']} captchas); "
            if heldout
            else ""
        )
        + f"trained in {seconds:.1f}s; saved {path}"
        + (" (replaced the file that was there)" if replacing else "")
        + (f"; learning curves in {plot_path}" if plot_path else ""),
        file=out,
        flush=True,
    )
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


def _captcha_heldout(net, params, dtype, limit=None):
    """Character and whole-captcha accuracy on the held-out captchas (CAPTCHA_HELDOUT).

    With ``--limit N`` only the first ``ceil(N / 4)`` held-out captchas are rendered.
    """
    n = None if limit is None else min(-(-limit // 4), datasets.CAPTCHA_HELDOUT[1])
    held = datasets.load_captcha_heldout(n, dtype=dtype)
    predicted = net.predict(params, held.X)
    return {
        "heldout_accuracy": float(np.mean(predicted == held.y)),
        "heldout_captcha_accuracy": datasets.whole_captcha_accuracy(held.y, predicted),
        "heldout_captchas": held.n_captchas,
    }


def _gpu():
    from flatnn.backends import gpu_objective as gpu

    return gpu


def _cuda_namespace():
    """CuPy, checked to see a GPU; a one-line CLIError when either is missing.

    The tests replace this function to run ``--device cuda`` on a stand-in
    namespace.
    """
    try:
        return _gpu().require_cuda()
    except _gpu().GPUUnavailable as exc:
        raise CLIError(f"--device cuda: {exc}") from None


def _table(rows, header):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join(fmt.format(*map(str, r)) for r in [header, *rows])


def cmd_evaluate(args, out):
    net, params, meta = _load_model(args.model)
    dataset = args.dataset or meta.get("dataset")
    if dataset is None:
        raise CLIError(f"{args.model} does not record its data set; pass --dataset")
    if dataset not in DATASETS:
        raise CLIError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    # the test split needs only the test files: evaluating works offline with just those
    data = load_data(
        dataset,
        data_dir=args.data_dir,
        download=not args.no_download,
        dtype=params.dtype,
        limit=args.limit,
        train=args.split != "test",
    )
    _check_fit(net, data, dataset)
    X, y = data["X_" + args.split], data["y_" + args.split]
    names = list(data["class_names"])
    k = len(names)
    report = metrics.evaluation_report(y, net.predict(params, X), names)
    confusion, support, per_class = report.confusion, report.support, report.class_accuracy
    print(f"{args.model}: {net!r} on {dataset} {args.split} ({len(y)} samples)", file=out)
    print(f"accuracy {100 * report.accuracy:.2f}%", file=out)
    print("\nper-class accuracy", file=out)
    rows = [
        (names[c], support[c], f"{100 * per_class[c]:.2f}%" if support[c] else "-")
        for c in range(k)
    ]
    print(_table(rows, ("class", "samples", "accuracy")), file=out)
    short = [n if len(n) <= 6 else n[:5] + "." for n in names]
    print("\nconfusion matrix (rows: true class, columns: predicted)", file=out)
    print(_table([(short[c], *confusion[c]) for c in range(k)], ("", *short)), file=out)
    return EXIT_OK


def cmd_predict(args, out):
    net, params, meta = _load_model(args.model)
    n_in = net.sizes[0]
    names = meta.get("class_names")
    k = net.sizes[-1]
    if not (isinstance(names, list) and len(names) == max(k, 2)):
        names = [str(i) for i in range(max(k, 2))]
    good, rows, notes, failed = [], [], [], 0
    for path in args.images:
        try:
            try:
                img = images.read_image(path, n_pixels=n_in)
            except (ValueError, ImportError) as exc:
                raise CLIError(_message(exc)) from None
            except FileNotFoundError:
                raise CLIError(f"{path}: no such image file") from None
            except OSError as exc:
                raise CLIError(f"{path}: cannot read: {_message(exc)}") from None
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
        proba = net.forward(params, X)
        labels = net.predict(params, X)
        if k == 1:
            p = np.where(labels == 1, proba[:, 0], 1.0 - proba[:, 0])
        else:
            p = proba[np.arange(len(labels)), labels]
        for path, label, prob, note in zip(good, labels, p, notes):
            print(f"{path}: {names[label]} ({prob:.3f}){note}", file=out)
    return EXIT_USAGE if failed else EXIT_OK


def cmd_gradcheck(args, out):
    net = _network(args.sizes, args.hidden, args.output, args.loss)
    # float64: the parameters, the analytic and the numerical gradient, a perturbed copy
    _check_memory(
        net,
        8,
        5,
        args.samples,
        f"checking their gradient on {args.samples} samples",
        "Use smaller layers or fewer --samples.",
    )
    rng = np.random.default_rng(args.seed)
    X = rng.normal(size=(args.samples, net.sizes[0]))
    k = net.sizes[-1]
    y = rng.integers(0, max(k, 2), size=args.samples)
    params = net.init(rng)
    result = check_grad(net, params, X, y, args.lam, n_coords=args.coords, rng=rng)
    layer = int(np.searchsorted(net.offsets, result.worst_index, side="right")) - 1
    r, c = divmod(result.worst_index - net.offsets[layer], net.shapes[layer][1])
    ok = result.ok(args.rtol)
    print(
        f"{net!r}, lam {args.lam:g}, {args.samples} samples: max relative error "
        f"{result.max_rel_error:.3g} at params[{result.worst_index}] (layer {layer}, "
        f"theta[{r}, {c}]) over {len(result.indices)} coordinates; "
        f"{'OK' if ok else 'FAILED'} (rtol {args.rtol:g})",
        file=out,
    )
    return EXIT_OK if ok else EXIT_FAILED


def compare_script():
    """The path of experiments/compare_optimizers.py in the source checkout."""
    return Path(__file__).resolve().parents[2] / "experiments" / "compare_optimizers.py"


def cmd_compare(argv):
    script = compare_script()
    if not script.is_file():
        raise CLIError(
            f"flatnn compare runs {script}, which is missing: it needs a source "
            f"checkout of flatnn (pip install -e <checkout>)"
        )
    # argv[0] "flatnn compare": argparse names the program after it in usage and --help
    # (runpy would set argv[0] back to the script's path)
    launcher = (
        "import os, sys; path = sys.argv.pop(1); sys.argv[0] = 'flatnn compare'; "
        "sys.path[0] = os.path.dirname(path); "
        "code = compile(open(path, 'rb').read(), path, 'exec'); "
        "exec(code, {'__name__': '__main__', '__file__': path})"
    )
    try:
        return subprocess.call([sys.executable, "-c", launcher, str(script), *argv])
    except KeyboardInterrupt:  # the child got the Ctrl-C too and reports on its own
        return EXIT_INTERRUPTED


# ------------------------------------------------------------------ main
class _log_to_stderr:
    """Show the library's log messages (data downloads) on stderr as "flatnn: ..." lines.

    A context manager: the handler and level are removed again when the command
    ends, so that calling ``main`` in a process leaves its logging as it was.
    """

    def __init__(self, quiet):
        import logging

        self.logger = logging.getLogger("flatnn")
        self.level = logging.WARNING if quiet else logging.INFO

        class Stderr(logging.StreamHandler):
            # sys.stderr as it is when each message comes, not when main started
            stream = property(lambda self: sys.stderr, lambda self, value: None)

        self.handler = Stderr()
        self.handler.setFormatter(logging.Formatter("flatnn: %(message)s"))

    def __enter__(self):
        self.previous = self.logger.level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(self.level)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.previous)
        return False


def run(argv=None):
    """Run the ``flatnn`` command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 gradcheck above ``--rtol``, 2 bad input, 130 Ctrl-C.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] == "compare":
            return cmd_compare(argv[1:])
        parser = _build_parser()
        if argv and argv[0] == "predict":
            # options may stand between the images: predict m.npz a.pgm --invert b.pgm
            args = parser.predict_parser.parse_intermixed_args(argv[1:])
            args.command = "predict"
        else:
            args = parser.parse_args(argv)
        commands = {
            "train": cmd_train,
            "evaluate": cmd_evaluate,
            "predict": cmd_predict,
            "gradcheck": cmd_gradcheck,
        }
        with (
            threads.using(getattr(args, "threads", None)),
            _log_to_stderr(quiet=getattr(args, "quiet", False)),
        ):
            return commands[args.command](args, sys.stdout)
    except CLIError as exc:
        print(f"flatnn: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("flatnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        # the commands estimate what they need first; this is the backstop
        print(
            "flatnn: error: out of memory; use smaller layers, --batch-size or --limit",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except BrokenPipeError:
        # the reader went away (flatnn evaluate ... | head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
