"""The attempt a runner is executing, so long work can notice it should stop.

Python cannot kill a thread, so when an attempt times out (or the run is
interrupted) the executor *asks* the runner to stop: it cancels the
:class:`Attempt`, which sets an event and calls the callbacks registered with
:meth:`Attempt.on_cancel` (e.g. a tool's cancel token). Runners find their
attempt with :func:`current_attempt`.

::

    def runner(task):
        attempt = current_attempt()
        for chunk in work(task):
            if attempt is not None and attempt.cancelled:
                raise RuntimeError("stopped")
            ...

A runner that starts processes passes :attr:`Attempt.pass_fds` to them, so
the task stays locked while they run even if the executor dies (see
:mod:`magray.todo._lock`)::

    subprocess.run(cmd, pass_fds=current_attempt().pass_fds)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

from magray.common.log import get_logger

if TYPE_CHECKING:
    from magray.todo._lock import TaskLock
    from magray.todo._model import Task

__all__ = ["Attempt", "current_attempt"]

log = get_logger(__name__)


class Attempt:
    """One attempt at running a task.

    Attributes:
        task: The task as claimed (``attempts`` counts this attempt).
        reason: Why it was cancelled (``None`` while it is not).
    """

    def __init__(self, task: Task, lock: TaskLock | None = None) -> None:
        self.task = task
        self.reason: str | None = None
        self._task_lock = lock
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []

    def __repr__(self) -> str:
        return f"Attempt(task={self.task.id}, cancelled={self.cancelled})"

    @property
    def pass_fds(self) -> tuple[int, ...]:
        """Descriptors to hand to every process the runner starts (``subprocess`` ``pass_fds``).

        They hold the task's lock: while such a process lives, no executor
        (in this process or the next, should this one be killed) starts the
        task again. Empty once the attempt has returned, or where task locks
        are not supported.
        """
        fd = None if self._task_lock is None else self._task_lock.fd
        return () if fd is None else (fd,)

    def returned(self) -> None:
        """The runner has returned: this process lets go of the task lock (executors call it)."""
        if self._task_lock is not None:
            self._task_lock.release()

    @property
    def cancelled(self) -> bool:
        """The executor gave up on this attempt; its result will be ignored."""
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds pass; returns :attr:`cancelled`."""
        return self._event.wait(timeout)

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the attempt is cancelled (at once if it already is)."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        _call(callback)

    def cancel(self, reason: str) -> None:
        """Cancel the attempt (the executor calls this); idempotent."""
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _call(callback)


def _call(callback: Callable[[], object]) -> None:
    try:
        callback()
    except Exception as exc:  # a failing callback must not break the executor
        log.warning("attempt cancel callback failed", error=repr(exc))


_current: ContextVar[Attempt | None] = ContextVar("magray_todo_attempt", default=None)


def current_attempt() -> Attempt | None:
    """The attempt the calling runner is executing (``None`` outside an executor)."""
    return _current.get()
