"""Errors raised by magray-todo.

::

    MagrayError
    ├── NotFoundError
    │   └── TaskNotFoundError        "todo.not_found"      no task with that id
    ├── InvalidInputError
    │   └── TodoInputError           "todo.invalid"        bad title, args, priority, ...
    ├── ConflictError
    │   ├── CycleError               "todo.cycle"          a dependency would close a cycle
    │   ├── InvalidTransitionError   "todo.transition"     e.g. done -> running
    │   └── RunActiveError           "todo.run_active"     another executor holds the database
    └── StorageError
        └── TodoStorageError         "todo.storage"        database unreadable, newer schema, ...
            └── TodoCorruptError     "todo.corrupt"        the database file is damaged

A full disk, a read-only file and a refused permission raise magray.common's
StorageFullError, ReadOnlyStorageError and StoragePermissionError.
"""

from __future__ import annotations

from typing import Any

from magray.common.errors import ConflictError, InvalidInputError, NotFoundError, StorageError

__all__ = [
    "CycleError",
    "InvalidTransitionError",
    "RunActiveError",
    "TaskNotFoundError",
    "TodoCorruptError",
    "TodoInputError",
    "TodoStorageError",
]


class TaskNotFoundError(NotFoundError):
    """No task has the given id."""

    code = "todo.not_found"

    def __init__(self, task_id: int, *, hint: str | None = None) -> None:
        super().__init__(
            f"no task #{task_id}",
            hint=hint or "`magray todo list --all` shows every task and its id",
            details={"task_id": task_id},
        )
        self.task_id = task_id


class TodoInputError(InvalidInputError):
    """A task field or argument is invalid."""

    code = "todo.invalid"


class CycleError(ConflictError):
    """Adding a dependency would make the graph cyclic.

    Attributes:
        cycle: The task ids of the cycle, first id repeated at the end.
    """

    code = "todo.cycle"

    def __init__(self, cycle: list[int], **kwargs: Any) -> None:
        shown = " -> ".join(f"#{i}" for i in cycle)
        super().__init__(
            f"dependency rejected: it would create the cycle {shown} (each needs the next)",
            hint=kwargs.pop("hint", "a task cannot (even indirectly) depend on itself"),
            details={"cycle": cycle},
            **kwargs,
        )
        self.cycle = cycle


class InvalidTransitionError(ConflictError):
    """A status change the state machine does not allow."""

    code = "todo.transition"


class RunActiveError(ConflictError):
    """Another executor is running tasks from the same database."""

    code = "todo.run_active"


class TodoStorageError(StorageError):
    """The task database cannot be opened, read or migrated."""

    code = "todo.storage"


def repair_hint(path: object) -> str:
    """What to do about the damaged database at ``path``."""
    return (
        f"`magray todo --db {path} check --repair` copies every readable task into a new "
        "database and keeps the damaged file beside it (in Python: "
        "magray.todo.repair_database(path))"
    )


class TodoCorruptError(TodoStorageError):
    """The task database file is damaged (SQLite found a malformed page, or it is not a
    database at all)."""

    code = "todo.corrupt"
