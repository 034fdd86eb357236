"""magray-todo: a persistent task DAG with a dependency resolver and a parallel executor.

Tasks and their dependencies live in SQLite (WAL); adding a dependency that
would close a cycle is rejected; status changes follow a validated state
machine with cascades (a failed task blocks its dependents, cancelling
cascades, retrying re-opens the chain); executors run ready tasks in
parallel (threads or asyncio) with timeouts, retries and progress events,
and a killed run resumes where it stopped.

::

    from magray.todo import Executor, TodoStore

    store = TodoStore("plan.db")
    a = store.add("download")
    b = store.add("summarise", depends_on=[a.id])
    report = Executor(store, lambda task: task.title.upper()).run()
    store.get(b.id).result               # "SUMMARISE"
"""

from __future__ import annotations

from importlib.metadata import version as _version

from magray.todo._aexecutor import AsyncExecutor, AsyncRunner
from magray.todo._attempt import Attempt, current_attempt
from magray.todo._events import EventKind, ProgressEvent, RunReport, Subscriber
from magray.todo._executor import Executor, Runner
from magray.todo._graph import CriticalPath, TaskGraph
from magray.todo._model import ACTIVE, FINISHED, TRANSITIONS, Action, Status, Task
from magray.todo._repair import DatabaseCheck, RepairReport, check_database, repair_database
from magray.todo._resolver import Change, FailurePolicy
from magray.todo._run import Backoff
from magray.todo._schema import SCHEMA_VERSION
from magray.todo._store import UNSET, TaskSpec, TodoStore, default_path
from magray.todo.errors import (
    CycleError,
    InvalidTransitionError,
    RunActiveError,
    TaskNotFoundError,
    TodoCorruptError,
    TodoInputError,
    TodoStorageError,
)

__version__ = _version("magray-todo")

__all__ = [
    "__version__",
    # model
    "ACTIVE",
    "FINISHED",
    "TRANSITIONS",
    "Action",
    "Change",
    "FailurePolicy",
    "Status",
    "Task",
    # store and graph
    "SCHEMA_VERSION",
    "UNSET",
    "CriticalPath",
    "TaskGraph",
    "TaskSpec",
    "TodoStore",
    "default_path",
    # damage
    "DatabaseCheck",
    "RepairReport",
    "check_database",
    "repair_database",
    # execution
    "Attempt",
    "current_attempt",
    "AsyncExecutor",
    "AsyncRunner",
    "Backoff",
    "EventKind",
    "Executor",
    "ProgressEvent",
    "RunReport",
    "Runner",
    "Subscriber",
    # errors
    "CycleError",
    "InvalidTransitionError",
    "RunActiveError",
    "TaskNotFoundError",
    "TodoInputError",
    "TodoCorruptError",
    "TodoStorageError",
]
