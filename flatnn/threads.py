"""How many threads flatnn's evaluations use (public face).

The code lives in :mod:`flatnn.base.threads`; this module is the documented
import path, ``flatnn.threads``.
"""

from flatnn.base.threads import *  # noqa: F403
from flatnn.base.threads import __all__  # noqa: F401
