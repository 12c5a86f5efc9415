"""Training: the driver, :func:`sgd`, the bridge to :func:`scipy.optimize.minimize`,
update rules, schedules, regularisers and batch transforms.
"""

from flatnn.training.driver import (
    STATUS_DIVERGED,
    STATUS_DONE,
    STATUS_EARLY_STOPPED,
    STATUS_NOT_FINITE,
    STATUS_STOPPED,
)
from flatnn.training.sgd_loop import HESSP_METHODS, SCIPY_METHODS, minimize, sgd

__all__ = [
    "sgd",
    "minimize",
    "SCIPY_METHODS",
    "HESSP_METHODS",
    "STATUS_DONE",
    "STATUS_EARLY_STOPPED",
    "STATUS_NOT_FINITE",
    "STATUS_DIVERGED",
    "STATUS_STOPPED",
]
