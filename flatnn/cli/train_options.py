"""The options of ``flatnn train``, and their resolution against the chosen preset.

Every default of ``flatnn train`` comes from a recipe (:mod:`flatnn.cli.presets`);
a flag given on the command line wins over it. The resolution itself is the
library's (:func:`flatnn.training.recipes.resolve`); this module names the flags
in its errors, saying which setting came from the preset rather than a flag.
"""

from __future__ import annotations

import argparse
from typing import Any

from flatnn.cli import common, presets
from flatnn.cli import parser as types
from flatnn.cli.parser import CLIError
from flatnn.training import SCIPY_METHODS, recipes, rules

__all__ = [
    "RUN_DEFAULTS",
    "CONFIG_KEYS",
    "add_arguments",
    "complete",
    "resolve",
    "settings",
    "describe",
    "schedule_origin",
]

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


RUN_DEFAULTS = {
    "dataset": "mnist",
    "preset": "fast",
    "loss": "cross_entropy",
    "maxiter": 200,
    "seed": 0,
}
"""Defaults of the settings outside the recipe (None on the parser, so that a --config
file can tell a flag that was given from one that was not)."""

TABLE_KEYS = ("data", "target", "task", "val_split", "val", "test", "scale")
"""The settings of a run on your own table (``--data FILE`` and its options)."""

CONFIG_KEYS = (*RUN_DEFAULTS, "output", *_CHOICES, "warmup", "augment", *TABLE_KEYS)
"""The keys a --config file may hold: every setting of a run."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every option of ``flatnn train`` to ``parser``."""
    _add_network_options(parser)
    _add_method_options(parser)
    _add_recipe_options(parser)
    _add_run_options(parser)


# recipe key -> add_argument's settings; "{presets}" in the help stands for presets.values_text(key)
_RECIPE_FLAGS: dict[str, dict[str, Any]] = {
    "epochs": dict(type=types.positive_int, help="passes over the data (default {presets})"),
    "batch_size": dict(type=types.positive_int, help="rows per batch (default {presets})"),
    "learning_rate": dict(
        type=types.float_in(0, low_open=True),
        help="initial learning rate (default: the preset's for its own rule, {presets}; "
        "for another --method, that rule's own: {rules})",
    ),
    "lr_decay": dict(
        type=types.float_in(0, 1, low_open=True),
        metavar="FACTOR",
        help="multiply the learning rate by FACTOR after each epoch of the exponential "
        "schedule (default {presets}; 1 = constant, the default of adam and rmsprop when "
        "--method changes the recipe's rule)",
    ),
    "momentum": dict(
        type=types.float_in(0, 1),
        metavar="BETA",
        help="beta of momentum and nesterov (default 0.9)",
    ),
    "lam": dict(
        type=types.float_in(0),
        help="L2 strength lam of J = mean loss + lam/(2m) sum of squared weights "
        "(default {presets}; xor 0)",
    ),
    "dropout": dict(
        type=types.float_in(0, 1, high_open=True),
        metavar="RATE",
        help="dropout rate of the hidden units, SGD rules only (default {presets})",
    ),
    "input_dropout": dict(
        type=types.float_in(0, 1, high_open=True),
        metavar="RATE",
        help="dropout rate of the input units, SGD rules only (default {presets})",
    ),
    "max_norm": dict(
        type=types.float_in(0),
        metavar="C",
        help="after each step, cap the norm of every unit's incoming weights at C; "
        "0 = off (default {presets})",
    ),
    "augment": dict(
        type=types.float_in(0),
        metavar="PIXELS",
        help="shift each training image by a random whole number of pixels, up to PIXELS "
        "in each direction; square images only, 0 = off (default {presets})",
    ),
    "schedule": dict(
        choices=("exponential", "cosine"),
        help="learning-rate schedule: exponential (x --lr-decay per epoch) or cosine "
        "(half a cosine down to 0 over --epochs) (default {presets})",
    ),
    "warmup": dict(
        type=types.float_in(0),
        metavar="EPOCHS",
        help="ramp the learning rate up linearly over the first EPOCHS epochs (default 0)",
    ),
    "train_captchas": dict(
        type=types.positive_int,
        metavar="N",
        help="captcha only: render N captchas (4N characters) for training (default {presets})",
    ),
}


def _add_recipe_flags(parser: argparse.ArgumentParser, keys: tuple[str, ...]) -> None:
    for key in keys:
        settings = dict(_RECIPE_FLAGS[key])
        datasets = ("captcha",) if key == "train_captchas" else None
        settings["help"] = settings["help"].format(
            presets=presets.values_text(key, datasets), rules=presets.rule_rates_text()
        )
        parser.add_argument("--" + key.replace("_", "-"), **settings)


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        type=types.dataset,
        help=f"one of {', '.join(types.DATASETS)} (default mnist)",
    )
    parser.add_argument(
        "--sizes",
        type=types.sizes,
        metavar="N-N-...",
        help="layer sizes, input to output, e.g. 784-256-10 (default per data set: "
        f"{presets.values_text('sizes', tuple(presets.DEFAULTS), ('fast',))})",
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
    _add_recipe_flags(parser, ("epochs", "batch_size", "learning_rate", "lr_decay"))
    _add_recipe_flags(parser, ("momentum", "lam"))
    parser.add_argument(
        "--maxiter",
        type=types.positive_int,
        help="iterations of a scipy method (function evaluations for TNC; default 200)",
    )
    parser.add_argument(
        "--seed",
        type=types.seed,
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
        help="recipe the defaults come from (flatnn/cli/presets/*.toml): fast (default; "
        "MNIST >= 98%% in well under a minute) or best (the most accurate "
        "recipe found within 10 minutes of training on 2 cores: dropout, "
        "max-norm, translations, cosine schedule; see README)",
    )
    _add_recipe_flags(parser, ("dropout", "input_dropout", "max_norm", "augment"))
    _add_recipe_flags(parser, ("schedule", "warmup", "train_captchas"))


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="read settings from a TOML file of 'key = value' lines (keys: the flags "
        "above with underscores, e.g. learning_rate = 0.05): they win over the preset, "
        "a flag on the command line wins over them",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved settings as TOML (for --config) and exit without training",
    )
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
        nargs="?",
        const=True,
        metavar="FILE",
        help="write the learning curves (cost and accuracy per epoch, training "
        "and validation) as a PNG: to FILE, or next to the model (its name with "
        ".png), which must not exist yet (needs matplotlib)",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="where to save the model (default flatnn-<dataset>.npz in the "
        "current folder, which must not exist yet); checked before training; "
        "an existing file named here is replaced, and the last line says so",
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


def _named(args: argparse.Namespace, key: str) -> str:
    """A setting's flag, and where it came from unless typed: the --config file or the preset."""
    if key in args.config_keys:
        return f"{FLAGS[key]} (from --config {args.config})"
    if getattr(args, key, None) is not None:
        return FLAGS[key]
    return f"{FLAGS[key]} (from --preset {args.preset})"


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
    complete(args)
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
        return recipes.resolve(recipe, choices, presets.RULE_DEFAULTS)
    except recipes.NotForThisMethod as exc:
        # name where each setting came from: a flag typed, or the preset's recipe
        named = [_named(args, key) for key in exc.keys]
        raise CLIError(
            f"{', '.join(named)} appl{'ies' if len(named) == 1 else 'y'} to the "
            f"SGD rules ({', '.join(rules.RULES)}), not {exc.method}"
        ) from None
    except ValueError as exc:
        raise CLIError("--" + str(exc).replace("_", "-")) from None


def schedule_origin(args: argparse.Namespace, cfg: dict[str, Any]) -> str | None:
    """The rule whose own schedule the run uses instead of the recipe's, if any."""
    recipe = presets.recipe(args.dataset, args.preset)
    own = presets.RULE_DEFAULTS.get(cfg["method"], {})
    chosen = args.lr_decay is not None or args.schedule is not None
    if cfg["method"] == recipe["method"] or chosen or "lr_decay" not in own:
        return None
    return str(cfg["method"])


def describe(
    cfg: dict[str, Any],
    batch_size: int,
    maxiter: int,
    final_fit: bool,
    schedule_from: str | None = None,
) -> str:
    """The plan of a run in words: method, epochs, batch, schedule and regularisers.

    ``schedule_from`` names the rule whose default schedule replaced the recipe's.
    """
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
        schedule = " constant"
    if schedule_from is not None:
        schedule += f" ({schedule_from}'s default schedule)"
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


def _config_text(key: str, value: Any) -> str:
    """A --config value as the text its flag would take."""
    if key == "sizes" and isinstance(value, list):
        return "-".join(str(v) for v in value)
    if key == "hidden" and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, (bool, list, dict)):
        raise ValueError(f"expected a {'number' if key != 'hidden' else 'name'}, got {value!r}")
    return str(value)


def _config_value(parser: argparse.ArgumentParser, path: str, key: str, value: Any) -> Any:
    """A --config value checked as its flag is: parsed by the command's own parser."""
    flag = "--" + key.replace("_", "-")
    try:
        parsed = parser.parse_args([flag, _config_text(key, value)])
    except (ValueError, CLIError) as exc:
        text = str(exc).replace(f" (see '{parser.prog} --help')", "")
        raise CLIError(f"--config {path}: {key}: {text}") from None
    return getattr(parsed, key)


def complete(
    args: argparse.Namespace, parser: argparse.ArgumentParser | None = None
) -> argparse.Namespace:
    """Fill what the command line left out: from ``--config``, then the run defaults.

    ``parser`` holds every option of the command (it checks the file's values as it
    checks flags); by default, those of :func:`add_arguments`. Sets
    ``args.config_keys`` to the settings that came from the file.
    """
    if hasattr(args, "config_keys"):  # done already
        return args
    if getattr(args, "data", None) is not None and args.dataset is not None:
        raise CLIError(
            f"--data {args.data} and --dataset {args.dataset} name two training sets; give one"
        )
    args.config_keys = ()
    if args.config is not None:
        if parser is None:
            parser = types.ArgumentParser(prog="flatnn train", add_help=False)
            add_arguments(parser)
        try:
            table = recipes.read_toml(args.config)
        except (OSError, ValueError) as exc:
            raise CLIError(f"--config: {common.message(exc)}") from None
        unknown = [key for key in table if key not in CONFIG_KEYS]
        if unknown:
            raise CLIError(
                f"--config {args.config}: unknown setting{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)}; expected some of {', '.join(CONFIG_KEYS)}"
            )
        given = []
        for key, value in table.items():
            if getattr(args, key, None) is None:
                setattr(args, key, _config_value(parser, args.config, key, value))
                given.append(key)
        args.config_keys = tuple(given)
    for key, value in RUN_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if hasattr(args, "scale") and args.scale is None:
        args.scale = "standard"
    method = args.method or presets.recipe(args.dataset, args.preset)["method"]
    if "momentum" in args.config_keys and method not in ("momentum", "nesterov"):
        # a run record states the recipe's beta whatever the rule; it does not apply
        args.momentum = None
    return args


def settings(args: argparse.Namespace, cfg: dict[str, Any]) -> dict[str, Any]:
    """Every setting of the run, as a --config file states them (None: left out)."""
    run = {key: getattr(args, key) for key in (*RUN_DEFAULTS, "output")}
    if getattr(args, "data", None) is not None:
        run.update({key: getattr(args, key, None) for key in TABLE_KEYS})
    recipe = dict(cfg)
    if recipe["max_norm"] is None:
        recipe["max_norm"] = 0  # the flag's "off", so that the preset's value does not return
    if recipe["method"] not in ("momentum", "nesterov"):
        recipe["momentum"] = None
    if recipe["method"] in SCIPY_METHODS:
        for key in ("epochs", "batch_size", "learning_rate", "lr_decay", "schedule"):
            recipe[key] = None
        for key in ("warmup", "input_dropout", "dropout", "max_norm", "augment"):
            recipe[key] = None
    else:
        run["maxiter"] = None
    return {**run, **{key: recipe[key] for key in CONFIG_KEYS if key in recipe}}
