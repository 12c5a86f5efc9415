"""The objective on a CUDA GPU through CuPy (public face).

The code lives in :mod:`flatnn.backends.gpu_objective`; this module is the
documented import path, ``flatnn.gpu``.
"""

from flatnn.backends.gpu_objective import *  # noqa: F403
from flatnn.backends.gpu_objective import __all__  # noqa: F401
