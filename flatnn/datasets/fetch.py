"""Finding, verifying and downloading the IDX files of a data set.

Each file is looked for, in order, in

1. the folder given as ``path`` to a loader,
2. ``$FLATNN_DATA/<name>/`` (one subfolder per data set: ``mnist/``, ``fashion-mnist/``),
3. the user cache ``$XDG_CACHE_HOME/flatnn/<name>/`` (default ``~/.cache/flatnn/<name>/``),
4. the system folders in :data:`SYSTEM_DATA_DIRS` (``/usr/share/datasets/<name>/``, where
   Debian's ``dataset-fashion-mnist`` package installs its files),

as ``<file>.gz`` or as the uncompressed ``<file>``; if it is found nowhere it is
downloaded into the user cache, trying each mirror in turn.

Every file is checked against the SHA-256 of its *decompressed* content, so a
gzip file and its uncompressed form verify alike. A mismatch is an error, never
silently used. A download goes to a temporary file in the cache folder and is
renamed into place only once verified: an interrupted or corrupt download leaves
nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import attrs
import numpy as np

from .idx import decode_idx, decompress

__all__ = ["IdxFile", "SYSTEM_DATA_DIRS", "TIMEOUT", "cache_dir", "fetch_idx", "search_dirs"]

#: Folders holding one subfolder per data set, searched after the user cache.
SYSTEM_DATA_DIRS: tuple[str, ...] = ("/usr/share/datasets",)

#: Seconds a download may wait on the network for any single connect or read.
TIMEOUT = 30.0

#: Seconds one file's download may take in all.
DEADLINE = 900.0

_CHUNK = 1 << 16


@attrs.frozen
class IdxFile:
    """One file of a data set: its name without ``.gz`` and its decompressed content's size and SHA-256."""

    filename: str
    size: int
    sha256: str


# (resolved path, file size, mtime_ns, expected sha256) -> decoded read-only array.
# Files are large and tests load them many times; re-reading and re-hashing a file
# whose size and modification time have not changed buys nothing.
_VERIFIED: dict[tuple[str, int, int, str], np.ndarray] = {}
_VERIFIED_MAX = 8


def cache_dir(name: str) -> Path:
    """The user cache folder for data set `name`: ``$XDG_CACHE_HOME/flatnn/<name>`` or ``~/.cache/flatnn/<name>``."""
    root = os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root and os.path.isabs(root) else Path.home() / ".cache"
    return base / "flatnn" / name


def search_dirs(name: str, path=None) -> list[tuple[str, Path | None]]:
    """The folders searched for data set `name`, in order, as ``(where, folder)``; folder is None if unset."""
    dirs: list[tuple[str, Path | None]] = []
    if path is not None:
        dirs.append(("path argument", Path(path)))
    env = os.environ.get("FLATNN_DATA")
    dirs.append(("$FLATNN_DATA/" + name, Path(env) / name if env else None))
    dirs.append(("user cache", cache_dir(name)))
    for d in SYSTEM_DATA_DIRS:
        dirs.append(("system folder", Path(d) / name))
    return dirs


def fetch_idx(name: str, files, *, path=None, download: bool = True, mirrors=()) -> dict[str, np.ndarray]:
    """Find, verify (downloading if needed) and decode the IDX files of a data set.

    Parameters
    ----------
    name : str
        The data set's folder name, e.g. ``"mnist"``.
    files : sequence of IdxFile
        The files the data set consists of.
    path : str or os.PathLike, optional
        A folder searched first.
    download : bool
        Whether to download files found nowhere.
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
        raise ValueError(f"path should be the folder holding the {name} files, got the file {os.fspath(path)}")
    dirs = search_dirs(name, path)
    arrays = {}
    for f in files:
        found = _find(f, dirs)
        if found is None:
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
            if candidate.is_file():
                return candidate
    return None


def _load_verified(file: Path, f: IdxFile) -> np.ndarray:
    st = file.stat()
    key = (str(file.resolve()), st.st_size, st.st_mtime_ns, f.sha256)
    if key in _VERIFIED:
        return _VERIFIED[key]
    content = decompress(file.read_bytes(), str(file))
    problem = _check(content, f)
    if problem:
        raise ValueError(
            f"{file}: {problem}. The file is corrupt or is not {f.filename}: "
            f"delete or replace it (flatnn never uses a file that fails verification)"
        )
    array = decode_idx(content, str(file))
    array.flags.writeable = False
    while len(_VERIFIED) >= _VERIFIED_MAX:
        del _VERIFIED[next(iter(_VERIFIED))]
    _VERIFIED[key] = array
    return array


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
            print(f"flatnn: {url}: {e}", file=sys.stderr)
    raise FileNotFoundError(_not_found_message(name, f, files, dirs, failures))


def _download(url: str, target_dir: Path, f: IdxFile) -> Path:
    """Download `url` to ``target_dir/<filename>[.gz]``, verified; raise _DownloadFailed on any problem."""
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _DownloadFailed(f"cannot create the cache folder {target_dir}: {e}") from None
    # A .gz can be a little larger than its content, never by much; a body beyond
    # that is not this file and is not worth reading to the end.
    max_bytes = f.size + f.size // 100 + (1 << 16)
    fd, tmp_name = tempfile.mkstemp(dir=target_dir, prefix=f".{f.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    done = False
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(url, out, max_bytes)
        raw = tmp.read_bytes()
        try:
            content = decompress(raw, url)
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


def _stream(url: str, out, max_bytes: int) -> None:
    """Copy the body at `url` to `out`, reporting progress on stderr."""
    start = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": "flatnn"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > max_bytes:
                raise _DownloadFailed(f"server announces {total} bytes, more than this file can be")
            print(f"flatnn: downloading {url}", file=sys.stderr)
            received, shown = 0, -1.0
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                if received > max_bytes:
                    raise _DownloadFailed(f"body exceeds {max_bytes} bytes, more than this file can be")
                elapsed = time.monotonic() - start
                if elapsed > DEADLINE:
                    raise _DownloadFailed(f"download took more than {DEADLINE:.0f} s")
                if elapsed - shown >= 0.5:
                    shown = elapsed
                    _progress(received, total)
            _progress(received, total)
            print(file=sys.stderr)
            if total is not None and received != total:
                raise _DownloadFailed(f"connection closed after {received} of {total} bytes")
    except _DownloadFailed:
        raise
    except urllib.error.HTTPError as e:
        raise _DownloadFailed(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _DownloadFailed(f"cannot connect: {e.reason}") from None
    except TimeoutError:
        raise _DownloadFailed(f"no data for {TIMEOUT:g} s (timed out)") from None
    except (OSError, http.client.HTTPException) as e:  # connection reset, bad status line, ...
        raise _DownloadFailed(f"{type(e).__name__}: {e}") from None
    except ValueError as e:  # a malformed URL
        raise _DownloadFailed(str(e)) from None


def _progress(received: int, total: int | None) -> None:
    if total:
        text = f"{received / 1e6:.1f} of {total / 1e6:.1f} MB ({100 * received // total}%)"
    else:
        text = f"{received / 1e6:.1f} MB"
    print(f"\r  {text}", end="", file=sys.stderr, flush=True)


def _not_found_message(name: str, f: IdxFile, files, dirs, failures) -> str:
    wanted = ", ".join(g.filename + "[.gz]" for g in files)
    lines = [f"{name}: {f.filename}[.gz] was found nowhere. Looked in:"]
    for where, folder in dirs:
        lines.append(f"  {where}: {folder if folder is not None else '(not set)'}")
    if failures is None:
        lines.append("Did not download (download=False).")
    elif not failures:
        lines.append("Could not download: no mirrors given.")
    else:
        lines.append("Could not download it:")
        lines.extend(f"  {url}: {why}" for url, why in failures)
    env = os.environ.get("FLATNN_DATA")
    if env and any((Path(env) / (g.filename + ext)).is_file() for g in files for ext in (".gz", "")):
        lines.append(
            f"Note: {env} itself holds {name} files, but FLATNN_DATA should name a folder with one "
            f"subfolder per data set: move them into {Path(env) / name}."
        )
    lines.append(
        f"To use files you have, put {wanted} in DIR/{name}/ and set FLATNN_DATA=DIR, "
        f"or pass path=<the folder holding them>."
    )
    return "\n".join(lines)
