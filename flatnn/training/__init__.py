"""Training: the driver, :func:`sgd`, the bridge to :func:`scipy.optimize.minimize`,
update rules, schedules, regularisers and batch transforms.

==================  ==============================================================
module              what it holds
==================  ==============================================================
``driver``          history, validation, best iterate, callbacks, statuses
``sgd_loop``        :func:`sgd`: a short loop over named steps
``sgd_options``     :func:`sgd`'s data and options, checked once
``batches``         the batches of an epoch (order, gather or permuted copy, transform)
``step``            the SGD batch step (cost and gradient of one batch)
``scipy_bridge``    :func:`minimize`: ``scipy.optimize.minimize`` on the objective
``rules``           update rules (sgd, momentum, nesterov, adam, rmsprop)
``schedules``       learning-rate schedules
``regularizers``    dropout masks and max-norm
``transforms``      batch transforms (data augmentation)
``recipes``         recipes (tables of settings) resolved against a user's choices
==================  ==============================================================
"""

from __future__ import annotations

from flatnn.training.driver import (
    STATUS_DIVERGED,
    STATUS_DONE,
    STATUS_EARLY_STOPPED,
    STATUS_NOT_FINITE,
    STATUS_STOPPED,
)
from flatnn.training.scipy_bridge import HESSP_METHODS, SCIPY_METHODS, minimize
from flatnn.training.sgd_loop import sgd

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
