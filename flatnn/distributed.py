"""The data-parallel objective on a Dask cluster (public face).

The code lives in :mod:`flatnn.backends.dask_objective`; this module is the
documented import path, ``flatnn.distributed``.
"""

from flatnn.backends.dask_objective import *  # noqa: F403
from flatnn.backends.dask_objective import __all__  # noqa: F401
