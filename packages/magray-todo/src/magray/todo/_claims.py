"""The executor's side of the store: claiming, recording outcomes, crash recovery.

These run inside the store's write transactions but are only called by
:class:`~magray.todo._run.RunCore`; users change tasks through
:class:`~magray.todo.TodoStore`'s public methods.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, select, text

from magray.todo import _resolver as R
from magray.todo._model import Status, Task
from magray.todo._resolver import Change
from magray.todo._schema import TASK
from magray.todo._store import TodoStore

__all__ = ["claim", "defer", "finish", "next_retry_at", "reset_stale", "scope"]

S = Status


def claim(
    store: TodoStore,
    run_id: str,
    limit: int,
    *,
    with_action: bool = False,
    ids: frozenset[int] | None = None,
) -> list[Task]:
    """Move up to ``limit`` ready tasks to running for ``run_id`` (one transaction)."""
    now = store.now()
    with store._write() as conn:
        picked = store._ready(conn, limit=limit, now=now, with_action=with_action, ids=ids)
        if not picked:
            return []
        claimed = conn.execute(
            text(
                "UPDATE todo_task SET status = 'running', attempts = attempts + 1, "
                "started = :now, updated = :now, run_id = :run, not_before = NULL "
                "WHERE id IN :ids AND status = 'ready' RETURNING id"
            ).bindparams(bindparam("ids", expanding=True)),
            {"now": now, "run": run_id, "ids": [t.id for t in picked]},
        ).all()
        return store._fetch(conn, sorted(int(r[0]) for r in claimed), keep_order=picked)


def defer(store: TodoStore, run_id: str, ids: Sequence[int], until: float) -> None:
    """Give back claimed tasks that could not start: ready from ``until``, attempt uncounted."""
    if not ids:
        return
    with store._write() as conn:
        conn.execute(
            text(
                "UPDATE todo_task SET status = 'ready', attempts = MAX(attempts - 1, 0), "
                "not_before = :until, updated = :now "
                f"WHERE id {R._IN_IDS} AND status = 'running' AND run_id = :run"
            ),
            {"ids": R._ids(ids), "until": until, "now": store.now(), "run": run_id},
        )


def finish(
    store: TodoStore,
    run_id: str,
    outcomes: Sequence[tuple[int, bool, Any, float | None]],
) -> list[Change]:
    """Record attempt outcomes ``(task_id, ok, result_or_error, retry_at)``.

    ``retry_at`` is ``None`` for a final failure. Tasks no longer running
    under ``run_id`` (cancelled meanwhile) are left alone.
    """
    now = store.now()
    changes: list[Change] = []
    with store._write() as conn:
        done: list[int] = []
        failed: list[int] = []
        for task_id, ok, value, retry_at in outcomes:
            where = "WHERE id = :id AND status = 'running' AND run_id = :run"
            params: dict[str, Any] = {"id": task_id, "run": run_id, "now": now}
            if ok:
                sql = (
                    "UPDATE todo_task SET status = 'done', finished = :now, updated = :now, "
                    f"result = :value, error = NULL {where}"
                )
                params["value"] = R.dumps(value)
                new = S.DONE
            elif retry_at is not None:
                sql = (
                    "UPDATE todo_task SET status = 'ready', updated = :now, "
                    f"error = :value, not_before = :at {where}"
                )
                params.update(value=str(value), at=retry_at)
                new = S.READY
            else:
                sql = (
                    "UPDATE todo_task SET status = 'failed', finished = :now, "
                    f"updated = :now, error = :value {where}"
                )
                params["value"] = str(value)
                new = S.FAILED
            if conn.execute(text(sql), params).rowcount:
                changes.append(Change(task_id, S.RUNNING, new))
                if new is S.DONE:
                    done.append(task_id)
                elif new is S.FAILED:
                    failed.append(task_id)
        for task_id in failed:
            changes += R.cascade_failure(conn, [task_id], task_id, store.on_failure, now)
        changes += R.promote(conn, done, now)
    return changes


def reset_stale(store: TodoStore, note: str, *, still_running: Iterable[int] = ()) -> list[Change]:
    """Reset every running task (the caller holds the run lock, so all are stale).

    Idempotent tasks go back to ready (the interrupted attempt is not
    counted; no executor starts one while a process of the old attempt still
    holds its task lock); others fail with an explanation, because running
    them twice might repeat a side effect. ``still_running`` names tasks
    whose lock is still held, so their message says so.
    """
    alive = set(still_running)
    now = store.now()
    changes: list[Change] = []
    with store._write() as conn:
        rows = conn.execute(
            text("SELECT id, idempotent FROM todo_task WHERE status = 'running'")
        ).all()
        again = [int(r[0]) for r in rows if r[1]]
        stop = [int(r[0]) for r in rows if not r[1]]
        if again:
            R.set_status(
                conn,
                again,
                S.READY,
                now,
                extra={"error": f"interrupted: {note}; re-run (idempotent)"},
            )
            conn.execute(
                text(
                    "UPDATE todo_task SET attempts = MAX(attempts - 1, 0) WHERE id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": again},
            )
            changes += [Change(i, S.RUNNING, S.READY) for i in again]
        for task_id in stop:
            where = (
                "a process it started is still running; once it ends, " if task_id in alive else ""
            )
            R.set_status(
                conn,
                [task_id],
                S.FAILED,
                now,
                finished=True,
                extra={
                    "error": f"interrupted: {note}; not marked idempotent, so not re-run "
                    f"automatically: {where}check its effects, then "
                    f"`magray todo retry {task_id}` or `magray todo done {task_id}`"
                },
            )
            changes.append(Change(task_id, S.RUNNING, S.FAILED))
            changes += R.cascade_failure(conn, [task_id], task_id, store.on_failure, now)
    return changes


def next_retry_at(
    store: TodoStore, *, ids: frozenset[int] | None, with_action: bool
) -> float | None:
    """Earliest ``not_before`` among ready tasks (``None`` if none wait)."""
    stmt = select(TASK.c.not_before).where(
        (TASK.c.status == S.READY.value) & TASK.c.not_before.is_not(None)
    )
    if with_action:
        stmt = stmt.where(TASK.c.action_tool.is_not(None))
    if ids is not None:
        stmt = stmt.where(TASK.c.id.in_(list(ids)))
    stmt = stmt.order_by(TASK.c.not_before).limit(1)
    with store._read() as conn:
        value = conn.execute(stmt).scalar()
    return None if value is None else float(value)


def scope(store: TodoStore, targets: Iterable[int]) -> frozenset[int]:
    """``targets`` and every task they transitively depend on."""
    targets = list(targets)
    with store._read() as conn:
        for task_id in targets:
            store._require(conn, task_id)
        rows = conn.execute(
            text(
                """
                WITH RECURSIVE up(id) AS (
                    SELECT value FROM json_each(:targets)
                    UNION
                    SELECT d.depends_on FROM todo_dependency d JOIN up ON d.task_id = up.id
                )
                SELECT id FROM up
                """
            ),
            {"targets": json.dumps(targets)},
        )
        return frozenset(int(r[0]) for r in rows)
