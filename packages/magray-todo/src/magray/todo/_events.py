"""Progress events an executor sends to its subscribers, and the run report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from magray.todo._model import FINISHED, Status, Task

__all__ = ["EventKind", "ProgressEvent", "RunReport", "Subscriber"]


class EventKind(StrEnum):
    """What happened."""

    RUN_STARTED = "run_started"
    TASK_RESET = "task_reset"  # a task left running by a dead run was reset
    TASK_STARTED = "task_started"
    TASK_SUCCEEDED = "task_succeeded"
    TASK_RETRYING = "task_retrying"  # an attempt failed; another follows after a delay
    TASK_FAILED = "task_failed"  # out of attempts (or not retriable)
    TASK_DISCARDED = "task_discarded"  # the task changed under us (e.g. cancelled); result dropped
    TASK_HELD = "task_held"  # another process holds the task's lock (an attempt still executing)
    RUN_FINISHED = "run_finished"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One progress event.

    Attributes:
        kind: What happened.
        run_id: The run it belongs to.
        task: The task concerned (its state when the event was made), if any.
        error: Failure message for retry/failed events; for ``task_held``, who
            holds the task's lock.
        timed_out: The attempt ran past its timeout.
        retry_in: Seconds until the next attempt (retry events).
        duration: Seconds the attempt took.
        counts: Tasks in the run's scope per status, after the event.
        total: Tasks in scope.
        finished: Tasks in scope that are finished (done, failed, cancelled,
            blocked or skipped).
        elapsed: Seconds since the run started.
        eta: Estimated seconds until the scope is finished (``None`` until
            a task has finished in this run).
    """

    kind: EventKind
    run_id: str
    task: Task | None = None
    error: str | None = None
    timed_out: bool = False
    retry_in: float | None = None
    duration: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    finished: int = 0
    elapsed: float = 0.0
    eta: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "run_id": self.run_id,
            "task": None if self.task is None else self.task.to_dict(),
            "error": self.error,
            "timed_out": self.timed_out,
            "retry_in": self.retry_in,
            "duration": self.duration,
            "counts": dict(self.counts),
            "total": self.total,
            "finished": self.finished,
            "elapsed": self.elapsed,
            "eta": self.eta,
        }


Subscriber = Callable[[ProgressEvent], None]


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a run did.

    Attributes:
        run_id: Unique id of the run (stored on each task it claimed).
        counts: Tasks in scope per status at the end.
        attempts: Attempts started.
        succeeded: Tasks that became done in this run.
        failed: Tasks that failed for good in this run.
        retried: Attempts that failed and were scheduled again.
        reset: Tasks found running from a dead run and reset at the start.
        waiting: Ready tasks left for someone else: manual tasks (no action)
            when the executor runs only tasks with actions.
        stopped: The run was stopped (``stop()`` or Ctrl-C) before the end.
        elapsed: Seconds the run took.
    """

    run_id: str
    counts: dict[str, int]
    attempts: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    reset: int = 0
    waiting: list[int] = field(default_factory=list)
    stopped: bool = False
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """Nothing in scope failed, got blocked/skipped or was left unfinished."""
        bad = {Status.FAILED, Status.BLOCKED, Status.SKIPPED}
        return not self.stopped and not any(self.counts.get(s.value, 0) for s in bad)

    @property
    def complete(self) -> bool:
        """Every task in scope is finished (successfully or not)."""
        return all(n == 0 for s, n in self.counts.items() if Status(s) not in FINISHED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "counts": dict(self.counts),
            "attempts": self.attempts,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "retried": self.retried,
            "reset": self.reset,
            "waiting": list(self.waiting),
            "stopped": self.stopped,
            "elapsed": self.elapsed,
            "ok": self.ok,
            "complete": self.complete,
        }
