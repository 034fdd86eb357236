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
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, text

from magray.todo._graph import kahn
from magray.todo._model import TRANSITIONS, Status
from magray.todo.errors import InvalidTransitionError, TaskNotFoundError

__all__ = ["Change", "FailurePolicy"]

FailurePolicy = Literal["block", "skip"]
S = Status
_STATUS = {s.value: s for s in Status}  # a dict lookup is much faster than Status(value)


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


def _ids(values: Iterable[int]) -> str:
    """A list of ids as one JSON parameter (``IN (SELECT value FROM json_each(:ids))``).

    One bound parameter whatever the length, so no statement hits SQLite's
    limit on variables (32,766) however large the graph.
    """
    return json.dumps([int(v) for v in values])


_IN_IDS = "IN (SELECT value FROM json_each(:ids))"
_HOLDING = "('blocked', 'skipped', 'cancelled')"  # statuses that name a cause


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
    params: dict[str, Any] = {"status": new.value, "now": now, "cause": cause, "ids": _ids(ids)}
    if finished:
        sets.append("finished = :now")
    for key, value in (extra or {}).items():
        sets.append(f"{key} = :x_{key}")
        params[f"x_{key}"] = value
    conn.execute(text(f"UPDATE todo_task SET {', '.join(sets)} WHERE id {_IN_IDS}"), params)


_DOWN = """
    WITH RECURSIVE down(id) AS (
        SELECT task_id FROM todo_dependency WHERE depends_on {roots}
        UNION
        SELECT d.task_id FROM todo_dependency d JOIN down ON d.depends_on = down.id
    )
"""


def descendants(conn: Connection, roots: Iterable[int]) -> list[tuple[int, Status]]:
    """All transitive dependents of ``roots`` with their statuses."""
    roots = list(roots)
    if not roots:
        return []
    stmt = text(
        _DOWN.format(roots=_IN_IDS)
        + "SELECT t.id, t.status FROM todo_task t JOIN down ON t.id = down.id"
    )
    return [(int(r[0]), _STATUS[r[1]]) for r in conn.execute(stmt, {"ids": _ids(roots)})]


def _held(policy: FailurePolicy) -> Status:
    return S.BLOCKED if policy == "block" else S.SKIPPED


def cascade_failure(
    conn: Connection, roots: Sequence[int], cause: int, policy: FailurePolicy, now: float
) -> list[Change]:
    """Block (or skip) every pending/ready descendant of ``roots``."""
    new = _held(policy)
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
        f"""
        UPDATE todo_task SET status = 'ready', updated = :now
        WHERE status = 'pending'
          AND id IN (SELECT task_id FROM todo_dependency WHERE depends_on {_IN_IDS})
          AND NOT EXISTS (
              SELECT 1 FROM todo_dependency d JOIN todo_task t2 ON t2.id = d.depends_on
              WHERE d.task_id = todo_task.id AND t2.status != 'done'
          )
        RETURNING id
        """
    )
    rows = conn.execute(stmt, {"ids": _ids(finished_ids), "now": now}).all()
    return [Change(int(r[0]), S.PENDING, S.READY) for r in rows]


# One row per (candidate, dependency): the candidate's status and the dependency's.
_SETTLE_ROWS = text(
    f"""
    SELECT t.id, t.status, d.depends_on, p.status, p.cause
    FROM todo_task t
    LEFT JOIN todo_dependency d ON d.task_id = t.id
    LEFT JOIN todo_task p ON p.id = d.depends_on
    WHERE t.id {_IN_IDS}
    ORDER BY t.id, d.depends_on
    """
)

# Every edge below the roots: (parent, child, child's status).
_BELOW = text(
    _DOWN.format(roots=_IN_IDS)
    + """
    , region(id) AS (SELECT value FROM json_each(:ids) UNION SELECT id FROM down)
    SELECT d.depends_on, d.task_id, t.status
    FROM region JOIN todo_dependency d ON d.depends_on = region.id
    JOIN todo_task t ON t.id = d.task_id
    """
)

_Dep = tuple[int, Status, int | None]


def settle(
    conn: Connection,
    ids: Iterable[int],
    policy: FailurePolicy,
    now: float,
    *,
    reopened: Iterable[int] = (),
) -> list[Change]:
    """Recompute pending/ready/blocked for ``ids`` from their dependencies.

    Only tasks currently ``pending`` or ``ready`` are touched, and those in
    ``reopened`` (held or cancelled tasks being re-opened: they settle as if
    pending, and their ``finished`` time is cleared). Set-based: one query
    reads the candidates with their dependencies' statuses, the new statuses
    are computed in topological order in memory (a task sees its
    dependencies' settled status), and one ``UPDATE`` per resulting
    ``(status, cause)`` writes them. A task that becomes blocked (or
    skipped) blocks its pending/ready descendants too, with the same cause.
    """
    again = set(reopened)
    ids = list(dict.fromkeys([*ids, *again]))
    if not ids:
        return []
    held = _held(policy)
    old: dict[int, Status] = {}
    deps: dict[int, list[_Dep]] = {}
    for task_id, stored, dep, dep_status, dep_cause in conn.execute(
        _SETTLE_ROWS, {"ids": _ids(ids)}
    ):
        status = _STATUS[stored]
        if status not in (S.PENDING, S.READY) and task_id not in again:
            continue
        old.setdefault(task_id, status)
        found = deps.setdefault(task_id, [])
        if dep is not None:
            found.append((dep, _STATUS[dep_status], dep_cause))
    state: dict[int, tuple[Status, int | None]] = {}
    roots: list[int] = []
    for task_id in _topo(old, deps):
        new, cause = S.READY, None
        for dep, dep_status, dep_cause in deps[task_id]:
            status, via = state.get(dep, (dep_status, dep_cause))
            if status in (S.FAILED, S.CANCELLED):
                new, cause = held, dep
                break
            if status in (S.BLOCKED, S.SKIPPED):
                new, cause = held, via if via is not None else dep
                break
            if status is not S.DONE:
                new = S.PENDING
        state[task_id] = (new, cause)
        if new is held:
            roots.append(task_id)
    if roots:
        _block_below(conn, roots, state, old, held)
    groups: dict[tuple[Status, int | None, bool], list[int]] = {}
    changes: list[Change] = []
    for task_id, (new, cause) in state.items():
        if task_id in again or new is not old[task_id]:
            groups.setdefault((new, cause, task_id in again), []).append(task_id)
        if new is not old[task_id]:
            changes.append(Change(task_id, old[task_id], new))
    for (new, cause, cleared), members in groups.items():
        set_status(
            conn, members, new, now, cause=cause, extra={"finished": None} if cleared else None
        )
    return changes


def _topo(nodes: dict[int, Status], deps: dict[int, list[_Dep]]) -> list[int]:
    """``nodes`` with dependencies first."""
    return kahn(nodes, ((task_id, dep) for task_id, found in deps.items() for dep, _, _ in found))


def _block_below(
    conn: Connection,
    roots: list[int],
    state: dict[int, tuple[Status, int | None]],
    old: dict[int, Status],
    held: Status,
) -> None:
    """Hold every pending/ready descendant of newly held ``roots`` (in ``state``).

    One recursive query reads the edges below the roots; the cause spreads
    breadth-first, so a task below several roots takes the first root's cause.
    """
    children: dict[int, list[int]] = {}
    stored: dict[int, Status] = {}
    for parent, child, status in conn.execute(_BELOW, {"ids": _ids(roots)}):
        children.setdefault(int(parent), []).append(int(child))
        stored[int(child)] = _STATUS[status]
    cause = {root: state[root][1] for root in roots}
    queue = deque(roots)
    while queue:
        node = queue.popleft()
        for child in children.get(node, ()):
            if child in cause:
                continue
            cause[child] = cause[node]
            queue.append(child)
            old.setdefault(child, stored[child])
            current = state[child][0] if child in state else old[child]
            if current in (S.PENDING, S.READY):
                state[child] = (held, cause[node])


def reopen(
    conn: Connection, causes: Iterable[int], policy: FailurePolicy, now: float
) -> list[Change]:
    """Re-open descendants that were blocked, skipped or cancelled by ``causes``.

    Transitively: a task held by one that is re-opened here is re-opened too
    (a cascaded cancel can overwrite a failure that others were blocked by).
    Each keeps its hold only if it still follows from its dependencies.
    """
    causes = list(causes)
    if not causes:
        return []
    stmt = text(
        f"""
        WITH RECURSIVE hit(id) AS (
            SELECT id FROM todo_task WHERE cause {_IN_IDS} AND status IN {_HOLDING}
            UNION
            SELECT t.id FROM todo_task t JOIN hit ON t.cause = hit.id
            WHERE t.status IN {_HOLDING}
        )
        SELECT id FROM hit
        """
    )
    hit = [int(r[0]) for r in conn.execute(stmt, {"ids": _ids(causes)})]
    return settle(conn, (), policy, now, reopened=hit)


def dumps(value: Any) -> str:
    """JSON text for results and args; values JSON cannot hold become strings."""
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
