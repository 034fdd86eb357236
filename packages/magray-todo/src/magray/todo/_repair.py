"""Checking a task database, and rebuilding a damaged one from what still reads.

SQLite finds damage only when a query touches a bad page, so a damaged
database can serve some commands and fail others. :func:`check_database` runs
SQLite's ``integrity_check``; :func:`repair_database` copies every readable,
valid task and dependency into a fresh database (same ids, so ``#12`` stays
``#12``), recomputes ready/pending/blocked from the dependencies that survived,
keeps the damaged file beside it as ``todo.db.damaged-<time>`` and reports
what was lost. The original is only read until the final rename; a ``todo run``
holding the database makes the repair refuse, and other commands writing to it
during the repair would write to the damaged file, so stop them first.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from magray.common.salvage import (
    TableStats,
    damaged_copy,
    integrity_problems,
    readable_rows,
    table_columns,
)
from magray.todo import _rows as V
from magray.todo._model import FINISHED, Status
from magray.todo._resolver import FailurePolicy
from magray.todo._schema import SCHEMA_VERSION, TASK, make_engine, migrate
from magray.todo.errors import RunActiveError, TodoStorageError

__all__ = ["DatabaseCheck", "RepairReport", "check_database", "repair_database"]

_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class DatabaseCheck:
    """The state of a task database file."""

    path: str
    exists: bool
    ok: bool
    problems: list[str] = field(default_factory=list)
    schema: int | None = None
    tasks: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RepairReport:
    """What :func:`repair_database` kept and lost."""

    path: str
    damaged_file: str | None
    """Where the damaged database was moved (``None`` when it was sound and kept)."""
    tasks_saved: int
    tasks_lost: int
    """Tasks that could not be read, or read as garbage (an upper bound: unreadable ranges
    of ids may have held fewer tasks than ids)."""
    lost_ids: list[tuple[int, int]]
    dependencies_saved: int
    dependencies_dropped: int
    """Dependencies unreadable, or naming a task that was lost."""
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_database(path: Path) -> DatabaseCheck:
    """Run SQLite's integrity check on the database at ``path`` (read-only)."""
    if not path.exists():
        return DatabaseCheck(str(path), exists=False, ok=True)
    with damaged_copy(path) as conn:
        problems = integrity_problems(conn)
        schema: int | None = None
        tasks: int | None = None
        with contextlib.suppress(sqlite3.DatabaseError):
            schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
        with contextlib.suppress(sqlite3.DatabaseError):
            tasks = int(conn.execute("SELECT count(*) FROM todo_task").fetchone()[0])
    return DatabaseCheck(str(path), True, not problems, problems, schema, tasks)


def repair_database(
    path: Path,
    *,
    clock: Callable[[], float] = time.time,
    force: bool = False,
    policy: FailurePolicy = "block",
) -> RepairReport:
    """Rebuild the database at ``path`` from its readable rows.

    Args:
        path: The task database.
        clock: The time source (for the damaged file's name and recomputed statuses).
        force: Rebuild even when the integrity check finds nothing wrong.
        policy: How tasks whose dependency failed are held (the store's ``on_failure``).

    Raises:
        RunActiveError: A ``todo run`` holds the database.
        TodoStorageError: No database at ``path``, or the new one cannot be written.
    """
    from filelock import FileLock, Timeout

    from magray.todo._run import lock_path

    if not path.exists():
        raise TodoStorageError(
            f"no task database at {path}",
            hint="nothing to repair; a new one is created on the next command",
            details={"path": str(path)},
        )
    lock = FileLock(str(lock_path(path)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunActiveError(
            f"a run is executing tasks from {path}",
            hint="stop it (or let it finish), then repair",
            details={"path": str(path)},
        ) from None
    try:
        return _repair(path, clock, force, policy)
    finally:
        lock.release()


def _repair(
    path: Path, clock: Callable[[], float], force: bool, policy: FailurePolicy
) -> RepairReport:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(clock()))
    fresh = path.with_name(f"{path.name}.repair-{stamp}")
    with damaged_copy(path) as old:
        problems = integrity_problems(old)
        if not problems and not force:
            saved = _count(old)
            return RepairReport(
                str(path), None, saved, 0, [], _count(old, "todo_dependency"), 0, []
            )
        tasks, stats, rejected = _read_tasks(old)
        deps, deps_dropped, dep_stats = _read_dependencies(old, set(tasks))
        sequence = _sequence(old)
    try:
        _write(fresh, tasks, deps, max(sequence, max(tasks, default=0)), clock(), policy)
    except (OSError, sqlite3.Error, TodoStorageError) as exc:
        for suffix in ("", *_SIDE_FILES):
            with contextlib.suppress(OSError):
                os.unlink(f"{fresh}{suffix}")
        raise TodoStorageError(
            f"cannot write the repaired database {fresh}: {exc}",
            hint="free disk space and check the directory's permissions; the damaged "
            "database was not changed",
            details={"path": str(path)},
        ) from exc
    damaged = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", *_SIDE_FILES):  # the damaged file and its side files, kept together
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, f"{damaged}{suffix}")
    os.replace(fresh, path)
    lost_ids = [*stats.unreadable]
    lost = stats.unreadable_rowids + rejected
    return RepairReport(
        path=str(path),
        damaged_file=str(damaged),
        tasks_saved=len(tasks),
        tasks_lost=lost,
        lost_ids=lost_ids,
        dependencies_saved=len(deps),
        dependencies_dropped=deps_dropped + dep_stats.unreadable_rowids,
        problems=problems,
    )


def _count(conn: sqlite3.Connection, table: str = "todo_task") -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


_COLUMNS = [c.name for c in TASK.columns]


def _read_tasks(conn: sqlite3.Connection) -> tuple[dict[int, dict[str, Any]], TableStats, int]:
    present = set(table_columns(conn, "todo_task"))
    columns = [c for c in _COLUMNS if c in present] or _COLUMNS
    stats = TableStats("todo_task")
    tasks: dict[int, dict[str, Any]] = {}
    rejected = 0
    for row in readable_rows(conn, "todo_task", stats, columns=columns):
        values = dict(zip(columns, row, strict=True))
        if _valid(values):
            tasks[int(values["id"])] = values
        else:
            rejected += 1
    return tasks, stats, rejected


def _valid(values: Mapping[str, Any]) -> bool:
    """Whether a row read from a damaged file is a task and not garbage."""
    try:
        if not isinstance(values["id"], int) or values["id"] <= 0:
            return False
        if not isinstance(values["title"], str) or not values["title"].strip():
            return False
        for name in ("created", "updated"):
            number = values[name]
            if not isinstance(number, int | float) or not math.isfinite(number):
                return False
        for name in ("tags", "action_args", "result"):
            if values.get(name) is not None:
                json.loads(values[name])
        V.to_task(values)
    except Exception:
        return False
    return True


def _read_dependencies(
    conn: sqlite3.Connection, alive: set[int]
) -> tuple[list[tuple[int, int]], int, TableStats]:
    stats = TableStats("todo_dependency")
    kept: list[tuple[int, int]] = []
    dropped = 0
    for task_id, depends_on in readable_rows(
        conn, "todo_dependency", stats, columns=["task_id", "depends_on"]
    ):
        if task_id in alive and depends_on in alive and task_id != depends_on:
            kept.append((int(task_id), int(depends_on)))
        else:
            dropped += 1
    return kept, dropped, stats


def _sequence(conn: sqlite3.Connection) -> int:
    """The AUTOINCREMENT high-water mark, so no id of a lost task is handed out again."""
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'todo_task'").fetchone()
    except sqlite3.DatabaseError:
        return 0
    return int(row[0]) if row and isinstance(row[0], int) else 0


def _write(  # noqa: PLR0917 - one private call site
    fresh: Path,
    tasks: dict[int, dict[str, Any]],
    deps: list[tuple[int, int]],
    sequence: int,
    now: float,
    policy: FailurePolicy,
) -> None:
    from sqlalchemy import insert, text

    from magray.todo._resolver import settle

    engine = make_engine(fresh)
    try:
        migrate(engine, fresh)
        with engine.connect().execution_options(todo_write=True) as conn, conn.begin():
            rows = list(tasks.values())
            for start in range(0, len(rows), 1000):
                conn.execute(insert(TASK), rows[start : start + 1000])
            if deps:
                conn.exec_driver_sql(
                    "INSERT OR IGNORE INTO todo_dependency (task_id, depends_on) VALUES (?, ?)",
                    deps,
                )
            moved = conn.execute(
                text("UPDATE sqlite_sequence SET seq = :seq WHERE name = 'todo_task'"),
                {"seq": sequence},
            )
            if moved.rowcount == 0:
                conn.execute(
                    text("INSERT INTO sqlite_sequence (name, seq) VALUES ('todo_task', :seq)"),
                    {"seq": sequence},
                )
            # Blocked or skipped tasks whose cause was lost, and everything unfinished,
            # settle again from the dependencies that survived.
            lost_cause = [
                t["id"]
                for t in rows
                if t.get("cause") is not None
                and t["cause"] not in tasks
                and t["status"] in (Status.BLOCKED.value, Status.SKIPPED.value)
            ]
            unfinished = [t["id"] for t in rows if Status(t["status"]) not in FINISHED]
            settle(conn, unfinished, policy, now, reopened=lost_cause)
            conn.exec_driver_sql(f"PRAGMA user_version={SCHEMA_VERSION}")
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    for suffix in _SIDE_FILES:  # the last connection checkpointed; nothing is left in them
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{fresh}{suffix}")
