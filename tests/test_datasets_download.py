"""Downloading MNIST from mirrors, against an HTTP server on 127.0.0.1 serving the real files.

The server is started and stopped by the module fixture; its handlers answer at
once except `stall`, which waits at most two seconds. The URL's first path
component picks the behaviour:

    /good/F       the file
    /corrupt/F    the file with bytes flipped in the middle (a broken gzip stream)
    /tampered/F   a valid gzip of the file with one byte changed (a checksum mismatch)
    /cut/F        Content-Length of the whole file, a third of it, then the connection closes
    /missing/F    404
    /stall/F      headers, then silence
    /MODE:P/F     MODE for the files whose names start with P, /good/ for the others
"""

import functools
import gzip
import http.server
import logging
import socket
import threading
import time

import pytest
from conftest import MNIST_FILES as FILES
from conftest import shared_data

import flatnn.datasets.fetch as fetch
import flatnn.datasets.mnist as mnist
from flatnn.datasets import load_mnist

# Resolved once, at import, while FLATNN_DATA is still set: the fixture below deletes it.
MNIST_DIR = shared_data() / "mnist"


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        Handler.requests.append(self.path)
        _, mode, name = self.path.split("/", 2)
        body = self.files.get(name)
        if body is None or mode == "missing":
            self.send_error(404)
            return
        if ":" in mode:  # e.g. cut:train-labels - misbehave for that file only
            mode, only = mode.split(":")
            mode = mode if name.startswith(only) else "good"
        if mode == "corrupt":
            body = bytearray(body)
            for i in range(len(body) // 2, len(body) // 2 + 64):
                body[i] ^= 0x55
            body = bytes(body)
        elif mode == "tampered":
            body = tampered(name)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
        elif mode == "stall":
            time.sleep(2.0)
            self.close_connection = True
        else:
            self.wfile.write(body)


@functools.cache
def tampered(name: str) -> bytes:
    raw = bytearray(gzip.decompress(Handler.files[name]))
    raw[-1] ^= 0x01
    return gzip.compress(bytes(raw), compresslevel=1)


@pytest.fixture(scope="module")
def server():
    Handler.files = {f + ".gz": (MNIST_DIR / (f + ".gz")).read_bytes() for f in FILES}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """An empty cache, nothing else to find, no proxy, and the real mirrors out of reach."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FLATNN_DATA", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(fetch, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ())
    Handler.requests = []


def cache_files(tmp_path) -> list[str]:
    folder = tmp_path / "cache" / "flatnn" / "mnist"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download_then_loads_from_the_cache(server, tmp_path, capfd, caplog):
    caplog.set_level(logging.INFO, logger="flatnn.datasets.fetch")
    s = load_mnist(mirrors=[server + "/good/"])
    assert s.X_train.shape == (50000, 784) and s.y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert cache_files(tmp_path) == sorted(f + ".gz" for f in FILES)
    assert capfd.readouterr() == ("", "")  # the library never prints: progress goes to logging
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("downloading " + server + "/good/train-images-idx3-ubyte.gz") for m in messages
    )
    assert any("(100%)" in m for m in messages)
    caplog.clear()

    Handler.requests = []
    assert load_mnist(download=False).y_train[:3].tolist() == [5, 0, 4]
    assert load_mnist(mirrors=[server + "/missing/"]).name == "mnist"
    assert Handler.requests == []
    assert capfd.readouterr() == ("", "")
    assert caplog.records == []  # no progress when nothing is downloaded


def test_404_on_the_first_mirror_then_the_second(server, tmp_path, capfd, caplog):
    caplog.set_level(logging.INFO, logger="flatnn.datasets.fetch")
    s = load_mnist(mirrors=(server + "/missing/", server + "/good/"))
    assert s.X_test.shape == (10000, 784)
    assert cache_files(tmp_path) == sorted(f + ".gz" for f in FILES)
    assert Handler.requests[:2] == [
        "/missing/train-images-idx3-ubyte.gz",
        "/good/train-images-idx3-ubyte.gz",
    ]
    assert capfd.readouterr() == ("", "")
    assert any(
        "/missing/train-images-idx3-ubyte.gz: HTTP 404" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize(
    "mode, why",
    [
        ("corrupt", "corrupt gzip stream"),
        ("tampered", "SHA-256 of the decompressed content is"),
        ("cut", r"connection closed after \d+ of \d+ bytes"),
        ("missing", "HTTP 404"),
    ],
)
def test_a_failed_download_leaves_nothing_behind(server, tmp_path, mode, why):
    with pytest.raises(FileNotFoundError, match=why) as e:
        load_mnist(mirrors=[f"{server}/{mode}/"])
    assert f"{server}/{mode}/train-images-idx3-ubyte.gz" in str(e.value)
    assert "set FLATNN_DATA=" in str(e.value)
    assert cache_files(tmp_path) == []


def test_every_mirror_failing_lists_each(server, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_mnist(mirrors=(server + "/cut/", server + "/corrupt/"))
    message = str(e.value)
    assert "/cut/train-images-idx3-ubyte.gz: connection closed after" in message
    assert "/corrupt/train-images-idx3-ubyte.gz: corrupt gzip stream" in message
    assert cache_files(tmp_path) == []


def test_verified_files_stay_when_a_later_file_fails(server, tmp_path):
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte.gz: connection closed"):
        load_mnist(mirrors=[server + "/cut:train-labels/"])
    assert cache_files(tmp_path) == ["train-images-idx3-ubyte.gz"]
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz: SHA-256"):
        load_mnist(mirrors=[server + "/tampered:t10k-images/"])
    assert cache_files(tmp_path) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    Handler.requests = []
    assert load_mnist(mirrors=[server + "/good/"]).name == "mnist"
    assert Handler.requests == [
        "/good/t10k-images-idx3-ubyte.gz",
        "/good/t10k-labels-idx1-ubyte.gz",
    ]


def test_an_interrupted_download_leaves_nothing_behind(server, tmp_path, monkeypatch):
    class CtrlCOnProgress(logging.Handler):
        """Presses Ctrl-C when the first progress report arrives, mid-file."""

        def emit(self, record):
            if " MB (" in record.getMessage():
                raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "PROGRESS_SECONDS", 0.0)
    handler = CtrlCOnProgress(logging.INFO)
    logger = logging.getLogger("flatnn.datasets.fetch")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with pytest.raises(KeyboardInterrupt):
            load_mnist(mirrors=[server + "/good/"])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert cache_files(tmp_path) == []


def test_a_stalled_server_times_out(server, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "TIMEOUT", 0.3)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="timed out"):
        load_mnist(mirrors=[server + "/stall/"])
    assert time.monotonic() - start < 1.9
    assert cache_files(tmp_path) == []


def test_offline_with_no_files_is_one_clear_error(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FileNotFoundError) as e:
        load_mnist(mirrors=[f"http://127.0.0.1:{port}/"])
    message = str(e.value)
    assert (
        "cannot connect" in message
        and "user cache: " + str(tmp_path / "cache" / "flatnn" / "mnist") in message
    )
    assert "set FLATNN_DATA=" in message
    assert cache_files(tmp_path) == []
