"""Batch transforms for :func:`flatnn.sgd`, such as random shifts (public face).

The code lives in :mod:`flatnn.training.transforms`; this module is the
documented import path, ``flatnn.augment``.
"""

from flatnn.training.transforms import *  # noqa: F403
from flatnn.training.transforms import __all__  # noqa: F401
