"""What the experiment scripts share: where the data is, and the name of the machine.

Each script puts this folder on ``sys.path`` and imports it, whether it runs as
``python experiments/<script>.py`` or is loaded by a test.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def data_root():
    """``$FLATNN_DATA``, else ``<repo>/../shared/data`` (as CI lays it out)."""
    env = os.environ.get("FLATNN_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def mnist_path():
    """The ``path`` to give ``load_mnist``: None when ``$FLATNN_DATA`` is set (the
    loader reads it itself), else the shared MNIST folder beside the repository
    when there is one, else None (the loader's own search)."""
    if os.environ.get("FLATNN_DATA"):
        return None
    shared = data_root() / "mnist"
    return shared if shared.is_dir() else None


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
