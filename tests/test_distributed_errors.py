"""DaskObjective's clear errors: not a Dask scheduler, a closed client, a bad timeout.

The probes of issue 20: a socket that accepts TCP and never answers, an HTTP
server, a client closed while the objective still uses it, a timeout of -1 or
'abc'. Each must give one clear exception, within the timeout.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import scipy.optimize

import flatnn

try:
    from distributed import Client, LocalCluster
except ImportError:  # CI installs the extra and must run these tests
    if os.environ.get("CI"):
        raise
    pytest.skip("the distributed tests need: pip install flatnn[dask]", allow_module_level=True)

from flatnn.distributed import DaskObjective  # noqa: E402

TIMEOUT = 60


def _problem(m: int = 20) -> tuple[flatnn.Network, np.ndarray, np.ndarray]:
    net = flatnn.Network((5, 4, 3), hidden="tanh")
    rng = np.random.default_rng(0)
    return net, rng.normal(size=(m, 5)), rng.integers(0, 3, m)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        env={"OPENBLAS_NUM_THREADS": "1"},
        silence_logs=40,
    )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def http_port() -> Iterator[int]:
    """A local HTTP server (like ``python -m http.server``) that answers every request."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.timeout = 1
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_socket_that_never_answers_fails_within_the_timeout(silent_port):
    net, X, y = _problem()
    address = f"tcp://127.0.0.1:{silent_port}"
    with pytest.raises(ConnectionError, match=rf"{address}.*no answer .* within 2 s"):
        DaskObjective(address, net, X, y, timeout=2)


def test_an_http_server_is_not_a_dask_scheduler(http_port):
    net, X, y = _problem()
    address = f"tcp://127.0.0.1:{http_port}"
    with pytest.raises(ConnectionError, match=address) as info:
        DaskObjective(address, net, X, y, timeout=2)
    # Its answer never parses as a Dask message: either way the message says so.
    assert "not a Dask scheduler" in str(info.value)


def test_an_http_answer_is_not_read_as_a_frame_length():
    """An answer starting ``HTTP/1.0`` is no 3 EiB frame length: ConnectionError, no MemoryError."""
    answer = b"HTTP/1.0 400 Bad request\r\nContent-Length: 0\r\n\r\n"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)

        def serve() -> None:
            conn, _ = sock.accept()
            with conn:
                conn.recv(4096)  # Dask's handshake, read as a bad request
                conn.sendall(answer)
                conn.recv(1024)

        threading.Thread(target=serve, daemon=True).start()
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
        net, X, y = _problem()
        with pytest.raises(ConnectionError, match=f"{address}.*not a Dask scheduler"):
            DaskObjective(address, net, X, y, timeout=5)


def test_a_worker_address_is_not_a_scheduler(cluster):
    net, X, y = _problem()
    worker = next(iter(cluster.workers.values())).worker_address
    with pytest.raises(ConnectionError, match="not a Dask scheduler.*Worker"):
        DaskObjective(worker, net, X, y, timeout=TIMEOUT)


def test_a_client_closed_between_evaluations(cluster):
    net, X, y = _problem()
    client = Client(cluster, set_as_default=False, timeout=TIMEOUT)
    obj = DaskObjective(client, net, X, y, timeout=TIMEOUT)
    p = net.init(0)
    obj.cost(p)
    client.close()
    for call in (obj.cost, obj.grad, obj.predict, obj.accuracy):
        with pytest.raises(RuntimeError, match="Dask client.*'closed', not running"):
            call(p)
    with pytest.raises(RuntimeError, match="closed"):
        obj.hessp(p, p)
    with pytest.raises(RuntimeError, match="closed"):
        obj.worker_threads()
    obj.close()  # closing the objective afterwards is quiet
    assert "closed" in repr(obj)


def test_a_client_closed_during_a_minimization(cluster):
    net, X, y = _problem()
    client = Client(cluster, set_as_default=False, timeout=TIMEOUT)
    with DaskObjective(client, net, X, y, timeout=TIMEOUT) as obj:

        def close_the_client(_: np.ndarray) -> None:
            client.close()

        with pytest.raises(RuntimeError, match="Dask client.*not running"):
            scipy.optimize.minimize(
                obj.cost_grad, net.init(0), jac=True, method="L-BFGS-B", callback=close_the_client
            )


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (-1, ValueError, "timeout must be a finite number > 0, got -1"),
        (0, ValueError, "timeout must be a finite number > 0"),
        (float("nan"), ValueError, "timeout must be"),
        (float("inf"), ValueError, "timeout must be a finite number"),
        ("abc", TypeError, "timeout must be a number, got 'abc'"),
        (True, TypeError, "timeout must be a number"),
    ],
)
def test_bad_timeouts_fail_before_connecting(bad, error, match):
    net, X, y = _problem()
    # The address is never contacted: the timeout is checked first.
    with pytest.raises(error, match=match):
        DaskObjective("tcp://127.0.0.1:9", net, X, y, timeout=bad)
