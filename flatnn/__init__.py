"""flatnn: multilayer perceptrons from first principles.

A :class:`Network` is an immutable spec; its weights are one flat NumPy vector,
and its cost, gradient and curvature are pure functions of that vector, so any
optimizer plugs in.
"""

from .gradcheck import GradCheck, check_grad, numerical_grad
from .io import load, save
from .network import Network
from .objective import Objective
from .threads import get_num_threads, set_num_threads
from .training import minimize, sgd
# Dask loads only when a DaskObjective is built; CuPy only when a GPUObjective is
# built or CuPy data comes in
from . import (augment, datasets, distributed, dropout, gpu, images, metrics, namespace,
               optimizers, threads)

__version__ = "0.1.0"

__all__ = ["Network", "Objective", "check_grad", "numerical_grad", "GradCheck", "sgd",
           "minimize", "optimizers", "datasets", "distributed", "images", "metrics", "save",
           "load", "threads", "set_num_threads", "get_num_threads", "gpu", "namespace", "augment",
           "dropout"]
