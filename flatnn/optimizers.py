"""Update rules and learning-rate schedules for :func:`flatnn.sgd` (public face).

The code lives in :mod:`flatnn.training.rules`; this module is the documented
import path, ``flatnn.optimizers``.
"""

from flatnn.training.rules import *  # noqa: F403
from flatnn.training.rules import __all__  # noqa: F401
