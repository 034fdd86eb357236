"""Task locks: an exclusive OS lock held for as long as a task's attempt executes.

The run lock (``<db>.run.lock``) dies with the executor's process, but a
child process an attempt started can outlive it (reparented to init when
magray is SIGKILLed). The database cannot tell whether that child is still
working, so the next run would re-run the task next to it. A task lock closes
the gap: before running a task the executor takes an exclusive lock for it
and holds it until the runner returns. A runner that starts processes passes
the lock's descriptor on (``subprocess.Popen(..., pass_fds=attempt.pass_fds)``).
The lock belongs to the *open file*, which the child then shares, so it stays
held until the last process holding it exits, whoever died first. An executor
never starts an attempt whose task lock someone else holds.

Two kinds of lock have that property:

- Linux: an open-file-description byte-range lock (``F_OFD_SETLK``) on byte
  ``task_id`` of one file, ``<db>.tasks.lock``: one ``open`` and one
  ``fcntl`` per attempt, no file per task;
- other POSIX systems: ``flock`` on ``<db>.tasks/<id>.lock``, one file per
  task, kept (unlinking one a surviving child still holds would let a
  newcomer lock a fresh file beside it).

On systems without either (Windows) the locks are no-ops.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
from pathlib import Path

__all__ = ["TaskLock", "lock_path", "try_lock"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_OFD = fcntl is not None and hasattr(fcntl, "F_OFD_SETLK")


def lock_path(db: Path, task_id: int) -> Path:
    """The file holding task ``task_id``'s lock."""
    if _OFD:
        return db.with_name(db.name + ".tasks.lock")
    return db.with_name(db.name + ".tasks") / f"{int(task_id)}.lock"  # pragma: no cover


class TaskLock:
    """A held task lock; :meth:`release` lets it go (once, from any thread)."""

    def __init__(self, task_id: int, fd: int | None) -> None:
        self.task_id = task_id
        self._fd = fd
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"TaskLock(task={self.task_id}, fd={self._fd})"

    @property
    def fd(self) -> int | None:
        """The locked file's descriptor (``None`` once released, or where locks are no-ops)."""
        return self._fd

    def release(self) -> None:
        """Close this process's descriptor; the lock ends when no child holds a copy either."""
        with self._guard:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _flock_struct(kind: int, task_id: int) -> bytes:
    # struct flock {short l_type, l_whence; off_t l_start, l_len; pid_t l_pid;} (+ padding);
    # l_pid must be 0 for open-file-description locks.
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, int(task_id), 1, 0)


def try_lock(db: Path, task_id: int) -> TaskLock | None:
    """Take task ``task_id``'s lock without waiting; ``None`` if another holder has it."""
    if fcntl is None:  # pragma: no cover - Windows
        return TaskLock(task_id, None)
    path = lock_path(db, task_id)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:  # pragma: no cover - the first flock file of this database
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if _OFD:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_WRLCK, task_id))
        else:  # pragma: no cover - macOS and other POSIX systems
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if isinstance(exc, BlockingIOError) or exc.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise
    except BaseException:
        os.close(fd)
        raise
    return TaskLock(task_id, fd)
