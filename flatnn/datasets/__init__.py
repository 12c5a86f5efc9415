"""Data sets: MNIST, Fashion-MNIST, captcha characters, XOR; the IDX reader; one-hot encoding.

Loaders return plain NumPy arrays (never pickles). Where MNIST and
Fashion-MNIST are looked for, verified and downloaded is described in
:mod:`flatnn.datasets.fetch`.
"""

from .captcha import CaptchaSet, load_captcha, whole_captcha_accuracy
from .idx import read_idx
from .labels import one_hot
from .mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MIRRORS,
    MNIST_MIRRORS,
    Splits,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
)
from .toy import xor

__all__ = [
    "CaptchaSet",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MIRRORS",
    "MNIST_MIRRORS",
    "Splits",
    "load_captcha",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "one_hot",
    "read_idx",
    "whole_captcha_accuracy",
    "xor",
]
