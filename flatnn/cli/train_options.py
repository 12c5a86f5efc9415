"""The options of ``flatnn train``, and their resolution against the chosen preset.

Every default of ``flatnn train`` comes from a recipe (:mod:`flatnn.cli.presets`);
a flag given on the command line wins over it. The resolution itself is the
library's (:func:`flatnn.training.recipes.resolve`); this module names the flags
in its errors, saying which setting came from the preset rather than a flag.
"""

from __future__ import annotations

import argparse
from typing import Any

from flatnn.cli import parser as types
from flatnn.cli import presets
from flatnn.cli.parser import CLIError
from flatnn.training import SCIPY_METHODS, recipes, rules

__all__ = ["add_arguments", "resolve", "describe"]

# recipe key -> its flag (the names of the settings in errors)
FLAGS = {
    "input_dropout": "--input-dropout",
    "dropout": "--dropout",
    "max_norm": "--max-norm",
    "augment": "--augment",
    "warmup": "--warmup",
    "schedule": "--schedule cosine",
}
# recipe keys set by a flag of the same name (dashes for underscores)
_CHOICES = (
    "sizes",
    "hidden",
    "method",
    "epochs",
    "batch_size",
    "learning_rate",
    "lr_decay",
    "momentum",
    "lam",
    "dtype",
    "schedule",
    "input_dropout",
    "dropout",
    "max_norm",
    "train_captchas",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every option of ``flatnn train`` to ``parser``."""
    _add_network_options(parser)
    _add_method_options(parser)
    _add_recipe_options(parser)
    _add_run_options(parser)


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        type=types.dataset,
        default="mnist",
        help=f"one of {', '.join(types.DATASETS)} (default mnist)",
    )
    parser.add_argument(
        "--sizes",
        type=types.sizes,
        metavar="N-N-...",
        help="layer sizes, input to output, e.g. 784-256-10 (default per "
        "data set: mnist 784-384-10, fashion-mnist 784-256-10, captcha "
        "260-200-200-36, xor 2-4-2)",
    )
    parser.add_argument(
        "--hidden",
        help="hidden activation, or one per hidden layer "
        "separated by commas: sigmoid, tanh, relu, leaky_relu, "
        "identity (default relu; xor tanh)",
    )
    parser.add_argument(
        "--output", help="output activation (default softmax, or sigmoid for one output unit)"
    )
    parser.add_argument(
        "--loss",
        default="cross_entropy",
        help="cross_entropy or squared_error (default cross_entropy)",
    )


def _add_method_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--method",
        type=types.method,
        metavar="NAME",
        help=f"update rule ({', '.join(rules.RULES)}: minibatch SGD with "
        f"--epochs, "
        f"--batch-size, --learning-rate) or scipy method "
        f"({', '.join(SCIPY_METHODS)}: full batch, --maxiter); case-"
        f"insensitive (default momentum; xor L-BFGS-B)",
    )
    parser.add_argument(
        "--epochs",
        type=types.positive_int,
        help="passes over the data (default: the recipe's, flatnn/cli/presets.py; "
        "6 on mnist, 12 on fashion-mnist)",
    )
    parser.add_argument(
        "--batch-size",
        type=types.positive_int,
        help="rows per batch (default: the recipe's; 64 on mnist, 128 on "
        "fashion-mnist and with --preset best)",
    )
    parser.add_argument(
        "--learning-rate",
        type=types.float_in(0, low_open=True),
        help="initial learning rate (default: the recipe's for its own rule: "
        "mnist 0.1, fashion-mnist 0.2, captcha 0.001, --preset best 0.05; "
        "for another --method: sgd 0.1, momentum/nesterov 0.05, "
        "adam/rmsprop 0.001)",
    )
    parser.add_argument(
        "--lr-decay",
        type=types.float_in(0, 1, low_open=True),
        metavar="FACTOR",
        help="multiply the learning rate by FACTOR after each epoch "
        "(default 0.6 on mnist, 0.8 on fashion-mnist, 1 = constant)",
    )
    parser.add_argument(
        "--momentum",
        type=types.float_in(0, 1),
        metavar="BETA",
        help="beta of momentum and nesterov (default 0.9)",
    )
    parser.add_argument(
        "--lam",
        type=types.float_in(0),
        help="L2 strength lam of J = mean loss + lam/(2m) sum of squared "
        "weights (default 5 on mnist and fashion-mnist, 1 on captcha, 0 on "
        "xor and with --preset best)",
    )
    parser.add_argument(
        "--maxiter",
        type=types.positive_int,
        default=200,
        help="iterations of a scipy method (function evaluations for TNC; default 200)",
    )
    parser.add_argument(
        "--seed",
        type=types.seed,
        default=0,
        help="seed of the initial weights and the shuffling (default 0)",
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help="precision of weights and data (default: the recipe's; float32 "
        "except captcha's fast recipe and xor)",
    )


def _add_recipe_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=tuple(presets.PRESETS),
        default="fast",
        help="recipe the defaults come from (flatnn/cli/presets.py): fast (default; "
        "MNIST >= 98%% in well under a minute) or best (the most accurate "
        "recipe found within 10 minutes of training on 2 cores: dropout, "
        "max-norm, translations, cosine schedule; see README)",
    )
    parser.add_argument(
        "--dropout",
        type=types.float_in(0, 1, high_open=True),
        metavar="RATE",
        help="dropout rate of the hidden units, SGD rules only (default 0; best preset 0.3)",
    )
    parser.add_argument(
        "--input-dropout",
        type=types.float_in(0, 1, high_open=True),
        metavar="RATE",
        help="dropout rate of the input units, SGD rules only (default 0; best preset 0.1)",
    )
    parser.add_argument(
        "--max-norm",
        type=types.float_in(0),
        metavar="C",
        help="after each step, cap the norm of every unit's incoming weights "
        "at C; 0 = off (default off; best preset 3.5)",
    )
    parser.add_argument(
        "--augment",
        type=types.float_in(0),
        metavar="PIXELS",
        help="shift each training image by a random whole number of pixels, "
        "up to PIXELS in each direction; square images only, 0 = off "
        "(default off; best preset on mnist 2)",
    )
    parser.add_argument(
        "--schedule",
        choices=("exponential", "cosine"),
        help="learning-rate schedule: exponential (x --lr-decay per epoch; "
        "default) or cosine (half a cosine down to 0 over --epochs)",
    )
    parser.add_argument(
        "--warmup",
        type=types.float_in(0),
        metavar="EPOCHS",
        help="ramp the learning rate up linearly over the first EPOCHS epochs (default 0)",
    )
    parser.add_argument(
        "--train-captchas",
        type=types.positive_int,
        metavar="N",
        help="captcha only: render N captchas (4N characters) for training "
        "(default 400; best preset 32000)",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help=types.DATA_HELP)
    parser.add_argument(
        "--no-download", action="store_true", help="fail instead of downloading missing data files"
    )
    parser.add_argument("--limit", type=types.positive_int, metavar="N", help=types.LIMIT_HELP)
    parser.add_argument(
        "--final-fit",
        action="store_true",
        help="train on training + validation data (no validation curve): "
        "for the final model once the recipe is fixed",
    )
    parser.add_argument(
        "--plot",
        action="store_true",
        help="write the learning curves (cost and accuracy per epoch, training "
        "and validation) as a PNG next to the model (needs matplotlib)",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="where to save the model (default flatnn-<dataset>.npz in the "
        "current folder; checked before training; an existing file is "
        "replaced, and the last line says so)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final result")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: train on an NVIDIA GPU, the data copied there once (the "
        "SGD rules run flatnn.sgd on the GPU, a scipy method runs over "
        "a GPUObjective); needs flatnn[gpu], i.e. CuPy (default cpu)",
    )


def _count_flag(value: float, flag: str) -> int:
    """A whole-number flag parsed as a float (``--augment 2``, ``--warmup 3``)."""
    if value != int(value):
        raise CLIError(f"{flag} takes a whole number, got {value:g}")
    return int(value)


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of a ``flatnn train`` run: the flags laid over ``--preset``'s recipe.

    Returns
    -------
    dict
        Every recipe key (:mod:`flatnn.cli.presets`); ``dtype`` a NumPy dtype.

    Raises
    ------
    CLIError
        A flag that does not apply, naming it (and the preset, where the setting came from it).
    """
    recipe = presets.recipe(args.dataset, args.preset)
    choices = {key: getattr(args, key) for key in _CHOICES}
    for key in ("warmup", "augment"):
        value = getattr(args, key)
        choices[key] = None if value is None else _count_flag(value, "--" + key)
    method = args.method or recipe["method"]
    if args.momentum is not None and method not in ("momentum", "nesterov"):
        raise CLIError(f"--momentum applies to the methods momentum and nesterov, not {method}")
    if args.train_captchas is not None and args.dataset != "captcha":
        raise CLIError(f"--train-captchas applies to --dataset captcha, not {args.dataset}")
    try:
        return recipes.resolve(recipe, choices, presets.RULE_LEARNING_RATES)
    except recipes.NotForThisMethod as exc:
        # name where each setting came from: a flag typed, or the preset's recipe
        named = [
            FLAGS[key]
            if getattr(args, key, None) is not None
            else f"{FLAGS[key]} (from --preset {args.preset})"
            for key in exc.keys
        ]
        raise CLIError(
            f"{', '.join(named)} appl{'ies' if len(named) == 1 else 'y'} to the "
            f"SGD rules ({', '.join(rules.RULES)}), not {exc.method}"
        ) from None
    except ValueError as exc:
        raise CLIError("--" + str(exc).replace("_", "-")) from None


def describe(cfg: dict[str, Any], batch_size: int, maxiter: int, final_fit: bool) -> str:
    """The plan of a run in words: method, epochs, batch, schedule and regularisers."""
    method, epochs = cfg["method"], cfg["epochs"]
    if method in SCIPY_METHODS:
        # TNC counts function evaluations, not iterations
        return f"{method}, {'maxfun' if method == 'TNC' else 'maxiter'} {maxiter}"
    beta = (
        f" {cfg['momentum']:g}"
        if cfg["momentum"] is not None and method in ("momentum", "nesterov")
        else ""
    )
    if cfg["schedule"] == "cosine":
        schedule = " cosine"
    elif cfg["lr_decay"] != 1:
        schedule = f" x {cfg['lr_decay']:g}/epoch"
    else:
        schedule = ""
    return (
        f"{method}{beta}, {epochs} epoch{'s' if epochs > 1 else ''}, batch "
        f"{batch_size}, learning rate {cfg['learning_rate']:g}{schedule}"
        + (f", warm-up {cfg['warmup']}" if cfg["warmup"] else "")
        + (
            f", dropout {cfg['input_dropout']:g}/{cfg['dropout']:g}"
            if cfg["input_dropout"] or cfg["dropout"]
            else ""
        )
        + (f", max-norm {cfg['max_norm']:g}" if cfg["max_norm"] else "")
        + (f", shifts up to {cfg['augment']} px" if cfg["augment"] else "")
        + (", training + validation data" if final_fit else "")
    )
