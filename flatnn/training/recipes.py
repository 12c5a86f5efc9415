"""Training recipes: a table of settings, resolved against a user's choices, and its schedule.

A recipe is a dict whose keys are the training settings (the table of
:mod:`flatnn.cli.presets`): ``sizes, hidden, method, epochs, batch_size,
learning_rate, schedule, lr_decay, warmup, momentum, lam, input_dropout,
dropout, max_norm, augment, train_captchas, dtype``. :func:`resolve` lays the
user's choices over a recipe and checks that the result is one run that can be
made; :func:`learning_rate_schedule` turns its schedule settings into what
:func:`flatnn.sgd` takes as ``learning_rate``. Recipes are stored as TOML
(:func:`read_toml`, :func:`to_toml`): TOML has no null, so a setting that is off
(None) is left out.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import numpy as np

from flatnn.training import rules

__all__ = [
    "SGD_ONLY",
    "NotForThisMethod",
    "resolve",
    "learning_rate_schedule",
    "parse_toml",
    "read_toml",
    "to_toml",
]

SGD_ONLY = ("input_dropout", "dropout", "max_norm", "augment", "warmup", "schedule")
"""Settings that only the SGD rules use (``schedule`` only when it is ``"cosine"``)."""


class NotForThisMethod(ValueError):
    """Settings that only the SGD rules use were chosen for a scipy method.

    Attributes
    ----------
    keys : tuple of str
        The settings in question, in :data:`SGD_ONLY` order.
    method : str
        The scipy method.
    """

    def __init__(self, keys: tuple[str, ...], method: str) -> None:
        self.keys = keys
        self.method = method
        super().__init__(
            f"{', '.join(keys)} appl{'ies' if len(keys) == 1 else 'y'} to the SGD rules "
            f"({', '.join(rules.RULES)}), not {method}"
        )


def resolve(
    recipe: Mapping[str, Any],
    choices: Mapping[str, Any],
    rule_defaults: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The settings of one run: ``choices`` (None: not chosen) laid over ``recipe``.

    Parameters
    ----------
    recipe : mapping
        Every setting (the keys of the module docstring).
    choices : mapping
        The user's settings; a missing key or None keeps the recipe's. ``max_norm``
        0 means off (None).
    rule_defaults : mapping, optional
        ``method -> settings`` (a learning rate, a schedule): used when ``choices``
        changes the recipe's method, for each of those settings not chosen.

    Returns
    -------
    dict
        Every setting; ``dtype`` as a :class:`numpy.dtype`.

    Raises
    ------
    ValueError
        ``momentum`` chosen for a rule without one; a dropout rate not in [0, 1).
    NotForThisMethod
        SGD-only settings with a scipy method.
    """
    cfg = dict(recipe)
    cfg.update({k: v for k, v in choices.items() if v is not None})
    method = cfg["method"]
    if method != recipe["method"]:
        own = (rule_defaults or {}).get(method, {})
        cfg.update({k: v for k, v in own.items() if choices.get(k) is None})
    if choices.get("momentum") is not None and method not in ("momentum", "nesterov"):
        raise ValueError(f"momentum applies to the methods momentum and nesterov, not {method}")
    if choices.get("max_norm") is not None:
        cfg["max_norm"] = choices["max_norm"] or None
    cfg["dtype"] = np.dtype(cfg["dtype"])
    for key in ("input_dropout", "dropout"):
        if not 0 <= cfg[key] < 1:
            raise ValueError(f"{key} must be a rate in [0, 1), got {cfg[key]:g}")
    if method not in rules.RULES:
        used = tuple(
            key
            for key in SGD_ONLY
            if (cfg[key] == "cosine" if key == "schedule" else bool(cfg[key]))
        )
        if used:
            raise NotForThisMethod(used, method)
    return cfg


def learning_rate_schedule(recipe: Mapping[str, Any]) -> Any:
    """The learning rate :func:`flatnn.sgd` takes: a number or a schedule.

    ``schedule="cosine"``: half a cosine from ``learning_rate`` down to 0 over
    ``epochs``; otherwise ``learning_rate * lr_decay**epoch`` (a constant when
    ``lr_decay`` is 1); either behind a linear warm-up of ``warmup`` epochs.

    Parameters
    ----------
    recipe : mapping
        Resolved settings (``learning_rate, epochs, schedule, lr_decay, warmup``).

    Returns
    -------
    float or schedule
    """
    lr, epochs = recipe["learning_rate"], recipe["epochs"]
    schedule: Any  # a number, or one of the rules' schedule objects
    if recipe["schedule"] == "cosine":
        schedule = rules.cosine_decay(lr, epochs)
    elif recipe["lr_decay"] != 1:
        schedule = rules.exponential_decay(lr, recipe["lr_decay"])
    else:
        schedule = lr
    return rules.warmup(schedule, recipe["warmup"]) if recipe["warmup"] else schedule


def parse_toml(text: str, source: str = "<string>") -> dict[str, Any]:
    """The tables of a TOML document, its syntax errors as a ValueError naming ``source``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source} is not valid TOML: {exc}") from None


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file (a recipe, a ``--config`` file).

    Raises
    ------
    ValueError
        When the file is not UTF-8 TOML (the message names the file and where).
    OSError
        When it cannot be read.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{os.fspath(path)} is not UTF-8 text: {exc}") from None
    return parse_toml(text, os.fspath(path))


def _toml_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{key} = {value} cannot be written to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's string escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(key, v) for v in value) + "]"
    raise TypeError(f"{key} = {value!r}: a {type(value).__name__} cannot be written to TOML")


def to_toml(settings: Mapping[str, Any], header: str = "") -> str:
    """Settings as a flat TOML table, one ``key = value`` line each; None values left out.

    Parameters
    ----------
    settings : mapping
        Numbers, strings, booleans and lists of them; a NumPy dtype is written by name.
    header : str, optional
        Comment lines put first (each prefixed with ``# ``).

    Returns
    -------
    str
        Text that :func:`parse_toml` reads back to the same values (tuples as lists).
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for key, value in settings.items():
        if value is None:
            continue
        if isinstance(value, np.dtype):
            value = value.name
        elif isinstance(value, np.generic):
            value = value.item()
        lines.append(f"{key} = {_toml_value(key, value)}")
    return "\n".join(lines) + "\n"
