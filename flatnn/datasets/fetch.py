"""Finding, verifying and downloading the IDX files of a data set.

A folder "for data set <name>" may be given two ways, alike for the ``path``
argument of a loader, ``$FLATNN_DATA`` and the command line's ``--data-dir``:
the parent of ``<name>/`` (one subfolder per data set) or the ``<name>/``
folder itself; ``DIR/<name>/`` is used when it exists, else ``DIR``.

With ``path`` given, only that folder is searched and nothing is downloaded:
files missing there are an error, never silently taken from elsewhere. Without
it, each file is looked for, in order, in

1. ``$FLATNN_DATA`` (as above),
2. the user cache ``$XDG_CACHE_HOME/flatnn/<name>/`` (default ``~/.cache/flatnn/<name>/``),
3. the system folders in :data:`SYSTEM_DATA_DIRS` (``/usr/share/datasets/<name>/``, where
   Debian's ``dataset-fashion-mnist`` package installs its files),

as ``<file>.gz`` or as the uncompressed ``<file>``; if it is found nowhere it is
downloaded into the user cache, trying each mirror in turn.

Every file is checked against the SHA-256 of its *decompressed* content, so a
gzip file and its uncompressed form verify alike. A mismatch is an error, never
silently used. Only regular files are read, and decompression stops at the
file's known size, so neither a FIFO nor a gzip bomb can hang or exhaust
memory. A download goes to a temporary file in the cache folder and is renamed
into place only once verified: an interrupted or corrupt download leaves
nothing behind. Each file's download has an overall deadline,
:data:`DEADLINE`, that holds however slowly the server sends.

Progress is reported through the :mod:`logging` module, never printed: the
logger ``flatnn.datasets.fetch`` logs, at INFO, each download's start, progress
(at most every :data:`PROGRESS_SECONDS`) and end, and each failed mirror (the
error raised when every mirror failed lists them all again). Configure logging
(``logging.basicConfig(level=logging.INFO)``) to
see them; the ``flatnn`` command line shows them on stderr.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from flatnn.datasets.idx import decode_idx, decompress, read_regular_file

__all__ = ["IdxFile", "SYSTEM_DATA_DIRS", "TIMEOUT", "cache_dir", "fetch_idx", "search_dirs"]

#: Folders holding one subfolder per data set, searched after the user cache.
SYSTEM_DATA_DIRS: tuple[str, ...] = ("/usr/share/datasets",)

#: Seconds a download may wait on the network for any single connect or read.
TIMEOUT = 30.0

#: Seconds one file's download may take in all, whatever the server does.
DEADLINE = 900.0

#: Least seconds between two progress messages of one download.
PROGRESS_SECONDS = 2.0

_log = logging.getLogger(__name__)
# The library never prints: without this, logging's last-resort handler would
# write our warnings to stderr in programs that have not configured logging.
_log.addHandler(logging.NullHandler())

_CHUNK = 1 << 16


@attrs.frozen
class IdxFile:
    """One file of a data set: its name without ``.gz``, its content's size and SHA-256."""

    filename: str
    size: int
    sha256: str


# (resolved path, file size, mtime_ns, expected sha256) -> decoded read-only array.
# Files are large and tests load them many times; re-reading and re-hashing a file
# whose size and modification time have not changed buys nothing.
_VERIFIED: dict[tuple[str, int, int, str], np.ndarray] = {}
_VERIFIED_MAX = 8


def cache_dir(name: str) -> Path:
    """The user cache folder for data set `name`.

    ``$XDG_CACHE_HOME/flatnn/<name>`` or ``~/.cache/flatnn/<name>``.
    """
    root = os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root and os.path.isabs(root) else Path.home() / ".cache"
    return base / "flatnn" / name


def data_folder(root, name: str) -> Path:
    """The folder of data set `name`'s files: ``root/name`` if that is a folder, else `root`."""
    root = Path(root)
    return root / name if (root / name).is_dir() else root


def search_dirs(name: str, path: str | os.PathLike | None = None) -> list[tuple[str, Path | None]]:
    """The folders searched for data set `name`, in order, as ``(where, folder)``.

    ``folder`` is None where unset.

    With `path` given, that folder alone (see the module docstring).
    """
    if path is not None:
        return [("path argument", data_folder(path, name))]
    dirs: list[tuple[str, Path | None]] = []
    env = os.environ.get("FLATNN_DATA")
    dirs.append(("$FLATNN_DATA", data_folder(env, name) if env else None))
    dirs.append(("user cache", cache_dir(name)))
    for d in SYSTEM_DATA_DIRS:
        dirs.append(("system folder", Path(d) / name))
    return dirs


def fetch_idx(
    name: str,
    files: Sequence[IdxFile],
    *,
    path: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Find, verify (downloading if needed) and decode the IDX files of a data set.

    Parameters
    ----------
    name : str
        The data set's folder name, e.g. ``"mnist"``.
    files : sequence of IdxFile
        The files the data set consists of.
    path : str or os.PathLike, optional
        The folder holding the files (or its parent): the only one searched;
        nothing is downloaded when it is given.
    download : bool
        Whether to download files found nowhere (ignored with `path`).
    mirrors : sequence of str
        Base URLs tried in turn; a file's URL is ``mirror + filename + ".gz"``.

    Returns
    -------
    dict
        ``filename -> array`` (read-only) for every file.

    Raises
    ------
    ValueError
        If a file is found but its content does not match its SHA-256.
    FileNotFoundError
        If a file is found nowhere and cannot be downloaded; the message lists
        where it looked, why each download failed, and how to set ``FLATNN_DATA``.
    """
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise ValueError(
            f"path must be the folder holding the {name} files, got the file {os.fspath(path)}"
        )
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(
            f"{name}: the folder {os.fspath(path)} given for its files does not exist"
        )
    dirs = search_dirs(name, path)
    arrays = {}
    for f in files:
        found = _find(f, dirs)
        if found is None:
            if path is not None:
                raise FileNotFoundError(_not_found_message(name, f, files, dirs, "path"))
            if not download:
                raise FileNotFoundError(_not_found_message(name, f, files, dirs, None))
            found = _download_any(name, f, files, dirs, mirrors)
        arrays[f.filename] = _load_verified(found, f)
    return arrays


def _find(f: IdxFile, dirs) -> Path | None:
    for _, folder in dirs:
        if folder is None:
            continue
        for candidate in (folder / (f.filename + ".gz"), folder / f.filename):
            if candidate.exists() or candidate.is_symlink():
                return candidate  # a FIFO or a broken link is reported, not skipped
    return None


def _load_verified(file: Path, f: IdxFile) -> np.ndarray:
    try:
        st = file.stat()
    except OSError as e:
        raise ValueError(f"{file}: cannot read it ({e.strerror})") from None
    key = (str(file.resolve()), st.st_size, st.st_mtime_ns, f.sha256)
    if key in _VERIFIED:
        return _VERIFIED[key]
    # A .gz is never much larger than its content; a file beyond that is not this one.
    raw = read_regular_file(file, max_bytes=_max_compressed(f))
    content = decompress(raw, str(file), max_size=f.size)
    problem = _check(content, f)
    if problem:
        raise ValueError(
            f"{file}: {problem}. The file is corrupt or is not {f.filename} (it may be another "
            f"data set's): replace it or move it away (flatnn never uses a file that fails "
            f"verification)"
        )
    array = decode_idx(content, str(file))
    array.flags.writeable = False
    while len(_VERIFIED) >= _VERIFIED_MAX:
        del _VERIFIED[next(iter(_VERIFIED))]
    _VERIFIED[key] = array
    return array


def _max_compressed(f: IdxFile) -> int:
    return f.size + f.size // 100 + (1 << 16)


def _check(content: bytes, f: IdxFile) -> str | None:
    """Why `content` is not `f`, or None if it is."""
    if len(content) != f.size:
        return f"decompressed content has {len(content)} bytes, expected {f.size}"
    digest = hashlib.sha256(content).hexdigest()
    if digest != f.sha256:
        return f"SHA-256 of the decompressed content is {digest}, expected {f.sha256}"
    return None


class _DownloadFailed(Exception):
    pass


def _download_any(name: str, f: IdxFile, files, dirs, mirrors) -> Path:
    """Download `f` into the user cache from the first mirror that serves it intact."""
    target_dir = cache_dir(name)
    failures = []
    for mirror in mirrors:
        url = mirror + f.filename + ".gz"
        try:
            return _download(url, target_dir, f)
        except _DownloadFailed as e:
            failures.append((url, str(e)))
            _log.info("%s: %s", url, e)
    raise FileNotFoundError(_not_found_message(name, f, files, dirs, failures))


def _download(url: str, target_dir: Path, f: IdxFile) -> Path:
    """Download `url` to ``target_dir/<filename>[.gz]``, verified; _DownloadFailed on a problem."""
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _DownloadFailed(f"cannot create the cache folder {target_dir}: {e}") from None
    # A .gz can be a little larger than its content, never by much; a body beyond
    # that is not this file and is not worth reading to the end.
    max_bytes = _max_compressed(f)
    fd, tmp_name = tempfile.mkstemp(dir=target_dir, prefix=f".{f.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    done = False
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(url, out, max_bytes)
        raw = tmp.read_bytes()
        try:
            content = decompress(raw, url, max_size=f.size)
        except ValueError as e:
            raise _DownloadFailed(str(e).removeprefix(url + ": ")) from None
        problem = _check(content, f)
        if problem:
            raise _DownloadFailed(problem)
        dest = target_dir / (f.filename + (".gz" if raw[:2] == b"\x1f\x8b" else ""))
        os.replace(tmp, dest)
        done = True
        return dest
    finally:
        if not done:
            tmp.unlink(missing_ok=True)


class _Watchdog:
    """Shuts down the sockets of one download when its deadline passes.

    A socket timeout bounds each wait, not the sum of them: a server sending a
    byte every few seconds, in the headers or the body, would keep a download
    open forever. Shutting the socket down from a timer thread wakes any
    blocked read, so the deadline holds whatever the server does.
    """

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        return False

    def watch(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            self._shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _opener(watchdog: _Watchdog):
    """A urllib opener whose HTTP and HTTPS connections register their sockets with `watchdog`."""

    class Connection(http.client.HTTPConnection):
        def connect(self):
            super().connect()
            watchdog.watch(self.sock)

    class SecureConnection(http.client.HTTPSConnection):
        def connect(self):
            super().connect()
            watchdog.watch(self.sock)

    class Handler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(Connection, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(SecureConnection, req, context=self._context)

    return urllib.request.build_opener(Handler, SecureHandler)


def _stream(url: str, out, max_bytes: int) -> None:
    """Copy the body at `url` to `out`, logging progress, within :data:`DEADLINE` seconds."""
    start = time.monotonic()
    deadline = DEADLINE
    request = urllib.request.Request(url, headers={"User-Agent": "flatnn"})
    with _Watchdog(deadline) as watchdog:
        try:
            with _opener(watchdog).open(request, timeout=min(TIMEOUT, deadline)) as resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > max_bytes:
                    raise _DownloadFailed(
                        f"server announces {total} bytes, more than this file can be"
                    )
                _log.info("downloading %s%s", url, f" ({total / 1e6:.1f} MB)" if total else "")
                received, shown = 0, 0.0
                while True:
                    chunk = resp.read1(_CHUNK) if hasattr(resp, "read1") else resp.read(_CHUNK)
                    if watchdog.expired:
                        break
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    if received > max_bytes:
                        raise _DownloadFailed(
                            f"body exceeds {max_bytes} bytes, more than this file can be"
                        )
                    elapsed = time.monotonic() - start
                    if elapsed - shown >= PROGRESS_SECONDS:
                        shown = elapsed
                        _log.info("%s: %s", url, _progress(received, total))
                if watchdog.expired:
                    raise _DownloadFailed(f"download took more than {deadline:g} s (DEADLINE)")
                if total is not None and received != total:
                    raise _DownloadFailed(f"connection closed after {received} of {total} bytes")
                _log.info(
                    "%s: %s in %.1f s", url, _progress(received, total), time.monotonic() - start
                )
        except _DownloadFailed:
            raise
        except Exception as e:
            if watchdog.expired:
                raise _DownloadFailed(
                    f"download took more than {deadline:g} s (DEADLINE)"
                ) from None
            raise _failure(e) from None


def _failure(e: Exception) -> _DownloadFailed:
    if isinstance(e, urllib.error.HTTPError):
        return _DownloadFailed(f"HTTP {e.code} {e.reason}")
    if isinstance(e, urllib.error.URLError):
        if isinstance(e.reason, TimeoutError):
            return _DownloadFailed(f"no data for {TIMEOUT:g} s (timed out)")
        return _DownloadFailed(f"cannot connect: {e.reason}")
    if isinstance(e, TimeoutError):
        return _DownloadFailed(f"no data for {TIMEOUT:g} s (timed out)")
    if isinstance(
        e, (OSError, http.client.HTTPException)
    ):  # connection reset, bad status line, ...
        return _DownloadFailed(f"{type(e).__name__}: {e}")
    if isinstance(e, ValueError):  # a malformed URL
        return _DownloadFailed(str(e))
    raise e


def _progress(received: int, total: int | None) -> str:
    if total:
        return f"{received / 1e6:.1f} of {total / 1e6:.1f} MB ({100 * received // total}%)"
    return f"{received / 1e6:.1f} MB"


def _not_found_message(name: str, f: IdxFile, files, dirs, failures) -> str:
    wanted = ", ".join(g.filename + "[.gz]" for g in files)
    lines = [f"{name}: {f.filename}[.gz] was found nowhere. Looked in:"]
    for where, folder in dirs:
        if folder is None:
            lines.append(f"  {where}: (not set)")
        else:
            lines.append(f"  {where}: {folder}" + ("" if folder.is_dir() else " (no such folder)"))
    if failures == "path":
        lines.append("Only the folder given is searched, and nothing is downloaded into it.")
        lines.append(
            f"Put {wanted} there (or in a {name}/ subfolder of it), or leave the folder out to "
            f"search $FLATNN_DATA, the user cache and the system folders and to download."
        )
        return "\n".join(lines)
    if failures is None:
        lines.append("Did not download (download=False).")
    elif not failures:
        lines.append("Could not download: no mirrors given.")
    else:
        lines.append("Could not download it:")
        lines.extend(f"  {url}: {why}" for url, why in failures)
    lines.append(
        f"To use files you have, put {wanted} in DIR/{name}/ (or in DIR itself) and set "
        f"FLATNN_DATA=DIR, or pass path=DIR."
    )
    return "\n".join(lines)
