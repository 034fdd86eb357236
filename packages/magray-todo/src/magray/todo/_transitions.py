"""Status changes by hand: done, fail, cancel, retry, with their cascades."""

from __future__ import annotations

from typing import Any

from magray.todo import _resolver as R
from magray.todo._core import StoreCore
from magray.todo._model import Status
from magray.todo._resolver import Change
from magray.todo.errors import (
    InvalidTransitionError,
)

__all__ = ["TransitionsMixin"]

S = Status


class TransitionsMixin(StoreCore):
    """Validated transitions (part of :class:`~magray.todo.TodoStore`)."""

    # ------------------------------------------------------------ transitions
    def mark_done(self, task_id: int, *, result: Any = None) -> list[Change]:
        """Mark a ready, running or failed task done (by hand).

        Dependents whose dependencies are now all done become ready; tasks
        blocked by this one (when it had failed) are re-opened.

        Raises:
            InvalidTransitionError: The task is pending (names the unfinished
                dependencies), already done, or cancelled.
        """
        now = self.now()
        with self._write() as conn:
            old, _ = R.status_of(conn, task_id)
            if old is S.PENDING:
                waiting = self._unfinished_deps(conn, task_id)
                raise InvalidTransitionError(
                    f"task #{task_id} still waits on "
                    + ", ".join(f"#{i} ({s})" for i, s in waiting),
                    hint="finish those first, or remove the dependency with "
                    f"`magray todo dep rm {task_id} ID`",
                    details={"task_id": task_id, "waiting_on": [i for i, _ in waiting]},
                )
            R.check(task_id, old, S.DONE)
            R.set_status(
                conn,
                [task_id],
                S.DONE,
                now,
                finished=True,
                extra={"result": R.dumps(result), "error": None, "not_before": None},
            )
            changes = [Change(task_id, old, S.DONE)]
            changes += R.reopen(conn, [task_id], self.on_failure, now)
            changes += R.promote(conn, [task_id], now)
            return changes

    def fail(self, task_id: int, error: str = "failed by hand") -> list[Change]:
        """Fail a ready or running task for good; dependents are blocked or skipped."""
        now = self.now()
        with self._write() as conn:
            old, _ = R.status_of(conn, task_id)
            R.check(task_id, old, S.FAILED)
            R.set_status(conn, [task_id], S.FAILED, now, finished=True, extra={"error": str(error)})
            cascade = R.cascade_failure(conn, [task_id], task_id, self.on_failure, now)
            return [Change(task_id, old, S.FAILED), *cascade]

    def cancel(self, task_id: int) -> list[Change]:
        """Cancel a task and every descendant that has not finished.

        A running task is marked cancelled at once; its executor discards
        the result when the attempt ends.
        """
        now = self.now()
        with self._write() as conn:
            old, _ = R.status_of(conn, task_id)
            R.check(task_id, old, S.CANCELLED)
            R.set_status(conn, [task_id], S.CANCELLED, now, finished=True)
            return [Change(task_id, old, S.CANCELLED), *R.cascade_cancel(conn, task_id, now)]

    def retry(self, task_id: int) -> list[Change]:
        """Re-open a failed, cancelled or skipped task and the chain it blocked.

        Attempts start again from zero. Descendants blocked, skipped or
        cancelled because of this task are re-opened too.

        Raises:
            InvalidTransitionError: The task is blocked/skipped by another
                task (retry that one), or is not finished.
        """
        now = self.now()
        with self._write() as conn:
            old, cause = R.status_of(conn, task_id)
            if old in (S.BLOCKED, S.SKIPPED, S.CANCELLED) and cause is not None:
                raise InvalidTransitionError(
                    f"task #{task_id} is {old.value} because of task #{cause}",
                    hint=f"`magray todo retry {cause}` re-opens both",
                    details={"task_id": task_id, "cause": cause},
                )
            if old not in (S.FAILED, S.CANCELLED, S.SKIPPED, S.BLOCKED):
                raise InvalidTransitionError(
                    f"task #{task_id} is {old.value}; only failed, cancelled or skipped "
                    "tasks can be retried",
                    hint=R._default_hint(task_id, old),
                    details={"task_id": task_id, "from": old.value},
                )
            R.set_status(
                conn,
                [task_id],
                S.PENDING,
                now,
                extra={"attempts": 0, "error": None, "finished": None, "not_before": None},
            )
            changes = [Change(task_id, old, S.PENDING)]
            changes += R.settle(conn, [task_id], self.on_failure, now)
            changes += R.reopen(conn, [task_id], self.on_failure, now)
            return _fold(changes)


def _fold(changes: list[Change]) -> list[Change]:
    """One change per task: its first old and last new status (dropping no-ops)."""
    first: dict[int, Change] = {}
    last: dict[int, Status] = {}
    for change in changes:
        first.setdefault(change.task_id, change)
        last[change.task_id] = change.new
    return [Change(i, c.old, last[i]) for i, c in first.items() if c.old is not last[i]]
