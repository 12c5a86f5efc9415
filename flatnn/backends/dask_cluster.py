"""The driver's side of the Dask cluster: importing Dask, connecting, naming shards.

Used by :class:`flatnn.distributed.DaskObjective`; nothing here computes.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from typing import Any

__all__ = [
    "INSTALL_HINT",
    "import_dask",
    "connect",
    "shard_key",
    "is_dask_array",
    "lost_worker_errors",
]

INSTALL_HINT = "pip install flatnn[dask]"
"""How to install what :class:`flatnn.distributed.DaskObjective` needs."""


def import_dask() -> tuple[Any, Any]:
    """``(dask, distributed)``, or ImportError saying how to install them."""
    try:
        import dask
        import dask.array
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"flatnn.distributed needs Dask distributed ({exc}); install it with: {INSTALL_HINT}"
        ) from exc
    return dask, distributed


def shard_key(i: int) -> str:
    """A unique Dask key for shard ``i`` (the tests look for the ``flatnn-shard`` prefix)."""
    return f"flatnn-shard-{i}-{uuid.uuid4().hex}"


def is_dask_array(a: Any) -> bool:
    """True for a ``dask.array.Array``, without importing dask."""
    return type(a).__module__.startswith("dask.") and hasattr(a, "to_delayed")


def lost_worker_errors(distributed: Any) -> tuple[type[BaseException], ...]:
    """Exceptions that mean "a worker or its data went away", worth a retry."""
    # FutureCancelledError ("lost dependencies": a shard went with its worker)
    # is a concurrent.futures.CancelledError; CommClosedError and TimeoutError
    # are OSErrors.
    from distributed.scheduler import KilledWorker

    return (concurrent.futures.CancelledError, KilledWorker, OSError)


def connect(distributed: Any, client: Any, timeout: float) -> tuple[Any, bool]:
    """``(client, own)``: a running client with at least one worker; ``own`` if opened here.

    ``client`` is a ``distributed.Client`` or a scheduler address (then a
    client is opened, and closed again if the scheduler has no worker).
    """
    own = False
    if isinstance(client, str):
        try:
            client = distributed.Client(client, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {client!r} within {timeout} s: {exc}"
            ) from exc
        own = True
    elif not isinstance(client, distributed.Client):
        raise TypeError(
            f"client must be a distributed.Client or a scheduler address, "
            f"got {type(client).__name__}"
        )
    try:
        if client.status != "running":
            raise ConnectionError(f"the Dask client is {client.status!r}, not running")
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"the Dask scheduler {client.scheduler.address} has no worker after {timeout} s"
            ) from exc
    except ConnectionError:
        if own:
            client.close()
        raise
    return client, own
