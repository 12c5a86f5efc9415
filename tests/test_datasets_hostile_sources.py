"""Data sources under attack: files that hang or explode, servers that trickle, folders that
fall back, loaders that print."""

import gzip
import http.server
import logging
import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import MNIST_FILES as FILES
from conftest import shared_data

import flatnn.datasets.fetch as fetch
import flatnn.datasets.mnist as mnist
from flatnn.datasets import load_mnist, read_idx

# Resolved once, at import, while FLATNN_DATA is still set: the fixtures below delete it.
DATA_DIR = shared_data()
MNIST_DIR = DATA_DIR / "mnist"


@pytest.fixture
def alarm():
    def ring(signum, frame):
        raise TimeoutError("blocked for 10 s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FLATNN_DATA", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(fetch, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ())


def link_files(folder, names=FILES):
    folder.mkdir(parents=True, exist_ok=True)
    for f in names:
        (folder / (f + ".gz")).symlink_to(MNIST_DIR / (f + ".gz"))
    return folder


# ------------------------------------------------------------ special files
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_read_idx_refuses_a_fifo(tmp_path, alarm):
    os.mkfifo(tmp_path / "f-idx1-ubyte")
    with pytest.raises(ValueError, match="not a regular file"):
        read_idx(tmp_path / "f-idx1-ubyte")
    with pytest.raises(ValueError, match="not a regular file"):
        read_idx("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_loader_refuses_a_fifo_in_the_data_folder(tmp_path, alarm, isolated):
    folder = link_files(tmp_path / "mnist", [f for f in FILES if f != "t10k-labels-idx1-ubyte"])
    os.mkfifo(folder / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: not a regular file"):
        load_mnist(folder)


# ----------------------------------------------------------------- gz bombs
def _idx_header(shape):
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(s.to_bytes(4, "big") for s in shape)


def test_read_idx_gz_declaring_more_than_it_can_hold_is_refused_uninflated(tmp_path):
    # header says 4 GiB of uint8; the file is a few hundred bytes
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(_idx_header((65536, 65536)) + bytes(100000)))
    with pytest.raises(ValueError, match="declares 4294967308 bytes.*decompression bomb"):
        read_idx(path)


def test_read_idx_gz_inflating_past_its_header_stops_there(tmp_path):
    # header says 10 bytes of data; the stream inflates to 64 MiB
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(_idx_header((10,)) + bytes(64 << 20), compresslevel=9))
    assert path.stat().st_size < 1 << 20
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ValueError, match="inflates to more than 18 bytes"):
        read_idx(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20


def test_read_idx_good_gz_multi_member_and_padding_still_read(tmp_path):
    data = _idx_header((3, 2)) + bytes(range(6))
    path = tmp_path / "ok.gz"
    path.write_bytes(gzip.compress(data[:5]) + gzip.compress(data[5:]) + b"\0" * 8)
    np.testing.assert_array_equal(read_idx(path), np.arange(6, dtype=np.uint8).reshape(3, 2))
    path.write_bytes(gzip.compress(data) + b"junk")
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(path)
    path.write_bytes(gzip.compress(data)[:-6])
    with pytest.raises(ValueError, match="truncated gzip"):
        read_idx(path)


def test_data_file_inflating_past_its_known_size_is_refused(tmp_path, isolated):
    # a t10k-labels .gz (known size 10008) that inflates to 32 MiB: stopped at 10009 bytes
    folder = link_files(tmp_path / "mnist", [f for f in FILES if f != "t10k-labels-idx1-ubyte"])
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(bytes(32 << 20), compresslevel=9)
    )
    with pytest.raises(ValueError, match="inflates to more than 10008 bytes"):
        load_mnist(folder)


# ---------------------------------------------------- the folders searched
def test_explicit_folder_never_falls_back(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("FLATNN_DATA", str(DATA_DIR))  # the files are findable there
    link_files(tmp_path / "cache" / "flatnn" / "mnist")  # and in the cache
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as e:
        load_mnist(empty)
    assert str(empty) in str(e.value) and "Only the folder given is searched" in str(e.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "typo")
    partial = link_files(tmp_path / "partial", FILES[:3])
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        load_mnist(partial)
    assert load_mnist().name == "mnist"  # without a folder, FLATNN_DATA is used


@pytest.mark.parametrize("layout", ["parent", "itself"])
def test_path_and_flatnn_data_accept_the_same_folders(tmp_path, monkeypatch, isolated, layout):
    folder = link_files(tmp_path / "data" / "mnist")
    given = folder.parent if layout == "parent" else folder
    assert load_mnist(given).y_test[:3].tolist() == [7, 2, 1]
    monkeypatch.setenv("FLATNN_DATA", str(given))
    assert load_mnist(download=False).y_test[:3].tolist() == [7, 2, 1]


# ------------------------------------------------------------- downloading
class Trickle(http.server.BaseHTTPRequestHandler):
    """/body: headers at once, then one byte every 0.1 s; /headers: the status line byte by byte."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        try:
            if self.path.startswith("/headers"):
                for b in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 1000:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(0.1)
                return
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b"\x1f")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass


@pytest.fixture
def trickle_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("where", ["body", "headers"])
def test_deadline_holds_against_a_trickling_server(
    trickle_server, tmp_path, monkeypatch, isolated, where
):
    monkeypatch.setattr(fetch, "TIMEOUT", 5.0)  # each byte comes well within the timeout
    monkeypatch.setattr(fetch, "DEADLINE", 1.0)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match=r"took more than 1 s"):
        load_mnist(mirrors=[f"{trickle_server}/{where}/"])
    assert time.monotonic() - start < 3.0
    assert not list((tmp_path / "cache").glob("**/*.part"))


def test_loaders_never_print_even_when_mirrors_fail(tmp_path, isolated, capfd, caplog):
    caplog.set_level(logging.INFO, logger="flatnn")
    with pytest.raises(FileNotFoundError) as e:
        load_mnist(mirrors=["http://127.0.0.1:9/"])
    assert capfd.readouterr() == ("", "")
    assert "127.0.0.1:9/train-images-idx3-ubyte.gz: cannot connect" in str(e.value)
    assert any("cannot connect" in r.getMessage() for r in caplog.records)


class Bomb(http.server.BaseHTTPRequestHandler):
    """Every file: 64 MiB of zeros gzipped to about 64 KB."""

    body = gzip.compress(bytes(64 << 20), compresslevel=9)

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def test_a_downloaded_gzip_bomb_is_bounded_by_the_known_size(tmp_path, isolated):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bomb)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        import tracemalloc

        tracemalloc.start()
        with pytest.raises(FileNotFoundError, match="inflates to more than 7840016 bytes"):
            load_mnist(mirrors=[f"http://127.0.0.1:{httpd.server_address[1]}/"], train=False)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        httpd.shutdown()
        httpd.server_close()
    # zlib gathers its output in blocks and joins them: about twice the known 7.8 MB at
    # the peak, not the 64 MiB the stream inflates to
    assert peak < 20 << 20
    assert all(p.is_dir() for p in (tmp_path / "cache").glob("**/*"))  # nothing kept


def test_test_files_alone_load_without_the_training_files(tmp_path, isolated):
    folder = link_files(tmp_path / "mnist", [f for f in FILES if f.startswith("t10k")])
    s = load_mnist(folder, train=False)
    assert (
        s.X_train.shape == (0, 784) and s.X_val.shape == (0, 784) and s.X_test.shape == (10000, 784)
    )
    with pytest.raises(FileNotFoundError, match="train-images"):
        load_mnist(folder)
    with pytest.raises(TypeError, match="train must be True or False"):
        load_mnist(folder, train="no")


def test_a_flatnn_data_folder_that_does_not_exist_is_named_as_such(isolated, tmp_path, monkeypatch):
    monkeypatch.setenv("FLATNN_DATA", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_mnist(download=False)
    assert f"$FLATNN_DATA: {tmp_path / 'typo'} (no such folder)" in str(info.value)
    link_files(tmp_path / "data" / "mnist")
    monkeypatch.setenv("FLATNN_DATA", str(tmp_path / "data"))
    assert mnist.load_mnist(download=False, validation=0).X_train.shape == (60000, 784)
