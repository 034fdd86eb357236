"""Creating, reading and editing tasks; the schema and its migrations."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from magray.todo import (
    SCHEMA_VERSION,
    Action,
    Status,
    TaskNotFoundError,
    TaskSpec,
    TodoInputError,
    TodoStorageError,
    TodoStore,
)
from magray.todo._schema import DependencyRow, TaskRow


def test_add_and_get_round_trip(store: TodoStore, clock: Any) -> None:
    due = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    task = store.add(
        "  write   the report ",
        description="long notes",
        priority=5,
        tags=["work", "q1", "work"],
        due=due,
        max_attempts=4,
        timeout=30,
        estimate=120,
        action=Action("shell", {"cmd": "echo hi"}),
        idempotent=True,
    )
    again = store.get(task.id)
    assert again == task
    assert task.title == "write the report"
    assert task.status is Status.READY
    assert task.tags == ("work", "q1")
    assert task.due == due
    assert task.created == datetime.fromtimestamp(clock.now, UTC)
    assert task.action == Action("shell", {"cmd": "echo hi"})
    assert (task.max_attempts, task.timeout, task.estimate, task.idempotent) == (4, 30, 120, True)
    assert task.to_dict()["status"] == "ready"
    assert task.to_dict()["action"] == {"tool": "shell", "args": {"cmd": "echo hi"}}


def test_defaults_come_from_settings(tmp_path: Path) -> None:
    from magray.common.settings import TodoSettings

    with TodoStore(tmp_path / "t.db", settings=TodoSettings(max_attempts=7)) as s:
        assert s.add("x").max_attempts == 7


def test_default_path_is_under_data_dir(magray_home: Path) -> None:
    with TodoStore() as s:
        assert s.path == magray_home / "data" / "todo.db"
        assert s.path.exists()


def test_dependency_on_unfinished_task_is_pending(store: TodoStore) -> None:
    a = store.add("a")
    b = store.add("b", depends_on=[a.id])
    assert b.status is Status.PENDING
    assert store.dependencies(b.id) == [a.id]
    assert store.dependents(a.id) == [b.id]
    assert store.edges() == [(b.id, a.id)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"title": "   "}, "non-empty title"),
        ({"title": "x" * 501}, "limit is 500"),
        ({"title": "x", "priority": 1.5}, "priority must be an integer"),
        ({"title": "x", "max_attempts": 0}, "at least 1"),
        ({"title": "x", "timeout": 0}, "timeout must be more than zero"),
        ({"title": "x", "estimate": -1}, "estimate must be zero or more"),
        ({"title": "x", "tags": [""]}, "tags must be non-empty"),
        ({"title": "x", "action": Action(" ")}, "needs a tool name"),
        ({"title": "x", "action": Action("t", {"f": object()})}, "not JSON-serialisable"),
    ],
)
def test_invalid_input_is_rejected(store: TodoStore, kwargs: dict[str, Any], message: str) -> None:
    title = kwargs.pop("title")
    with pytest.raises(TodoInputError, match=message):
        store.add(title, **kwargs)
    assert store.tasks() == []


def test_missing_task_and_dependency(store: TodoStore) -> None:
    with pytest.raises(TaskNotFoundError, match="no task #42") as info:
        store.get(42)
    assert info.value.hint
    with pytest.raises(TaskNotFoundError):
        store.add("x", depends_on=[42])
    assert store.tasks() == []


def test_filters(store: TodoStore) -> None:
    a = store.add("a", tags=["x"])
    b = store.add("b", tags=["y"], depends_on=[a.id])
    c = store.add("c", tags=["x", "y"])
    assert [t.id for t in store.tasks(tag="x")] == [a.id, c.id]
    assert [t.id for t in store.tasks(status="pending")] == [b.id]
    assert [t.id for t in store.tasks(status=[Status.READY])] == [a.id, c.id]
    assert [t.id for t in store.tasks(ids=[c.id, b.id])] == [b.id, c.id]
    assert [t.id for t in store.tasks(limit=1)] == [a.id]
    with pytest.raises(TodoInputError, match="unknown status"):
        store.tasks(status="nope")
    counts = store.counts()
    assert counts[Status.READY] == 2
    assert counts[Status.PENDING] == 1
    assert counts[Status.DONE] == 0


def test_ready_orders_by_priority_then_age(store: TodoStore) -> None:
    low = store.add("low", priority=0)
    high = store.add("high", priority=9)
    mid = store.add("mid", priority=5)
    manual = store.add("manual", priority=1)
    tool = store.add("tool", action=Action("t"))
    assert [t.id for t in store.ready()] == [high.id, mid.id, manual.id, low.id, tool.id]
    assert [t.id for t in store.ready(limit=2)] == [high.id, mid.id]
    assert [t.id for t in store.ready(with_action=True)] == [tool.id]


def test_update_changes_only_given_fields(store: TodoStore, clock: Any) -> None:
    task = store.add("a", priority=1, tags=["x"], timeout=5)
    clock.advance(10)
    changed = store.update(task.id, title="b", timeout=None, action=Action("t", {"n": 1}))
    assert (changed.title, changed.priority, changed.tags, changed.timeout) == (
        "b",
        1,
        ("x",),
        None,
    )
    assert changed.action == Action("t", {"n": 1})
    assert changed.updated is not None
    assert changed.created is not None
    assert changed.updated > changed.created
    assert store.update(task.id, action=None).action is None
    with pytest.raises(TaskNotFoundError):
        store.update(99, title="x")


def test_add_many_with_batch_edges(store: TodoStore) -> None:
    base = store.add("base")
    made = store.add_many(
        [TaskSpec("one", depends_on=(base.id,)), TaskSpec("two"), TaskSpec("three")],
        edges=[(2, 0), (2, 1)],
    )
    assert [t.title for t in made] == ["one", "two", "three"]
    assert [t.status for t in made] == [Status.PENDING, Status.READY, Status.PENDING]
    assert sorted(store.dependencies(made[2].id)) == [made[0].id, made[1].id]
    with pytest.raises(TodoInputError, match="outside the batch"):
        store.add_many([TaskSpec("x")], edges=[(0, 3)])


def test_ids_are_never_reused(store: TodoStore) -> None:
    a = store.add("a")
    store.delete(a.id)
    assert store.add("b").id == a.id + 1


def test_schema_version_and_migrations_match_the_models(store: TodoStore) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(store.path) as conn:
        for row in (TaskRow, DependencyRow):
            table = row.__table__  # type: ignore[attr-defined]
            db_cols = {r[1] for r in conn.execute(f"PRAGMA table_info({table.name})")}
            assert db_cols == {c.name for c in table.columns}, table.name
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    with TodoStore(tmp_path / "t.db") as s:
        assert s.schema_found == 0
        s.add("kept")
    with TodoStore(tmp_path / "t.db") as s:
        assert s.schema_found == SCHEMA_VERSION
        assert [t.title for t in s.tasks()] == ["kept"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(TodoStorageError, match="newer than this magray-todo") as info:
        TodoStore(path)
    assert "pip install -U magray-todo" in (info.value.hint or "")


def test_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(TodoStorageError, match="cannot open the task database"):
        TodoStore(path)


def test_new_database_directory_is_private(tmp_path: Path) -> None:
    import stat

    with TodoStore(tmp_path / "fresh" / "todo.db"):
        pass
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700
