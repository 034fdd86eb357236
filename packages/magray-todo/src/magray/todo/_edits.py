"""Editing tasks and dependencies (cycle-checked), deleting tasks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, text

from magray.todo import _resolver as R
from magray.todo import _rows as V
from magray.todo._core import UNSET, StoreCore, _chunks
from magray.todo._graph import check_acyclic
from magray.todo._model import Action, Status, Task
from magray.todo._resolver import Change
from magray.todo._schema import DEP, TASK
from magray.todo.errors import (
    CycleError,
    InvalidTransitionError,
    TaskNotFoundError,
    TodoInputError,
)

__all__ = ["EditsMixin"]

S = Status

_FEW_EDGES = 64  # up to this many new edges are cycle-checked one by one in SQL


class EditsMixin(StoreCore):
    """Field edits, dependencies and deletion (part of :class:`~magray.todo.TodoStore`)."""

    # ------------------------------------------------------------ edit
    def update(
        self,
        task_id: int,
        *,
        title: str = UNSET,
        description: str = UNSET,
        priority: int = UNSET,
        tags: Iterable[str] = UNSET,
        due: datetime | None = UNSET,
        max_attempts: int = UNSET,
        timeout: float | None = UNSET,
        estimate: float | None = UNSET,
        action: Action | None = UNSET,
        idempotent: bool = UNSET,
    ) -> Task:
        """Change fields of a task (status is changed only by the transition methods).

        Arguments left as :data:`UNSET` keep their value; ``None`` clears an
        optional field.
        """
        values: dict[str, Any] = {}
        if title is not UNSET:
            values["title"] = V.check_title(title)
        if description is not UNSET:
            values["description"] = description or ""
        if priority is not UNSET:
            values["priority"] = V.check_int(priority, "priority")
        if tags is not UNSET:
            values["tags"] = V.dump_tags(tuple(tags))
        if due is not UNSET:
            values["due"] = V.epoch(due)
        if max_attempts is not UNSET:
            if V.check_int(max_attempts, "max_attempts") < 1:
                raise TodoInputError("max_attempts must be at least 1")
            values["max_attempts"] = max_attempts
        if timeout is not UNSET:
            values["timeout"] = V.check_positive(timeout, "timeout")
        if estimate is not UNSET:
            values["estimate"] = V.check_positive(estimate, "estimate", allow_zero=True)
        if action is not UNSET:
            values["action_tool"] = V.check_action(action).tool if action else None
            values["action_args"] = R.dumps(action.args) if action else None
        if idempotent is not UNSET:
            values["idempotent"] = bool(idempotent)
        with self._write() as conn:
            self._require(conn, task_id)
            if values:
                values["updated"] = self.now()
                conn.execute(TASK.update().where(TASK.c.id == task_id).values(**values))
            return self._fetch(conn, [task_id])[0]

    def add_dependency(self, task_id: int, depends_on: int) -> Task:
        """Make ``task_id`` wait for ``depends_on``.

        Returns:
            The dependent task, re-settled (a ready task becomes pending).

        Raises:
            CycleError: ``depends_on`` already depends on ``task_id``; the
                message names the cycle.
            InvalidTransitionError: ``task_id`` is running or done.
        """
        self.add_dependencies([(task_id, depends_on)])
        return self.get(task_id)

    def add_dependencies(self, pairs: Iterable[tuple[int, int]]) -> list[Change]:
        """Add many ``(task_id, depends_on)`` edges in one transaction (all or none).

        A few edges are each checked with a recursive SQL query; for a large
        batch the whole graph is checked once with networkx, so adding
        thousands of edges costs one check, not one per edge.
        """
        pairs = list(dict.fromkeys((int(a), int(b)) for a, b in pairs))
        if not pairs:
            return []
        now = self.now()
        with self._write() as conn:
            touched = {a for a, _ in pairs}
            statuses = self._statuses(conn, touched | {b for _, b in pairs})
            for a, b in pairs:
                for task in (a, b):
                    if task not in statuses:
                        raise TaskNotFoundError(task)
                if a == b:
                    raise CycleError([a, a])
                if statuses[a][0] in (S.RUNNING, S.DONE):
                    raise InvalidTransitionError(
                        f"task #{a} is {statuses[a][0].value}; it cannot get new dependencies",
                        hint="dependencies are for tasks that have not started",
                    )
            if len(pairs) <= _FEW_EDGES:
                # Few edges: targeted lookups and one recursive query per edge.
                new = [p for p in pairs if not self._has_edge(conn, *p)]
                for a, b in new:
                    self._check_one(conn, a, b)
                    conn.execute(insert(DEP), [{"task_id": a, "depends_on": b}])
            else:
                # Many edges: one acyclicity check of the whole graph with networkx.
                rows = conn.execute(text("SELECT task_id, depends_on FROM todo_dependency"))
                known = {(int(x), int(y)) for x, y in rows}
                new = [p for p in pairs if p not in known]
                if new:
                    check_acyclic(known | set(new))
                    conn.execute(insert(DEP), [{"task_id": a, "depends_on": b} for a, b in new])
            if not new:
                return []
            return R.settle(conn, sorted({a for a, _ in new}), self.on_failure, now)

    @staticmethod
    def _has_edge(conn: Connection, task_id: int, depends_on: int) -> bool:
        row = conn.execute(
            text("SELECT 1 FROM todo_dependency WHERE task_id = :a AND depends_on = :b"),
            {"a": task_id, "b": depends_on},
        ).first()
        return row is not None

    def _check_one(self, conn: Connection, task_id: int, depends_on: int) -> None:
        """Reject ``task_id -> depends_on`` if ``depends_on`` reaches ``task_id``."""
        reach = conn.execute(
            text(
                """
                WITH RECURSIVE up(id) AS (
                    SELECT depends_on FROM todo_dependency WHERE task_id = :start
                    UNION
                    SELECT d.depends_on FROM todo_dependency d JOIN up ON d.task_id = up.id
                )
                SELECT 1 FROM up WHERE id = :target LIMIT 1
                """
            ),
            {"start": depends_on, "target": task_id},
        ).first()
        if reach is not None:
            edges = conn.execute(text("SELECT task_id, depends_on FROM todo_dependency")).all()
            check_acyclic(
                {(int(a), int(b)) for a, b in edges} | {(task_id, depends_on)}, start=task_id
            )

    def remove_dependency(self, task_id: int, depends_on: int) -> bool:
        """Drop one edge; the dependent may become ready. Returns whether it existed."""
        now = self.now()
        with self._write() as conn:
            self._require(conn, task_id)
            self._require(conn, depends_on)
            gone = conn.execute(
                text("DELETE FROM todo_dependency WHERE task_id = :a AND depends_on = :b"),
                {"a": task_id, "b": depends_on},
            ).rowcount
            if not gone:
                return False
            status, cause = R.status_of(conn, task_id)
            if status in (S.BLOCKED, S.SKIPPED) and cause is not None:
                # It may have been blocked through this very edge: re-derive it.
                R.set_status(conn, [task_id], S.PENDING, now)
                R.reopen(conn, [cause], self.on_failure, now)
            R.settle(conn, [task_id], self.on_failure, now)
            return True

    def delete(self, task_id: int) -> None:
        """Delete one task and its edges; dependents are re-settled."""
        self.clear(statuses=None, ids=[task_id])

    def clear(
        self,
        *,
        statuses: Iterable[Status | str] | None = (S.DONE, S.CANCELLED),
        ids: Iterable[int] | None = None,
    ) -> int:
        """Delete tasks (default: done and cancelled ones); returns how many.

        ``statuses=None`` with ``ids=None`` deletes every task. Dependents of
        deleted tasks lose those edges and are re-settled (a task waiting only
        on a deleted one becomes ready).
        """
        now = self.now()
        with self._write() as conn:
            stmt = select(TASK.c.id)
            if statuses is not None:
                stmt = stmt.where(TASK.c.status.in_([V.status(s).value for s in statuses]))
            if ids is not None:
                wanted = list(ids)
                stmt = stmt.where(TASK.c.id.in_(wanted))
                for task_id in wanted:
                    self._require(conn, task_id)
            doomed = [int(r[0]) for r in conn.execute(stmt)]
            if not doomed:
                return 0
            dependents = {
                int(r[0])
                for r in conn.execute(
                    text("SELECT task_id FROM todo_dependency WHERE depends_on IN :ids").bindparams(
                        bindparam("ids", expanding=True)
                    ),
                    {"ids": doomed},
                )
            } - set(doomed)
            for chunk in _chunks(doomed, 10_000):
                conn.execute(TASK.delete().where(TASK.c.id.in_(chunk)))
            R.reopen(conn, doomed, self.on_failure, now)
            R.settle(conn, sorted(dependents), self.on_failure, now)
            return len(doomed)
