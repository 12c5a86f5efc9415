"""The driver's side of the Dask cluster: importing Dask, connecting, naming shards.

Used by :class:`flatnn.distributed.DaskObjective`; nothing here computes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from typing import Any

__all__ = [
    "INSTALL_HINT",
    "import_dask",
    "connect",
    "probe_scheduler",
    "check_running",
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
        client = _open_client(distributed, client, timeout)
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
                f"the Dask scheduler {client.scheduler.address} has no worker after {timeout:g} s"
            ) from exc
    except ConnectionError:
        if own:
            client.close()
        raise
    return client, own


def _open_client(distributed: Any, address: str, timeout: float) -> Any:
    """A client of the scheduler at ``address``, opened within ``timeout`` or ConnectionError."""
    probe_scheduler(address, timeout)
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s: {exc}"
        ) from exc


def probe_scheduler(address: str, timeout: float) -> None:
    """Check within ``timeout`` seconds that a Dask scheduler answers at ``address``.

    Opens one connection, does Dask's handshake, asks the peer who it is and
    closes the connection, all bounded by ``timeout`` (``distributed.Client``
    alone can wait forever on a peer that accepts TCP but never answers, and
    misreads an HTTP server's answer as a frame length). In-process
    (``inproc://``) addresses are not probed.

    Raises
    ------
    ConnectionError
        Naming ``address`` and ``timeout``: nothing listens there, nothing
        answered in time, or the peer is not a Dask scheduler.
    """
    if address.startswith("inproc://"):
        return
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="flatnn-probe") as pool:
        # A loop of its own, in a thread: the caller may already run an event loop.
        found = pool.submit(asyncio.run, _identify(address, timeout)).result()
    where = f"the Dask scheduler at {address!r}"
    if isinstance(found, BaseException):
        if isinstance(found, TimeoutError):
            raise ConnectionError(
                f"cannot reach {where}: no answer in Dask's protocol within {timeout:g} s "
                f"(nothing answers there, or it is not a Dask scheduler)"
            ) from found
        if isinstance(found, OSError):
            raise ConnectionError(f"cannot reach {where} within {timeout:g} s: {found}") from found
        raise ConnectionError(
            f"{address!r} is not a Dask scheduler: its answer is not Dask's protocol "
            f"({type(found).__name__}: {found})"
        ) from found
    if found != "Scheduler":
        raise ConnectionError(
            f"{address!r} is not a Dask scheduler (it says it is a {found!r}); "
            f"pass the scheduler's address"
        )


async def _identify(address: str, timeout: float) -> Any:
    """The peer's ``type`` (``"Scheduler"``...), or the exception that stopped the probe."""
    from distributed.comm import connect as comm_connect
    from distributed.security import Security

    args = Security().get_connection_args("client")

    async def ask() -> Any:
        comm = await comm_connect(address, timeout=timeout, **args)
        try:
            await comm.write({"op": "identity", "reply": True})
            answer = await comm.read()
        finally:
            comm.abort()
        return answer.get("type") if isinstance(answer, dict) else repr(answer)[:40]

    try:
        return await asyncio.wait_for(ask(), timeout)
    except Exception as exc:  # MemoryError too: a non-Dask answer read as a frame length
        return exc


def check_running(client: Any, address: str | None = None) -> None:
    """RuntimeError if ``client`` is closed (or closing): it can no longer reach the cluster."""
    status = getattr(client, "status", None)
    if status != "running":
        where = f" (scheduler {address})" if address else ""
        raise RuntimeError(
            f"the Dask client{where} is {status!r}, not running: it was closed while the "
            f"objective still uses it; keep the client open until the DaskObjective is closed"
        )
