"""Shared test helpers: where the real MNIST files are."""

import os
from pathlib import Path

import pytest

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def shared_data() -> Path:
    """The folder holding ``mnist/`` with the four real MNIST ``.gz`` files.

    ``$FLATNN_DATA`` (CI sets it), else ``<repo>/../shared/data``. Resolved, so
    that files linked from temporary folders do not dangle when the variable is
    relative (the README says ``../shared/data``). Missing files fail the test:
    they never skip it.
    """
    env = os.environ.get("FLATNN_DATA")
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    root = (Path(env) if env else default).resolve()
    missing = [f for f in MNIST_FILES if not (root / "mnist" / (f + ".gz")).is_file()]
    if missing:
        pytest.fail(
            f"the MNIST tests need the real files, but {root / 'mnist'} lacks "
            f"{', '.join(missing)}: set FLATNN_DATA to a folder with an mnist/ "
            f"subfolder holding the four .gz files"
        )
    return root
