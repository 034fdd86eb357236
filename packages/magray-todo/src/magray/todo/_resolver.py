"""The status state machine: validated transitions and their cascades.

Every function here runs inside the caller's write transaction (``conn``)
and returns the :class:`Change` list it made, so an executor can keep its
counters current without re-reading the database. Rules:

- A task is ``ready`` exactly when all its dependencies are ``done``.
- A task that fails for good makes every unfinished descendant ``blocked``
  (policy ``"block"``) or ``skipped`` (policy ``"skip"``), remembering the
  failed task as ``cause``.
- Cancelling cascades ``cancelled`` to every descendant not yet finished.
- Retrying (or marking done) a failed/cancelled task re-opens exactly the
  descendants whose ``cause`` it is; they settle to pending/ready/blocked
  again from their own dependencies, in topological order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, text

from magray.todo._model import TRANSITIONS, Status
from magray.todo.errors import InvalidTransitionError, TaskNotFoundError

__all__ = ["Change", "FailurePolicy"]

FailurePolicy = Literal["block", "skip"]
S = Status


@dataclass(frozen=True, slots=True)
class Change:
    """One status change made by a transition."""

    task_id: int
    old: Status
    new: Status


def check(task_id: int, old: Status, new: Status, *, hint: str | None = None) -> None:
    """Raise :class:`InvalidTransitionError` unless ``old -> new`` is allowed."""
    if new not in TRANSITIONS[old]:
        raise InvalidTransitionError(
            f"task #{task_id} is {old.value}; it cannot become {new.value}",
            hint=hint or _default_hint(task_id, old),
            details={"task_id": task_id, "from": old.value, "to": new.value},
        )


def _default_hint(task_id: int, old: Status) -> str:
    if old is S.DONE:
        return "a done task is final; add a new task to repeat the work"
    if old in (S.FAILED, S.CANCELLED):
        return f"`magray todo retry {task_id}` re-opens it"
    if old in (S.BLOCKED, S.SKIPPED):
        return f"`magray todo show {task_id}` names the task it waits on (its cause)"
    return f"`magray todo show {task_id}` shows its state"


def status_of(conn: Connection, task_id: int) -> tuple[Status, int | None]:
    row = conn.execute(
        text("SELECT status, cause FROM todo_task WHERE id = :id"), {"id": task_id}
    ).first()
    if row is None:
        raise TaskNotFoundError(task_id)
    return Status(row[0]), row[1]


def set_status(
    conn: Connection,
    ids: Sequence[int],
    new: Status,
    now: float,
    *,
    cause: int | None = None,
    finished: bool = False,
    extra: dict[str, Any] | None = None,
) -> None:
    """Unchecked bulk status write (callers validated the transition)."""
    if not ids:
        return
    sets = ["status = :status", "updated = :now", "cause = :cause"]
    params: dict[str, Any] = {"status": new.value, "now": now, "cause": cause, "ids": list(ids)}
    if finished:
        sets.append("finished = :now")
    for key, value in (extra or {}).items():
        sets.append(f"{key} = :x_{key}")
        params[f"x_{key}"] = value
    stmt = text(f"UPDATE todo_task SET {', '.join(sets)} WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    conn.execute(stmt, params)


def descendants(conn: Connection, roots: Iterable[int]) -> list[tuple[int, Status]]:
    """All transitive dependents of ``roots`` with their statuses."""
    roots = list(roots)
    if not roots:
        return []
    stmt = text(
        """
        WITH RECURSIVE down(id) AS (
            SELECT task_id FROM todo_dependency WHERE depends_on IN :roots
            UNION
            SELECT d.task_id FROM todo_dependency d JOIN down ON d.depends_on = down.id
        )
        SELECT t.id, t.status FROM todo_task t JOIN down ON t.id = down.id
        """
    ).bindparams(bindparam("roots", expanding=True))
    return [(int(r[0]), Status(r[1])) for r in conn.execute(stmt, {"roots": roots})]


def cascade_failure(
    conn: Connection, roots: Sequence[int], cause: int, policy: FailurePolicy, now: float
) -> list[Change]:
    """Block (or skip) every pending/ready descendant of ``roots``."""
    new = S.BLOCKED if policy == "block" else S.SKIPPED
    hit = [(i, s) for i, s in descendants(conn, roots) if s in (S.PENDING, S.READY)]
    set_status(conn, [i for i, _ in hit], new, now, cause=cause)
    return [Change(i, s, new) for i, s in hit]


def cascade_cancel(conn: Connection, root: int, now: float) -> list[Change]:
    """Cancel every descendant of ``root`` that has not finished."""
    hit = [(i, s) for i, s in descendants(conn, [root]) if s not in (S.DONE, S.CANCELLED)]
    set_status(conn, [i for i, _ in hit], S.CANCELLED, now, cause=root, finished=True)
    return [Change(i, s, S.CANCELLED) for i, s in hit]


def promote(conn: Connection, finished_ids: Sequence[int], now: float) -> list[Change]:
    """Make ready the pending dependents of ``finished_ids`` whose dependencies are all done."""
    if not finished_ids:
        return []
    stmt = text(
        """
        UPDATE todo_task SET status = 'ready', updated = :now
        WHERE status = 'pending'
          AND id IN (SELECT task_id FROM todo_dependency WHERE depends_on IN :ids)
          AND NOT EXISTS (
              SELECT 1 FROM todo_dependency d JOIN todo_task t2 ON t2.id = d.depends_on
              WHERE d.task_id = todo_task.id AND t2.status != 'done'
          )
        RETURNING id
        """
    ).bindparams(bindparam("ids", expanding=True))
    rows = conn.execute(stmt, {"ids": list(finished_ids), "now": now}).all()
    return [Change(int(r[0]), S.PENDING, S.READY) for r in rows]


def settle(conn: Connection, ids: Iterable[int], policy: FailurePolicy, now: float) -> list[Change]:
    """Recompute pending/ready/blocked for ``ids`` from their dependencies.

    Only tasks currently ``pending`` or ``ready`` are touched; they are visited
    in topological order, so a task sees its dependencies' settled status.
    """
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    changes: list[Change] = []
    for task_id in topo_order(conn, ids):
        old, _ = status_of(conn, task_id)
        if old not in (S.PENDING, S.READY):
            continue
        deps = conn.execute(
            text(
                "SELECT t.id, t.status, t.cause FROM todo_dependency d "
                "JOIN todo_task t ON t.id = d.depends_on WHERE d.task_id = :id"
            ),
            {"id": task_id},
        ).all()
        new, cause = S.READY, None
        for dep_id, dep_status, dep_cause in deps:
            status = Status(dep_status)
            if status in (S.FAILED, S.CANCELLED):
                new, cause = (S.BLOCKED if policy == "block" else S.SKIPPED), int(dep_id)
                break
            if status in (S.BLOCKED, S.SKIPPED):
                new = S.BLOCKED if policy == "block" else S.SKIPPED
                cause = int(dep_cause) if dep_cause is not None else int(dep_id)
                break
            if status is not S.DONE:
                new = S.PENDING
        if new is old:
            continue
        set_status(conn, [task_id], new, now, cause=cause)
        changes.append(Change(task_id, old, new))
        if new in (S.BLOCKED, S.SKIPPED) and cause is not None:
            changes.extend(cascade_failure(conn, [task_id], cause, policy, now))
    return changes


def reopen(
    conn: Connection, causes: Iterable[int], policy: FailurePolicy, now: float
) -> list[Change]:
    """Re-open descendants that were blocked, skipped or cancelled by ``causes``."""
    causes = list(causes)
    if not causes:
        return []
    stmt = text(
        "SELECT id, status FROM todo_task WHERE cause IN :causes "
        "AND status IN ('blocked', 'skipped', 'cancelled')"
    ).bindparams(bindparam("causes", expanding=True))
    hit = [(int(r[0]), Status(r[1])) for r in conn.execute(stmt, {"causes": causes})]
    ids = [i for i, _ in hit]
    set_status(conn, ids, S.PENDING, now, extra={"finished": None})
    changes = [Change(i, s, S.PENDING) for i, s in hit]
    settled = {c.task_id: c for c in settle(conn, ids, policy, now)}
    # Fold "blocked -> pending -> ready" into one change per task.
    out = []
    for change in changes:
        later = settled.pop(change.task_id, None)
        if later is None:
            out.append(change)
        elif later.new is not change.old:
            out.append(Change(change.task_id, change.old, later.new))
    return out + list(settled.values())


def topo_order(conn: Connection, ids: Sequence[int]) -> list[int]:
    """``ids`` sorted so that dependencies come first (Kahn's algorithm on their edges)."""
    wanted = set(ids)
    if len(wanted) == 1:
        return list(wanted)
    stmt = text(
        "SELECT task_id, depends_on FROM todo_dependency "
        "WHERE task_id IN :ids AND depends_on IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    indegree = dict.fromkeys(ids, 0)
    children: dict[int, list[int]] = {}
    for task_id, dep in conn.execute(stmt, {"ids": list(wanted)}):
        indegree[task_id] += 1
        children.setdefault(dep, []).append(task_id)
    queue = sorted(i for i, d in indegree.items() if d == 0)
    order: list[int] = []
    while queue:
        node = queue.pop()
        order.append(node)
        for child in children.get(node, ()):
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    return order


def dumps(value: Any) -> str:
    """JSON text for results and args; values JSON cannot hold become strings."""
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
