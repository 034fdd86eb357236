"""The magray.health checks: database reachable, schema version, stale runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from magray.common.health import HealthRegistry, Status
from magray.common.settings import Settings
from magray.todo import SCHEMA_VERSION, TodoStore
from magray.todo._claims import claim
from magray.todo._health import check_database, check_stale
from magray.todo._run import lock_path


def test_registered_through_the_entry_point() -> None:
    registry = HealthRegistry()
    assert registry.load_entry_points(Settings()) == []
    assert {"todo.database", "todo.stale_runs"} <= set(registry.names())
    report = registry.run(["todo.database", "todo.stale_runs"])
    assert report.status is Status.OK  # no database yet is fine


def test_missing_then_healthy_database(tmp_path: Path) -> None:
    path = tmp_path / "todo.db"
    assert check_database(path).status is Status.OK
    with TodoStore(path) as store:
        store.add("a")
    result = check_database(path)
    assert result.status is Status.OK
    assert result.details["tasks"] == 1
    assert f"schema v{SCHEMA_VERSION}" in result.message


def test_schema_versions(tmp_path: Path) -> None:
    path = tmp_path / "todo.db"
    with TodoStore(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    assert check_database(path).status is Status.FAILED
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=0")
    assert check_database(path).status is Status.DEGRADED


def test_unreadable_database_fails(tmp_path: Path) -> None:
    path = tmp_path / "todo.db"
    path.write_bytes(b"garbage" * 200)
    assert check_database(path).status is Status.FAILED


def test_stale_running_tasks_are_reported(tmp_path: Path) -> None:
    from filelock import FileLock

    path = tmp_path / "todo.db"
    with TodoStore(path) as store:
        store.add("a")
        assert check_stale(path).status is Status.OK
        claim(store, "dead", 1)
    result = check_stale(path)
    assert result.status is Status.DEGRADED
    assert "no run is active" in result.message
    with FileLock(str(lock_path(path))):  # a live run holds the lock
        assert check_stale(path).status is Status.OK
