"""Training recipes: the per-data-set defaults of ``flatnn train`` and its presets.

The presets are TOML files beside this module (``fast.toml``, ``best.toml``;
``rules.toml`` holds each update rule's own settings), read once at import.
``PRESETS[preset][dataset]`` is a dict whose every key is a ``flatnn train`` flag
(an explicit flag, or a key of a ``--config`` file, wins over it):

================  ============================================================
key               meaning
================  ============================================================
sizes             layer sizes, input to output
hidden            hidden activation
method            update rule or scipy method
epochs            passes over the data
batch_size        rows per batch
learning_rate     initial learning rate
schedule          "exponential" (× lr_decay per epoch) or "cosine" (to 0 over the run)
lr_decay          factor per epoch of the exponential schedule
warmup            epochs of linear warm-up in front of the schedule (0: none)
momentum          beta of momentum / nesterov (None: the rule's default, 0.9)
lam               L2 strength
input_dropout     dropout rate of the input units (0: off)
dropout           dropout rate of every hidden layer's units (0: off)
max_norm          radius of the incoming-weight constraint (None: off)
augment           random translation of the images by up to this many pixels (0: off)
train_captchas    captcha only: captchas rendered for training (None: the split's 400)
dtype             float32 or float64
================  ============================================================

``fast`` is the default: the measured main job (MNIST >= 98 % in well under a
minute). ``best`` is the most accurate plain-MLP recipe found for that data set
within 10 minutes of training on the 2-core reference machine; xor has no tuned
``best`` and uses ``fast``. The figures each recipe reached are in the TOML files'
comments and in README.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from flatnn.training import recipes

__all__ = ["PRESETS", "DEFAULTS", "RULE_DEFAULTS", "PLAIN", "recipe", "preset_names"]

PLAIN: dict[str, Any] = dict(
    schedule="exponential",
    warmup=0,
    momentum=None,
    input_dropout=0.0,
    dropout=0.0,
    max_norm=None,
    augment=0,
    train_captchas=None,
)
"""The value of every key a preset's table leaves out."""


def _read(name: str) -> dict[str, Any]:
    text = resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return recipes.parse_toml(text, f"flatnn/cli/presets/{name}.toml")


def _preset(name: str) -> dict[str, dict[str, Any]]:
    tables = _read(name)
    base = tables.pop("base", None)
    if base is not None:
        under = _preset(base)
        return {dataset: dict(cfg, **tables.get(dataset, {})) for dataset, cfg in under.items()}
    return {dataset: dict(PLAIN, **cfg) for dataset, cfg in tables.items()}


def _as_python(table: dict[str, Any]) -> dict[str, Any]:
    # TOML arrays are lists; a recipe's sizes are a tuple, as --sizes gives them
    return {k: tuple(v) if k == "sizes" else v for k, v in table.items()}


def preset_names() -> tuple[str, ...]:
    """The presets shipped with flatnn, ``fast`` first."""
    return ("fast", "best")


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    name: {dataset: _as_python(cfg) for dataset, cfg in _preset(name).items()}
    for name in preset_names()
}

DEFAULTS = PRESETS["fast"]
"""The ``fast`` preset: what ``flatnn train`` does with no flags."""

RULE_DEFAULTS: dict[str, dict[str, Any]] = _read("rules")
"""Settings of each update rule, used when ``--method`` changes the recipe's rule and the
setting is not chosen: its learning rate, and for Adam and RMSprop a constant schedule
(the SGD rules keep the recipe's)."""


def recipe(dataset: str, preset: str = "fast") -> dict[str, Any]:
    """The recipe (a new dict, see the table above) of ``preset`` for ``dataset``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
    table = PRESETS[preset]
    if dataset not in table:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(table)}")
    return dict(table[dataset])
