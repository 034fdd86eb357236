"""Health checks for ``magray health`` (entry-point group ``magray.health``).

They open the database read-only, so a health check never creates,
migrates or locks anything.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from magray.common.health import HealthRegistry, HealthResult
from magray.common.salvage import is_corruption

__all__ = ["register"]


def register(registry: HealthRegistry, settings: Any) -> None:
    """Add ``todo.database`` (reachable, schema version) and ``todo.stale_runs``."""
    section = getattr(settings, "todo", None)
    registry.register("todo.database", lambda: check_database(_path(section)))
    registry.register("todo.stale_runs", lambda: check_stale(_path(section)))


def _path(section: Any) -> Path:
    from magray.todo._store import default_path

    return default_path(section)


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)


def check_database(path: Path) -> HealthResult:
    """The database opens, and its schema version is one this code knows."""
    from magray.todo._schema import SCHEMA_VERSION

    if not path.exists():
        return HealthResult.ok("no task database yet; created on first use", path=str(path))
    try:
        with contextlib.closing(_connect(path)) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tasks = int(conn.execute("SELECT COUNT(*) FROM todo_task").fetchone()[0])
            damage = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.Error as exc:
        damage = [str(exc)] if is_corruption(exc) else []
        if not damage:
            return HealthResult.failed(f"cannot read {path}: {exc}", path=str(path))
    if damage != ["ok"]:
        return HealthResult.failed(
            f"{path} is damaged ({damage[0]}); `magray todo check --repair` keeps what reads",
            path=str(path),
            problems=damage,
        )
    if version > SCHEMA_VERSION:
        return HealthResult.failed(
            f"schema v{version} is newer than this magray-todo knows (v{SCHEMA_VERSION}); "
            "upgrade magray-todo",
            path=str(path),
            schema=version,
        )
    if version < SCHEMA_VERSION:
        return HealthResult.degraded(
            f"schema v{version}; migrated to v{SCHEMA_VERSION} on next use",
            path=str(path),
            schema=version,
        )
    return HealthResult.ok(
        f"{tasks} tasks, schema v{version}", path=str(path), schema=version, tasks=tasks
    )


def check_stale(path: Path) -> HealthResult:
    """Tasks marked running while no run holds the run lock were left by a dead run."""
    from filelock import FileLock, Timeout

    from magray.todo._run import lock_path

    if not path.exists():
        return HealthResult.ok("no task database yet", path=str(path))
    try:
        with contextlib.closing(_connect(path)) as conn:
            running = [
                int(r[0]) for r in conn.execute("SELECT id FROM todo_task WHERE status = 'running'")
            ]
    except sqlite3.Error as exc:
        return HealthResult.failed(f"cannot read {path}: {exc}", path=str(path))
    if not running:
        return HealthResult.ok("no task is running", path=str(path))
    lock = FileLock(str(lock_path(path)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return HealthResult.ok(f"a run is active with {len(running)} task(s) running")
    lock.release()
    return HealthResult.degraded(
        f"{len(running)} task(s) marked running but no run is active (a run died); "
        "`magray todo run` resets them",
        tasks=running,
    )
