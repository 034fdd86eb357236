"""A damaged task database: a clear error on every command, and a repair that keeps what reads."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from filelock import FileLock

from magray.todo import (
    Status,
    TodoCorruptError,
    TodoStore,
    check_database,
    repair_database,
)
from magray.todo._run import lock_path

TASKS = 400
PAGE = 4096


def _store(path: Path) -> dict[int, int]:
    """TASKS tasks, each but the first depending on the one before; returns id → index."""
    ids: dict[int, int] = {}
    with TodoStore(path) as store:
        previous: int | None = None
        for i in range(TASKS):
            task = store.add(
                f"task {i}",
                description=f"desc-{i:05d} " + "x" * 300,
                depends_on=[previous] if previous is not None else [],
            )
            ids[task.id] = i
            previous = task.id
        store.mark_done(next(iter(ids)))  # the first is done, so the second is ready
    return ids


def _damage_page_holding(path: Path, marker: bytes) -> None:
    data = path.read_bytes()
    at = data.index(marker)
    start = at - at % PAGE
    with path.open("r+b") as f:
        f.seek(start)
        f.write(random.Random(3).randbytes(PAGE))


@pytest.fixture
def damaged(tmp_path: Path) -> tuple[Path, dict[int, int]]:
    path = tmp_path / "todo.db"
    ids = _store(path)
    _damage_page_holding(path, b"desc-00200")
    return path, ids


def test_every_command_says_the_file_is_damaged(damaged: tuple[Path, dict[int, int]]) -> None:
    path, _ = damaged
    with TodoStore(path) as store, pytest.raises(TodoCorruptError) as info:
        store.tasks()
    assert info.value.code == "todo.corrupt"
    assert "damaged" in info.value.message
    assert f"magray todo --db {path} check --repair" in (info.value.hint or "")


def test_check_finds_the_damage(damaged: tuple[Path, dict[int, int]]) -> None:
    path, _ = damaged
    report = check_database(path)
    assert report.exists
    assert not report.ok
    assert report.problems


def test_repair_keeps_every_readable_task(damaged: tuple[Path, dict[int, int]]) -> None:
    path, ids = damaged
    report = repair_database(path)
    assert report.damaged_file is not None
    assert Path(report.damaged_file).exists()
    assert TASKS - 20 < report.tasks_saved < TASKS
    assert report.tasks_lost >= TASKS - report.tasks_saved
    assert check_database(path).ok
    with TodoStore(path) as store:
        tasks = {t.id: t for t in store.tasks()}
        assert len(tasks) == report.tasks_saved
        for task_id, task in tasks.items():  # same ids, same contents
            assert task.title == f"task {ids[task_id]}"
            assert task.description.startswith(f"desc-{ids[task_id]:05d} ")
        lost = sorted(set(ids) - set(tasks))
        assert lost
        assert any(ids[i] == 200 for i in lost)
        # the task after the lost stretch lost its dependency: it is ready now
        after = max(lost) + 1
        assert tasks[after].status is Status.READY
        # ids of lost tasks are never handed out again
        assert store.add("new after repair").id > max(ids)


def test_repair_of_a_sound_database_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "todo.db"
    _store(path)
    before = path.read_bytes()
    report = repair_database(path)
    assert report.damaged_file is None
    assert report.tasks_saved == TASKS
    assert path.read_bytes() == before


def test_repair_refuses_while_a_run_holds_the_database(
    damaged: tuple[Path, dict[int, int]],
) -> None:
    from magray.todo import RunActiveError

    path, _ = damaged
    with FileLock(str(lock_path(path))), pytest.raises(RunActiveError):
        repair_database(path)


def test_not_a_database_is_rebuilt_empty(tmp_path: Path) -> None:
    path = tmp_path / "todo.db"
    path.write_bytes(b"not sqlite at all " * 400)
    with pytest.raises(TodoCorruptError):
        TodoStore(path)
    assert not check_database(path).ok
    report = repair_database(path)
    assert report.tasks_saved == 0
    assert Path(report.damaged_file or "").read_bytes().startswith(b"not sqlite")
    with TodoStore(path) as store:
        assert store.add("fresh start").id == 1


def test_a_full_disk_is_not_called_damage(tmp_path: Path) -> None:
    """Only SQLite's own corruption codes make a TodoCorruptError."""
    from magray.common.errors import StorageError
    from magray.todo._schema import storage_failure

    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    mapped = storage_failure(full, tmp_path / "t.db", "task database")
    assert isinstance(mapped, StorageError)
    assert mapped.code == "storage.full"


def test_health_names_the_damage_and_the_repair(damaged: tuple[Path, dict[int, int]]) -> None:
    from magray.common.health import Status as Health
    from magray.todo._health import check_database as health_check

    path, _ = damaged
    result = health_check(path)
    assert result.status is Health.FAILED
    assert "damaged" in result.message
    assert "todo check --repair" in result.message
    repair_database(path)
    assert health_check(path).status is Health.OK
