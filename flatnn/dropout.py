"""Dropout masks and the max-norm constraint (public face).

The code lives in :mod:`flatnn.training.regularizers`; this module is the
documented import path, ``flatnn.dropout``.
"""

from flatnn.training.regularizers import *  # noqa: F403
from flatnn.training.regularizers import __all__  # noqa: F401
