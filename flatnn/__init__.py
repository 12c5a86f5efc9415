"""flatnn: multilayer perceptrons from first principles.

A :class:`Network` is an immutable spec; its weights are one flat NumPy vector,
and its cost, gradient and curvature are pure functions of that vector, so any
optimizer plugs in.

The package reads top-down in layers, each importing only from those below it:

- :mod:`flatnn.base`: argument checks, array namespaces, threads;
- :mod:`flatnn.core`: the spec, activations, losses, the batch kernel, the
  objective, gradient checking, metrics;
- :mod:`flatnn.training`: the driver, ``sgd``, the scipy bridge, update rules,
  schedules, regularisers and batch transforms;
- :mod:`flatnn.datasets` and :mod:`flatnn.io`: data sets and model files;
- :mod:`flatnn.backends`: the objective bound to data held elsewhere (Dask, GPU);
- the front ends :mod:`flatnn.cli` and :mod:`flatnn.sklearn`.

Names are loaded on first use (PEP 562), so ``import flatnn`` does not import
NumPy or SciPy until something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> (module, attribute or None for the module itself)
_EXPORTS: dict[str, tuple[str, str | None]] = {
    "Network": ("flatnn.core.network", "Network"),
    "Objective": ("flatnn.core.objective", "Objective"),
    "check_grad": ("flatnn.core.gradcheck", "check_grad"),
    "numerical_grad": ("flatnn.core.gradcheck", "numerical_grad"),
    "GradCheck": ("flatnn.core.gradcheck", "GradCheck"),
    "sgd": ("flatnn.training.sgd_loop", "sgd"),
    "minimize": ("flatnn.training.scipy_bridge", "minimize"),
    "save": ("flatnn.io.models", "save"),
    "load": ("flatnn.io.models", "load"),
    "set_num_threads": ("flatnn.base.threads", "set_num_threads"),
    "get_num_threads": ("flatnn.base.threads", "get_num_threads"),
    "optimizers": ("flatnn.optimizers", None),
    "datasets": ("flatnn.datasets", None),
    "distributed": ("flatnn.distributed", None),
    "threads": ("flatnn.threads", None),
    "gpu": ("flatnn.gpu", None),
    "augment": ("flatnn.augment", None),
    "dropout": ("flatnn.dropout", None),
    "sklearn": ("flatnn.sklearn", None),
    "base": ("flatnn.base", None),
    "core": ("flatnn.core", None),
    "training": ("flatnn.training", None),
    "io": ("flatnn.io", None),
    "backends": ("flatnn.backends", None),
    "cli": ("flatnn.cli", None),
    "compare": ("flatnn.compare", None),
    "curvature": ("flatnn.curvature", None),
    "landscape": ("flatnn.landscape", None),
}

__all__ = [
    "__version__",
    "Network",
    "Objective",
    "check_grad",
    "numerical_grad",
    "GradCheck",
    "sgd",
    "minimize",
    "save",
    "load",
    "set_num_threads",
    "get_num_threads",
    "optimizers",
    "datasets",
    "distributed",
    "threads",
    "gpu",
    "augment",
    "dropout",
    "sklearn",
    "base",
    "core",
    "training",
    "io",
    "backends",
    "cli",
    "compare",
    "curvature",
    "landscape",
]


def _version() -> str:
    # read from the installed metadata on first use: importlib.metadata alone costs
    # about 50 ms, more than the rest of `import flatnn`
    from importlib import metadata

    try:
        return metadata.version("flatnn")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        version = globals()[name] = _version()
        return version
    try:
        module_name, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'flatnn' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what static checkers and IDEs see
    from flatnn import (
        augment,
        backends,
        base,
        cli,
        compare,
        core,
        curvature,
        datasets,
        distributed,
        dropout,
        gpu,
        io,
        landscape,
        optimizers,
        sklearn,
        threads,
        training,
    )
    from flatnn.base.threads import get_num_threads, set_num_threads
    from flatnn.core.gradcheck import GradCheck, check_grad, numerical_grad
    from flatnn.core.network import Network
    from flatnn.core.objective import Objective
    from flatnn.io.models import load, save
    from flatnn.training.scipy_bridge import minimize
    from flatnn.training.sgd_loop import sgd
