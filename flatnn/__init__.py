"""flatnn: multilayer perceptrons from first principles.

A :class:`Network` is an immutable spec; its weights are one flat NumPy vector,
and its cost, gradient and curvature are pure functions of that vector, so any
optimizer plugs in.
"""

from .gradcheck import GradCheck, check_grad, numerical_grad
from .io import load, save
from .network import Network
from .objective import Objective
from .optimizers import adam, exponential_decay, momentum, nesterov, rmsprop, step_decay
from .threads import get_num_threads, set_num_threads
from .training import minimize, sgd
from . import datasets, distributed, threads  # Dask loads only when a DaskObjective is built

__version__ = "0.1.0"

__all__ = ["Network", "Objective", "check_grad", "numerical_grad", "GradCheck"]
__all__ += ["sgd", "minimize", "momentum", "nesterov", "adam", "rmsprop", "step_decay",
            "exponential_decay"]
__all__ += ["datasets", "distributed"]
__all__ += ["save", "load"]
__all__ += ["threads", "set_num_threads", "get_num_threads"]
