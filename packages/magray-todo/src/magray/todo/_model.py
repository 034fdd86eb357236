"""The public value types: :class:`Status`, :class:`Action`, :class:`Task`.

Tasks read from the store are immutable snapshots; every change goes through
:class:`~magray.todo.TodoStore`, which validates it against :data:`TRANSITIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "ACTIVE",
    "FINISHED",
    "TRANSITIONS",
    "Action",
    "Status",
    "Task",
]


class Status(StrEnum):
    """Where a task is in its life.

    ``pending`` waits for dependencies, ``ready`` may run now, ``running`` is
    claimed by an executor. ``done`` is final. ``failed`` ran out of attempts
    (or was failed by hand); its dependents become ``blocked`` or ``skipped``
    (by policy) until it is retried or marked done. ``cancelled`` cascades to
    every dependent that has not finished.
    """

    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"
    SKIPPED = "skipped"


S = Status

#: Allowed status changes: ``TRANSITIONS[old]`` is the set of valid new statuses.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.PENDING: frozenset({S.READY, S.BLOCKED, S.SKIPPED, S.CANCELLED}),
    S.READY: frozenset({S.RUNNING, S.PENDING, S.DONE, S.FAILED, S.BLOCKED, S.SKIPPED, S.CANCELLED}),
    S.RUNNING: frozenset({S.DONE, S.FAILED, S.READY, S.CANCELLED}),
    S.FAILED: frozenset({S.READY, S.PENDING, S.DONE, S.CANCELLED}),
    S.BLOCKED: frozenset({S.PENDING, S.READY, S.SKIPPED, S.CANCELLED}),
    S.SKIPPED: frozenset({S.PENDING, S.READY, S.BLOCKED, S.CANCELLED}),
    S.CANCELLED: frozenset({S.PENDING, S.READY}),
    S.DONE: frozenset(),
}

#: Statuses in which a task still has to be worked on.
ACTIVE = frozenset({S.PENDING, S.READY, S.RUNNING})
#: Statuses that end a run's interest in a task.
FINISHED = frozenset({S.DONE, S.FAILED, S.CANCELLED, S.BLOCKED, S.SKIPPED})


@dataclass(frozen=True, slots=True)
class Action:
    """What to run for a task: a tool name and its JSON arguments.

    The todo package never runs tools itself; an executor hands the task to a
    caller-supplied runner, which decides what ``tool`` means.
    """

    tool: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": self.args}


@dataclass(frozen=True, slots=True)
class Task:
    """A snapshot of one task as stored.

    Attributes:
        id: Database id (``#id`` in the CLI).
        title: One line saying what to do.
        description: Longer notes.
        status: See :class:`Status`.
        priority: Higher runs first among ready tasks.
        tags: Free-form labels, for filtering.
        created: When the task was added (UTC).
        updated: Last change (UTC).
        started: When the latest attempt started (UTC).
        finished: When it reached done/failed/cancelled (UTC).
        due: Optional deadline (informational).
        attempts: Attempts made so far.
        max_attempts: Attempts allowed before the task fails.
        timeout: Seconds one attempt may take (``None``: executor default).
        estimate: Expected duration in seconds (used by the critical path).
        result: JSON value returned by the runner (or given to ``mark_done``).
        error: Message of the latest failure.
        action: Optional tool call to run; ``None`` makes a manual task.
        idempotent: Safe to run again after a crash interrupted it.
        not_before: A retry waits until then (UTC).
        run_id: The executor run that claimed the task last.
        cause: For cascaded statuses, the task whose failure or cancellation
            caused this one.
    """

    id: int
    title: str
    description: str = ""
    status: Status = Status.PENDING
    priority: int = 0
    tags: tuple[str, ...] = ()
    created: datetime | None = None
    updated: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    due: datetime | None = None
    attempts: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    estimate: float | None = None
    result: Any = None
    error: str | None = None
    action: Action | None = None
    idempotent: bool = False
    not_before: datetime | None = None
    run_id: str | None = None
    cause: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Action):
                value = value.to_dict()
            elif isinstance(value, Status):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out
