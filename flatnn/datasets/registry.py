"""Every data set by name, as train, validation and test splits: :func:`load`."""

from __future__ import annotations

import os

import attrs
import numpy as np
from numpy.typing import DTypeLike

from flatnn.base import checks
from flatnn.datasets import captcha
from flatnn.datasets.captcha import CaptchaSet
from flatnn.datasets.mnist import Splits, load_dataset
from flatnn.datasets.toy import xor

__all__ = ["NAMES", "CAPTCHA_SPLITS", "CAPTCHA_HELDOUT", "load", "load_captcha_heldout"]

NAMES = ("mnist", "fashion-mnist", "captcha", "xor")
"""The names :func:`load` takes."""

CAPTCHA_SPLITS = {"train": (1, 400), "val": (2, 50), "test": (3, 100)}
"""Captcha splits: ``split -> (rng seed, number of captchas)``; fixed, so that every
run (and every saved model) sees the same sets: 4 characters per captcha. ``load``'s
``train_captchas`` renders more (or fewer) training captchas from the same seed."""

CAPTCHA_HELDOUT = (4, 2500)
"""Held-out captchas: ``(rng seed, number of captchas)``. No split uses this seed, and no
recipe was tuned on these captchas: :func:`load_captcha_heldout` renders them for the
character and whole-captcha accuracy that ``flatnn train --dataset captcha`` reports."""

_SPLITS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def load(
    name: str,
    *,
    path: str | os.PathLike | None = None,
    download: bool = True,
    dtype: DTypeLike = np.float64,
    limit: int | None = None,
    train: bool = True,
    train_captchas: int | None = None,
) -> Splits:
    """Load a data set by name, as its train, validation and test splits.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist", "captcha", "xor"}
        ``mnist`` and ``fashion-mnist`` are read from files (see
        :func:`flatnn.datasets.load_mnist`, 10000 training images held out for
        validation); ``captcha`` is rendered with the fixed seeds of
        :data:`CAPTCHA_SPLITS` (needs ``flatnn[captcha]``); ``xor`` is its
        four points in every split.
    path : str or path-like, optional
        Where the files of ``mnist`` and ``fashion-mnist`` are (DIR or
        DIR/<name>); the generated sets take none.
    download : bool, default True
        Whether missing MNIST / Fashion-MNIST files may be downloaded.
    dtype : float32 or float64
        dtype of every ``X``.
    limit : int, optional
        Keep only the first ``limit`` rows of every split (for ``captcha``, only
        the first ``ceil(limit / 4)`` captchas of each split are rendered).
    train : bool, default True
        False reads only the test split of MNIST and Fashion-MNIST (the train
        and validation splits are then empty), so that evaluating works with
        just the test files.
    train_captchas : int, optional
        ``captcha`` only: the number of captchas rendered for the training
        split, from its seed (default ``CAPTCHA_SPLITS["train"][1]``, 400); the
        first ``n`` captchas are the same for every ``train_captchas >= n``.

    Returns
    -------
    Splits
        ``X_*`` of shape (m, n_features) and ``dtype``, ``y_*`` int (m,),
        ``name`` and ``class_names``.

    Raises
    ------
    ValueError
        For an unknown name, a ``path`` given for a generated set, or bad data.
    FileNotFoundError
        When MNIST's files are missing and cannot be downloaded.
    ImportError
        When ``captcha`` lacks its optional packages.
    """
    dtype = checks.float_dtype(dtype)
    if limit is not None:
        limit = checks.integer(limit, "limit", 1)
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(NAMES)}")
    if train_captchas is not None:
        train_captchas = checks.integer(train_captchas, "train_captchas", 1)
        if name != "captcha":
            raise ValueError(f"train_captchas applies to captcha, not {name}")
    if path is not None and name not in ("mnist", "fashion-mnist"):
        raise ValueError(
            f"path applies to mnist and fashion-mnist; {name} is generated, not read from files"
        )
    if name in ("mnist", "fashion-mnist"):
        splits = load_dataset(name, path, download=download, dtype=dtype, train=train)
    elif name == "captcha":
        splits = _captcha_splits(dtype, train_captchas, limit)
    else:
        X, y = xor()
        X = X.astype(dtype, copy=False)
        parts = {"X_" + k: X for k in ("train", "val", "test")}
        parts.update({"y_" + k: y for k in ("train", "val", "test")})
        splits = Splits(**parts, name=name, class_names=("0", "1"))
    if limit is not None:
        splits = attrs.evolve(splits, **{k: getattr(splits, k)[:limit] for k in _SPLITS})
    return splits


def _captcha_splits(dtype: DTypeLike, train_captchas: int | None, limit: int | None) -> Splits:
    parts = {}
    for split, (seed, n) in CAPTCHA_SPLITS.items():
        if split == "train" and train_captchas is not None:
            n = train_captchas
        if limit is not None:
            # the first captchas of a seed do not depend on how many are rendered:
            # ceil(limit / 4) of them hold the first `limit` characters
            n = min(n, -(-limit // captcha.CHARS_PER_CAPTCHA))
        s = captcha.load_captcha(n, rng=seed)
        parts["X_" + split] = s.X.astype(dtype, copy=False)
        parts["y_" + split] = s.y
    return Splits(**parts, name="captcha", class_names=s.class_names)


def load_captcha_heldout(
    n_captchas: int | None = None, *, dtype: DTypeLike = np.float64
) -> CaptchaSet:
    """The held-out captchas of :data:`CAPTCHA_HELDOUT`, rendered with a seed no split uses.

    Parameters
    ----------
    n_captchas : int, optional
        How many (default ``CAPTCHA_HELDOUT[1]``, 2500: 10000 characters); the
        first ``n`` are the same for every larger count.
    dtype : float32 or float64
        dtype of ``X``.

    Returns
    -------
    CaptchaSet
        ``X (4 * n_captchas, 260)``, ``y (4 * n_captchas,)``, ``texts``: score
        whole captchas with :func:`flatnn.datasets.whole_captcha_accuracy`.
    """
    dtype = checks.float_dtype(dtype)
    seed, default = CAPTCHA_HELDOUT
    n = default if n_captchas is None else checks.integer(n_captchas, "n_captchas", 1)
    s = captcha.load_captcha(n, rng=seed)
    return attrs.evolve(s, X=s.X.astype(dtype, copy=False))
