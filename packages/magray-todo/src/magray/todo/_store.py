"""The persistent task store, :class:`TodoStore`: creating and reading tasks.

The class is assembled from parts: :mod:`._core` (engine, transactions,
shared lookups), :mod:`._edits` (fields, dependencies, deletion) and
:mod:`._transitions` (done, fail, cancel, retry).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert, select, text

from magray.todo import _resolver as R
from magray.todo import _rows as V
from magray.todo._core import UNSET, default_path
from magray.todo._edits import EditsMixin
from magray.todo._graph import local_topo
from magray.todo._model import Action, Status, Task
from magray.todo._resolver import FailurePolicy
from magray.todo._schema import DEP, TASK
from magray.todo._transitions import TransitionsMixin
from magray.todo.errors import (
    CycleError,
    TaskNotFoundError,
    TodoInputError,
)

if TYPE_CHECKING:
    from magray.todo._graph import TaskGraph

__all__ = ["UNSET", "TaskSpec", "TodoStore", "default_path"]

S = Status


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task to create with :meth:`TodoStore.add_many` (fields as in :class:`Task`).

    ``depends_on`` names tasks that already exist; dependencies among the new
    tasks are given to ``add_many`` as index pairs.
    """

    title: str
    description: str = ""
    priority: int = 0
    tags: tuple[str, ...] = ()
    due: datetime | None = None
    max_attempts: int | None = None
    timeout: float | None = None
    estimate: float | None = None
    action: Action | None = None
    idempotent: bool = False
    depends_on: tuple[int, ...] = field(default=())


class TodoStore(EditsMixin, TransitionsMixin):
    """Tasks and dependencies in one SQLite file (WAL), safe across threads and processes.

    Every change runs in one ``BEGIN IMMEDIATE`` transaction and is checked
    against the state machine (:data:`magray.todo.TRANSITIONS`).

    Args:
        path: Database file (created with its parent directory if missing).
            Default: ``settings.path`` or ``<data dir>/todo.db``.
        settings: The ``[todo]`` settings (defaults if omitted).
        on_failure: Override ``settings.on_failure``: dependents of a failed
            task become ``blocked`` or ``skipped``.
        clock: Returns the current time as UTC epoch seconds (inject for tests).

    Example::

        store = TodoStore(tmp_path / "todo.db")
        fetch = store.add("fetch data")
        report = store.add("write report", depends_on=[fetch.id])
        [t.title for t in store.ready()]      # ["fetch data"]
        store.mark_done(fetch.id)
        store.get(report.id).status           # Status.READY
    """

    # ------------------------------------------------------------ create
    def add(
        self,
        title: str,
        *,
        description: str = "",
        priority: int = 0,
        tags: Iterable[str] = (),
        due: datetime | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        estimate: float | None = None,
        action: Action | None = None,
        idempotent: bool = False,
        depends_on: Iterable[int] = (),
    ) -> Task:
        """Create one task; it is ``ready`` unless a dependency is not done yet.

        Raises:
            TodoInputError: A field is invalid.
            TaskNotFoundError: A dependency does not exist.
        """
        spec = TaskSpec(
            title=title,
            description=description,
            priority=priority,
            tags=tuple(tags),
            due=due,
            max_attempts=max_attempts,
            timeout=timeout,
            estimate=estimate,
            action=action,
            idempotent=idempotent,
            depends_on=tuple(depends_on),
        )
        (task,) = self.add_many([spec])
        return task

    def add_many(
        self, specs: Sequence[TaskSpec], *, edges: Iterable[tuple[int, int]] = ()
    ) -> list[Task]:
        """Create many tasks in one transaction.

        Args:
            specs: The tasks.
            edges: ``(i, j)`` pairs of indexes into ``specs``: task ``i``
                depends on task ``j``. New tasks cannot form a cycle with
                existing ones (they have no dependents yet), so only the new
                edges are checked.

        Returns:
            The created tasks, in the order of ``specs``.

        Raises:
            CycleError: ``edges`` contain a cycle (named by index).
        """
        now = self.now()
        rows = [self._row(spec, now) for spec in specs]
        local = [(int(i), int(j)) for i, j in edges]
        for i, j in local:
            if not (0 <= i < len(specs) and 0 <= j < len(specs)):
                raise TodoInputError(f"edge ({i}, {j}) names a task outside the batch")
            if i == j:
                raise CycleError([i, i], hint="edges index the batch; a task cannot need itself")
        order = local_topo(len(specs), local)
        with self._write() as conn:
            existing = {d for spec in specs for d in spec.depends_on}
            known = self._statuses(conn, existing)
            for dep in existing - set(known):
                raise TaskNotFoundError(dep, hint="a dependency must exist before its dependent")
            first = self._next_id(conn)
            ids = list(range(first, first + len(rows)))
            deps: dict[int, list[tuple[int, int | None]]] = {i: [] for i in range(len(specs))}
            dep_rows = []
            for i, spec in enumerate(specs):
                for dep in dict.fromkeys(spec.depends_on):
                    dep_rows.append({"task_id": ids[i], "depends_on": dep})
                    deps[i].append((dep, None))
            for i, j in dict.fromkeys(local):
                dep_rows.append({"task_id": ids[i], "depends_on": ids[j]})
                deps[i].append((ids[j], j))
            # Statuses in topological order, from existing deps and earlier batch entries.
            status: dict[int, tuple[Status, int | None]] = {}
            for i in order:
                new, cause = S.READY, None
                for dep_id, index in deps[i]:
                    dep_status, dep_cause = status[index] if index is not None else known[dep_id]
                    resolved = _child_status(dep_id, dep_status, dep_cause, self.on_failure)
                    if resolved is not None and resolved[0] is not S.PENDING:
                        new, cause = resolved
                        break
                    if resolved is not None:
                        new = S.PENDING
                status[i] = (new, cause)
            for i, row in enumerate(rows):
                row["id"] = ids[i]
                row["status"] = status[i][0].value
                row["cause"] = status[i][1]
            if rows:
                conn.execute(insert(TASK), rows)
            if dep_rows:
                conn.execute(insert(DEP), dep_rows)
            return self._fetch(conn, ids)

    def _row(self, spec: TaskSpec, now: float) -> dict[str, Any]:
        title = V.check_title(spec.title)
        if spec.max_attempts is not None and spec.max_attempts < 1:
            raise TodoInputError("max_attempts must be at least 1", hint="use 1 for no retries")
        return {
            "title": title,
            "description": spec.description or "",
            "priority": V.check_int(spec.priority, "priority"),
            "tags": V.dump_tags(spec.tags),
            "created": now,
            "updated": now,
            "due": V.epoch(spec.due),
            "attempts": 0,
            "max_attempts": spec.max_attempts or self.settings.max_attempts,
            "timeout": V.check_positive(spec.timeout, "timeout"),
            "estimate": V.check_positive(spec.estimate, "estimate", allow_zero=True),
            "action_tool": V.check_action(spec.action).tool if spec.action else None,
            "action_args": R.dumps(spec.action.args) if spec.action else None,
            "idempotent": bool(spec.idempotent),
            "result": None,
            "error": None,
            "started": None,
            "finished": None,
            "not_before": None,
            "run_id": None,
        }

    @staticmethod
    def _next_id(conn: Connection) -> int:
        # AUTOINCREMENT never reuses ids, so continue after the largest ever issued.
        seq = conn.execute(
            text("SELECT seq FROM sqlite_sequence WHERE name = 'todo_task'")
        ).scalar()
        top = conn.execute(text("SELECT MAX(id) FROM todo_task")).scalar()
        return max(int(seq or 0), int(top or 0)) + 1

    # ------------------------------------------------------------ read
    def tasks(
        self,
        *,
        status: Status | str | Iterable[Status | str] | None = None,
        tag: str | None = None,
        ids: Iterable[int] | None = None,
        limit: int | None = None,
    ) -> list[Task]:
        """Tasks, oldest first, optionally filtered by status, tag or ids."""
        stmt = select(TASK).order_by(TASK.c.id)
        if status is not None:
            wanted = [status] if isinstance(status, str | Status) else list(status)
            stmt = stmt.where(TASK.c.status.in_([V.status(s).value for s in wanted]))
        if tag is not None:
            stmt = stmt.where(
                text(
                    "EXISTS (SELECT 1 FROM json_each(todo_task.tags) WHERE value = :tag)"
                ).bindparams(tag=tag)
            )
        if ids is not None:
            stmt = stmt.where(TASK.c.id.in_(list(ids)))
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return [V.to_task(r._mapping) for r in conn.execute(stmt)]

    def ready(
        self,
        *,
        limit: int | None = None,
        now: float | None = None,
        with_action: bool = False,
        ids: Iterable[int] | None = None,
    ) -> list[Task]:
        """Tasks that may run now, highest priority first (then oldest).

        Args:
            limit: At most this many.
            now: Hide ready tasks whose retry delay ends after ``now``
                (epoch seconds); ``None`` shows them all.
            with_action: Only tasks that have an action.
            ids: Only these tasks.
        """
        with self._read() as conn:
            return self._ready(conn, limit=limit, now=now, with_action=with_action, ids=ids)

    @staticmethod
    def _ready(
        conn: Connection,
        *,
        limit: int | None,
        now: float | None,
        with_action: bool,
        ids: Iterable[int] | None,
    ) -> list[Task]:
        stmt = select(TASK).where(TASK.c.status == S.READY.value)
        if now is not None:
            stmt = stmt.where((TASK.c.not_before.is_(None)) | (TASK.c.not_before <= now))
        if with_action:
            stmt = stmt.where(TASK.c.action_tool.is_not(None))
        if ids is not None:
            stmt = stmt.where(TASK.c.id.in_(list(ids)))
        stmt = stmt.order_by(TASK.c.priority.desc(), TASK.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [V.to_task(r._mapping) for r in conn.execute(stmt)]

    def counts(self, *, ids: Iterable[int] | None = None) -> dict[Status, int]:
        """Number of tasks per status (every status present, zeros included)."""
        stmt = "SELECT status, COUNT(*) FROM todo_task"
        params: dict[str, Any] = {}
        query = text(stmt + " GROUP BY status")
        if ids is not None:
            query = text(stmt + " WHERE id IN :ids GROUP BY status").bindparams(
                bindparam("ids", expanding=True)
            )
            params["ids"] = list(ids)
        out = dict.fromkeys(Status, 0)
        with self._read() as conn:
            for status, n in conn.execute(query, params):
                out[Status(status)] = int(n)
        return out

    def dependencies(self, task_id: int) -> list[int]:
        """Ids of the tasks ``task_id`` depends on."""
        with self._read() as conn:
            self._require(conn, task_id)
            rows = conn.execute(
                text("SELECT depends_on FROM todo_dependency WHERE task_id = :id ORDER BY 1"),
                {"id": task_id},
            )
            return [int(r[0]) for r in rows]

    def dependents(self, task_id: int) -> list[int]:
        """Ids of the tasks that depend on ``task_id``."""
        with self._read() as conn:
            self._require(conn, task_id)
            rows = conn.execute(
                text("SELECT task_id FROM todo_dependency WHERE depends_on = :id ORDER BY 1"),
                {"id": task_id},
            )
            return [int(r[0]) for r in rows]

    def edges(self) -> list[tuple[int, int]]:
        """Every dependency as ``(task_id, depends_on)``."""
        with self._read() as conn:
            rows = conn.execute(text("SELECT task_id, depends_on FROM todo_dependency"))
            return [(int(a), int(b)) for a, b in rows]

    def graph(self, *, ids: Iterable[int] | None = None) -> TaskGraph:
        """A networkx view of the tasks (all, or ``ids`` and the edges among them)."""
        from magray.todo._graph import TaskGraph

        with self._read() as conn:
            stmt = select(TASK).order_by(TASK.c.id)
            if ids is not None:
                stmt = stmt.where(TASK.c.id.in_(list(ids)))
            tasks = [V.to_task(r._mapping) for r in conn.execute(stmt)]
            edges = [
                (int(a), int(b))
                for a, b in conn.execute(text("SELECT task_id, depends_on FROM todo_dependency"))
            ]
        return TaskGraph(tasks, edges)


def _child_status(
    dep_id: int, dep_status: Status, dep_cause: int | None, policy: FailurePolicy
) -> tuple[Status, int | None] | None:
    """What a dependency's status means for a new dependent (``None``: no constraint)."""
    held = S.BLOCKED if policy == "block" else S.SKIPPED
    if dep_status in (S.FAILED, S.CANCELLED):
        return held, dep_id
    if dep_status in (S.BLOCKED, S.SKIPPED):
        return held, dep_cause if dep_cause is not None else dep_id
    if dep_status is S.DONE:
        return None
    return S.PENDING, None
