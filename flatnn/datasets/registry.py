"""Every data set by name, as train, validation and test splits: :func:`load`."""

from __future__ import annotations

import attrs
import numpy as np

from .. import _checks
from . import captcha
from .mnist import Splits, load_dataset
from .toy import xor

__all__ = ["NAMES", "CAPTCHA_SPLITS", "load"]

NAMES = ("mnist", "fashion-mnist", "captcha", "xor")
"""The names :func:`load` takes."""

CAPTCHA_SPLITS = {"train": (1, 400), "val": (2, 50), "test": (3, 100)}
"""Captcha splits: ``split -> (rng seed, number of captchas)``; fixed, so that every
run (and every saved model) sees the same sets: 4 characters per captcha."""

_SPLITS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def load(name, *, path=None, download=True, dtype=np.float64, limit=None, train=True):
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
        Keep only the first ``limit`` rows of every split.
    train : bool, default True
        False reads only the test split of MNIST and Fashion-MNIST (the train
        and validation splits are then empty), so that evaluating works with
        just the test files.

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
    dtype = _checks.float_dtype(dtype)
    if limit is not None:
        limit = _checks.integer(limit, "limit", 1)
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(NAMES)}")
    if path is not None and name not in ("mnist", "fashion-mnist"):
        raise ValueError(f"path applies to mnist and fashion-mnist; {name} is generated, "
                         f"not read from files")
    if name in ("mnist", "fashion-mnist"):
        splits = load_dataset(name, path, download=download, dtype=dtype, train=train)
    elif name == "captcha":
        parts = {}
        for split, (seed, n) in CAPTCHA_SPLITS.items():
            s = captcha.load_captcha(n, rng=seed)
            parts["X_" + split] = s.X.astype(dtype, copy=False)
            parts["y_" + split] = s.y
        splits = Splits(**parts, name=name, class_names=s.class_names)
    else:
        X, y = xor()
        X = X.astype(dtype, copy=False)
        splits = Splits(X_train=X, y_train=y, X_val=X, y_val=y, X_test=X, y_test=y,
                        name=name, class_names=("0", "1"))
    if limit is not None:
        splits = attrs.evolve(splits, **{k: getattr(splits, k)[:limit] for k in _SPLITS})
    return splits
