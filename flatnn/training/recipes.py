"""Training recipes: a table of settings, resolved against a user's choices, and its schedule.

A recipe is a dict whose keys are the training settings (the table of
:mod:`flatnn.cli.presets`): ``sizes, hidden, method, epochs, batch_size,
learning_rate, schedule, lr_decay, warmup, momentum, lam, input_dropout,
dropout, max_norm, augment, train_captchas, dtype``. :func:`resolve` lays the
user's choices over a recipe and checks that the result is one run that can be
made; :func:`learning_rate_schedule` turns its schedule settings into what
:func:`flatnn.sgd` takes as ``learning_rate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from flatnn.training import rules

__all__ = ["SGD_ONLY", "NotForThisMethod", "resolve", "learning_rate_schedule"]

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


def _lr_for(method: str, recipe: Mapping[str, Any], rule_defaults: Mapping[str, Any]) -> Any:
    if method == recipe["method"] or method not in rule_defaults:
        return recipe["learning_rate"]
    return rule_defaults[method]


def resolve(
    recipe: Mapping[str, Any],
    choices: Mapping[str, Any],
    rule_learning_rates: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The settings of one run: ``choices`` (None: not chosen) laid over ``recipe``.

    Parameters
    ----------
    recipe : mapping
        Every setting (the keys of the module docstring).
    choices : mapping
        The user's settings; a missing key or None keeps the recipe's. ``max_norm``
        0 means off (None).
    rule_learning_rates : mapping, optional
        The learning rate of each update rule, used when ``choices`` changes
        the method but not the learning rate.

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
    if choices.get("learning_rate") is None:
        cfg["learning_rate"] = _lr_for(method, recipe, rule_learning_rates or {})
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
    if recipe["schedule"] == "cosine":
        schedule = rules.cosine_decay(lr, epochs)
    elif recipe["lr_decay"] != 1:
        schedule = rules.exponential_decay(lr, recipe["lr_decay"])
    else:
        schedule = lr
    return rules.warmup(schedule, recipe["warmup"]) if recipe["warmup"] else schedule
