"""Training recipes: the per-data-set defaults of ``flatnn train`` and its presets.

One table a reader can find. ``PRESETS[preset][dataset]`` is a dict whose every
key is a ``flatnn train`` flag (an explicit flag wins over it):

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
``best`` and uses ``fast``. The figures each recipe reached are in the comments
and in README.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "DEFAULTS", "RULE_LEARNING_RATES", "recipe"]

_PLAIN = dict(
    schedule="exponential",
    warmup=0,
    momentum=None,
    input_dropout=0.0,
    dropout=0.0,
    max_norm=None,
    augment=0,
    train_captchas=None,
)

DEFAULTS = {
    # measured: test 98.22 / 98.22 / 98.13 % for seeds 0 / 1 / 2, 8.5-12 s of training
    "mnist": dict(
        _PLAIN,
        sizes=(784, 384, 10),
        hidden="relu",
        method="momentum",
        epochs=6,
        batch_size=64,
        learning_rate=0.1,
        lr_decay=0.6,
        lam=5.0,
        dtype="float32",
    ),
    "fashion-mnist": dict(
        _PLAIN,
        sizes=(784, 256, 10),
        hidden="relu",
        method="momentum",
        epochs=12,
        batch_size=128,
        learning_rate=0.2,
        lr_decay=0.8,
        lam=5.0,
        dtype="float32",
    ),
    "captcha": dict(
        _PLAIN,
        sizes=(260, 200, 200, 36),
        hidden="relu",
        method="adam",
        epochs=60,
        batch_size=32,
        learning_rate=0.001,
        lr_decay=1.0,
        lam=1.0,
        dtype="float64",
    ),
    "xor": dict(
        _PLAIN,
        sizes=(2, 4, 2),
        hidden="tanh",
        method="L-BFGS-B",
        epochs=500,
        batch_size=4,
        learning_rate=0.5,
        lr_decay=1.0,
        lam=0.0,
        dtype="float64",
    ),
}
"""The ``fast`` preset: what ``flatnn train`` does with no flags."""

_BEST = {
    # After Srivastava et al. 2014 (ReLU, dropout, max-norm 3.5, momentum 0.9) plus random
    # translations by up to 2 pixels and a cosine schedule; lighter dropout (0.1 input, 0.3
    # hidden) than the paper's 0.2 / 0.5 because the translations regularize as well.
    # measured: test 99.09 %, validation 98.95 %, 143 s of training (30 epochs, seed 0)
    "mnist": dict(
        DEFAULTS["mnist"],
        sizes=(784, 1024, 1024, 10),
        epochs=30,
        batch_size=128,
        learning_rate=0.05,
        schedule="cosine",
        lr_decay=1.0,
        warmup=0,
        momentum=0.9,
        lam=0.0,
        input_dropout=0.1,
        dropout=0.3,
        max_norm=3.5,
        augment=2,
    ),
    # The same network and tools without translations, twice the epochs: dropout 0.2 / 0.5
    # over 30 epochs underfit (87.95 % test, validation cost = training cost).
    # measured: test 90.14 %, validation 90.36 %, 258 s of training (60 epochs, seed 0)
    "fashion-mnist": dict(
        DEFAULTS["fashion-mnist"],
        sizes=(784, 1024, 1024, 10),
        epochs=60,
        batch_size=128,
        learning_rate=0.05,
        schedule="cosine",
        lr_decay=1.0,
        warmup=0,
        momentum=0.9,
        lam=0.0,
        input_dropout=0.1,
        dropout=0.3,
        max_norm=3.5,
        augment=0,
    ),
    # Captcha characters are cheap to render (about 2 ms a captcha), so `best` renders 80 times
    # the split's 400 training captchas and trains the MNIST tools (no translations: the cells
    # are 20 x 13) on them. Held-out captchas (seed 4, 2500 captchas), characters / whole:
    # fast 98.02 / 93.48 %; this network on 2000 captchas 99.18 / 97.48 % (6 s of training),
    # 8000: 99.40 / 98.12 % (24 s), 32000: 99.60 / 98.80 % (69 s), 96000 (15 epochs):
    # 99.69 / 98.92 % (164 s, plus about 3 minutes of rendering): within noise of 32000, as is
    # 260-1024-1024-36 on 32000 (99.61 / 98.80 %, 171 s). Log: best_captcha_sizes.log.
    "captcha": dict(
        DEFAULTS["captcha"],
        sizes=(260, 512, 512, 36),
        method="momentum",
        epochs=20,
        batch_size=128,
        learning_rate=0.05,
        schedule="cosine",
        lr_decay=1.0,
        warmup=0,
        momentum=0.9,
        lam=0.0,
        input_dropout=0.1,
        dropout=0.3,
        max_norm=3.5,
        augment=0,
        dtype="float32",
        train_captchas=32000,
    ),
}

PRESETS = {
    "fast": DEFAULTS,
    "best": {name: _BEST.get(name, cfg) for name, cfg in DEFAULTS.items()},
}

RULE_LEARNING_RATES = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adam": 0.001,
    "rmsprop": 0.001,
}
"""Learning rates used when ``--method`` changes the rule but ``--learning-rate`` is not given."""


def recipe(dataset: str, preset: str = "fast") -> dict[str, Any]:
    """The recipe (a new dict, see the table above) of ``preset`` for ``dataset``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
    table = PRESETS[preset]
    if dataset not in table:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(table)}")
    return dict(table[dataset])
