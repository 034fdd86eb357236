"""Task locks: an exclusive OS lock held for as long as a task's attempt executes.

The run lock (``<db>.run.lock``) dies with the executor's process, but a
child process an attempt started can outlive it (reparented to init when
magray is SIGKILLed). The database cannot tell whether that child is still
working, so the next run would re-run the task next to it. A task lock closes
the gap: before running a task the executor takes ``flock(LOCK_EX)`` on
``<db>.tasks/<id>.lock`` and holds it until the runner returns. A runner that
starts processes passes the lock's descriptor on
(``subprocess.Popen(..., pass_fds=attempt.pass_fds)``); ``flock`` locks
belong to the open file, which the child then shares, so the lock stays held
until the last process holding it exits, whoever died first. An executor
never starts an attempt whose task lock is held by someone else.

The files are kept (never unlinked: unlinking a lock file that a surviving
child still holds would let a newcomer lock a fresh file beside it). On
systems without ``fcntl.flock`` (Windows) the locks are no-ops.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["TaskLock", "holder", "lock_dir", "try_lock"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def lock_dir(db: Path) -> Path:
    """The directory of task-lock files beside a database."""
    return db.with_name(db.name + ".tasks")


def _path(db: Path, task_id: int) -> Path:
    return lock_dir(db) / f"{int(task_id)}.lock"


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


def try_lock(db: Path, task_id: int, *, run_id: str) -> TaskLock | None:
    """Take task ``task_id``'s lock without waiting; ``None`` if another holder has it.

    The file records who took it (pid, run, time), for messages about a holder
    that outlived its run.
    """
    if fcntl is None:  # pragma: no cover - Windows
        return TaskLock(task_id, None)
    path = _path(db, task_id)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    info = {"pid": os.getpid(), "run_id": run_id, "task_id": task_id, "since": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return TaskLock(task_id, fd)


def holder(db: Path, task_id: int) -> dict[str, Any]:
    """Who last took the lock of ``task_id`` (``{}`` if unknown)."""
    try:
        info = json.loads(_path(db, task_id).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}
