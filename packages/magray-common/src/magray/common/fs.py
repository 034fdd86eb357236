"""Crash-safe file writing shared by every package.

:func:`atomic_write_bytes` writes to a temporary file in the target's own
directory, flushes and fsyncs it, renames it over the target and fsyncs the
directory, so a reader sees either the old file or the new one, never a torn
write, even if the process is killed mid-way.

:func:`use_private_umask` makes everything the process creates private (files
0600, directories 0700); the ``magray`` command calls it first thing.
:func:`user_umask` is the umask the user started with, for child processes
whose files belong to the user's workspace rather than to magray.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = [
    "PRIVATE_UMASK",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_writer",
    "fsync_dir",
    "use_private_umask",
    "user_umask",
]

PRIVATE_UMASK = 0o077
"""Files 0600, directories 0700: what magray creates is readable only by its user."""

_user_umask: int | None = None


def use_private_umask() -> int:
    """Set the process umask to :data:`PRIVATE_UMASK` and return the previous one.

    The first call remembers the user's umask for :func:`user_umask`. Call it
    at start-up, before threads: the umask is process-wide.
    """
    global _user_umask
    previous = os.umask(PRIVATE_UMASK)
    if _user_umask is None:
        _user_umask = previous
    return previous


def user_umask() -> int:
    """The umask the user started the process with.

    Pass it to child processes that create files in the user's own workspace
    (``subprocess.Popen(..., umask=user_umask())``), so a command run through
    magray writes files with the modes the user expects, not magray's 0600.
    """
    if _user_umask is not None:
        return _user_umask
    return _current_umask()


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows.

    ``os.umask`` can only read by setting: between the two calls another thread
    would create files with the wrong mode, so Linux's ``/proc/self/status`` is
    read first.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(PRIVATE_UMASK)
    os.umask(current)
    return current


def fsync_dir(directory: Path) -> None:
    """fsync a directory so a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o600) -> Iterator[IO[bytes]]:
    """Open a binary file that replaces ``path`` atomically when the block exits.

    On an exception inside the block the temporary file is removed and
    ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically (temp file + fsync + rename)."""
    with atomic_writer(path, mode=mode) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace ``path`` with UTF-8 ``text`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)
