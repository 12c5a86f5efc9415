"""Writing files safely: temporary files renamed into place, and their debris cleaned.

A file is written to ``folder/.flatnn-<host>-<pid>-<random>.npz.tmp`` and renamed
into place (:func:`create_temporary`), so a reader sees the old file or the whole
new one. The host and process id in the name let a later writer tell a dead
writer's debris (removed by :func:`remove_stale_temporaries`) from a live one's.
:func:`check_writable` finds out before a long computation that a path cannot be
written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import stat
import time
from collections.abc import Callable
from typing import BinaryIO

__all__ = [
    "TEMPORARY_PREFIX",
    "TEMPORARY_SUFFIX",
    "check_writable",
    "create_temporary",
    "host_tag",
    "remove_stale_temporaries",
    "write_atomically",
    "write_bytes_atomically",
]

TEMPORARY_PREFIX = ".flatnn-"
"""How the name of every temporary file flatnn writes starts."""

TEMPORARY_SUFFIX = ".npz.tmp"
"""How the name of every temporary file flatnn writes ends."""

# Temporary files of another process (another host on a shared folder, or a
# name from before pids were recorded) are removed only once this old.
_STALE_SECONDS = 3600.0


def check_writable(path: str | os.PathLike) -> None:
    """Raise unless a model file can be written at ``path``; write nothing there.

    For a command that trains first and saves last: it finds out before the
    work that the file cannot be written. A file that exists at ``path`` is
    left alone (``save`` replaces it).

    Parameters
    ----------
    path : str or os.PathLike

    Raises
    ------
    IsADirectoryError
        If ``path`` is a directory.
    NotADirectoryError
        If a component of the folder is a file (``model.npz/out.npz``).
    FileNotFoundError
        If the folder does not exist.
    PermissionError
        If the folder cannot be written (read-only folder or file system).
    ValueError
        If ``path`` exists and is not a regular file (a FIFO, a device).
    """
    path = os.fspath(path)
    if not path:
        raise FileNotFoundError("cannot write a model to an empty path")
    if path.endswith(("/", os.sep)):
        raise IsADirectoryError(
            f"cannot write {path!r}: it names a folder; name a file, "
            f"e.g. {os.path.join(path, 'model.npz')!r}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise NotADirectoryError(
            f"cannot write {path!r}: a part of {folder!r} is a file, not a folder"
        ) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(
            f"cannot write {path!r}: it is a directory; name a file "
            f"in it, e.g. {os.path.join(path, 'model.npz')!r}"
        )
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ValueError(f"cannot write {path!r}: it exists and is not a regular file")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path!r}: folder {folder!r} does not exist")
    # The only reliable test (ACLs, read-only mounts, root): create a file there.
    try:
        fd, tmp = create_temporary(folder)
    except PermissionError:
        raise PermissionError(f"cannot write {path!r}: folder {folder!r} is not writable") from None
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {path!r}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(tmp)


def create_temporary(folder: str) -> tuple[int, str]:
    """Create ``folder/.flatnn-<host>-<pid>-<random>.npz.tmp``; return (fd, path).

    Created with mode 0666 so that the umask applies, as it does to any file a
    program writes (``tempfile.mkstemp`` would make every model 0600). The host
    and pid in the name let a later save tell a dead writer's debris from a
    live writer's file.
    """
    name = f"{TEMPORARY_PREFIX}{host_tag()}-{os.getpid()}-{secrets.token_hex(6)}{TEMPORARY_SUFFIX}"
    tmp = os.path.join(folder, name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return fd, tmp


def host_tag() -> str:
    """This host's name as it appears in temporary file names (letters and digits, <= 32)."""
    return "".join(c for c in socket.gethostname() if c.isalnum())[:32] or "host"


def remove_stale_temporaries(folder: str) -> None:
    """Delete temporary files that a killed ``save`` left in ``folder``.

    Ours on this host are stale when their process is gone; any other file of
    our pattern when it is older than an hour. Errors are ignored: cleaning is
    a courtesy, never a reason for a save to fail.
    """
    try:
        names = [
            n
            for n in os.listdir(folder)
            if n.startswith(TEMPORARY_PREFIX) and n.endswith(TEMPORARY_SUFFIX)
        ]
    except OSError:
        return
    host, now = host_tag(), time.time()
    for name in names:
        tmp = os.path.join(folder, name)
        parts = name[len(TEMPORARY_PREFIX) : -len(TEMPORARY_SUFFIX)].split("-")
        try:
            if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
                if int(parts[1]) == os.getpid() or _alive(int(parts[1])):
                    continue
            elif now - os.lstat(tmp).st_mtime < _STALE_SECONDS:
                continue
            os.unlink(tmp)
        except OSError:
            pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return True
    return True


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> str:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it into place.

    A reader sees the old file or the whole new one; a failed write (a full
    disk, a Ctrl-C) leaves the old file and no debris. Temporary files that a
    killed writer left in the folder are removed first. Returns ``os.fspath(path)``.

    Raises
    ------
    IsADirectoryError
        If ``path`` is a directory.
    ValueError
        If ``path`` exists and is not a regular file (a FIFO, a device).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path!r}: it is a directory")
    if os.path.exists(path) and not os.path.isfile(path):
        raise ValueError(f"cannot write {path!r}: it exists and is not a regular file")
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(folder)
    fd, tmp = create_temporary(folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomically`)."""
    return write_atomically(path, lambda f: f.write(data))
