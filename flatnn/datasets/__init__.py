"""Data sets: MNIST, Fashion-MNIST, captcha characters, XOR, tables of your own; the IDX
reader; one-hot encoding; validation splits and feature scaling.

:func:`load` loads any of them by name, as train, validation and test splits.

Loaders return plain NumPy arrays (never pickles). Where MNIST and
Fashion-MNIST are looked for, verified and downloaded is described in
:mod:`flatnn.datasets.fetch`.
"""

from flatnn.datasets.captcha import CaptchaSet, load_captcha, whole_captcha_accuracy
from flatnn.datasets.idx import read_idx
from flatnn.datasets.labels import one_hot
from flatnn.datasets.mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MIRRORS,
    MNIST_MIRRORS,
    Splits,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
)
from flatnn.datasets.registry import (
    CAPTCHA_HELDOUT,
    CAPTCHA_SPLITS,
    NAMES,
    load,
    load_captcha_heldout,
)
from flatnn.datasets.scaling import SCALINGS, Scaler, fit_scaler
from flatnn.datasets.splits import stratified_split
from flatnn.datasets.tables import Table, read_table
from flatnn.datasets.toy import xor

__all__ = [
    "CAPTCHA_HELDOUT",
    "CAPTCHA_SPLITS",
    "CaptchaSet",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MIRRORS",
    "MNIST_MIRRORS",
    "NAMES",
    "SCALINGS",
    "Scaler",
    "Splits",
    "Table",
    "fit_scaler",
    "load",
    "load_captcha",
    "load_captcha_heldout",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "one_hot",
    "read_idx",
    "read_table",
    "stratified_split",
    "whole_captcha_accuracy",
    "xor",
]
