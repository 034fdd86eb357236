"""Tables (SQLModel), the SQLite engine and the ordered schema migrations.

Times are stored as UTC epoch seconds (REAL); tags, results and action args
as JSON text. ``PRAGMA user_version`` holds the schema version; migrations
run in order inside one ``BEGIN IMMEDIATE`` transaction, so two processes
opening a fresh database never migrate it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlmodel import Field, SQLModel

from magray.common.errors import StorageError, storage_error
from magray.common.salvage import is_corruption
from magray.todo.errors import TodoCorruptError, TodoStorageError, repair_hint

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "DependencyRow",
    "TaskRow",
    "make_engine",
    "migrate",
    "storage_failure",
]


class TaskRow(SQLModel, table=True):
    """One task (see :class:`magray.todo.Task` for the meaning of each field)."""

    __tablename__ = "todo_task"

    id: int | None = Field(default=None, primary_key=True)
    title: str
    description: str = ""
    status: str = Field(index=True)
    priority: int = 0
    tags: str = "[]"
    created: float
    updated: float
    started: float | None = None
    finished: float | None = None
    due: float | None = None
    attempts: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    estimate: float | None = None
    result: str | None = None
    error: str | None = None
    action_tool: str | None = None
    action_args: str | None = None
    idempotent: bool = False
    not_before: float | None = None
    run_id: str | None = None
    cause: int | None = None


class DependencyRow(SQLModel, table=True):
    """``task_id`` cannot start before ``depends_on`` is done."""

    __tablename__ = "todo_dependency"

    task_id: int = Field(foreign_key="todo_task.id", primary_key=True, ondelete="CASCADE")
    depends_on: int = Field(
        foreign_key="todo_task.id", primary_key=True, index=True, ondelete="CASCADE"
    )


TASK = TaskRow.__table__  # type: ignore[attr-defined]
DEP = DependencyRow.__table__  # type: ignore[attr-defined]


def _v1(conn: Connection) -> None:
    conn.exec_driver_sql(
        """
        CREATE TABLE todo_task (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            tags TEXT NOT NULL DEFAULT '[]',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            started REAL,
            finished REAL,
            due REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 3,
            timeout REAL,
            estimate REAL,
            result TEXT,
            error TEXT,
            action_tool TEXT,
            action_args TEXT,
            idempotent BOOLEAN NOT NULL DEFAULT 0,
            not_before REAL,
            run_id TEXT,
            cause INTEGER
        )
        """
    )
    conn.exec_driver_sql("CREATE INDEX ix_todo_task_status ON todo_task (status)")
    conn.exec_driver_sql("CREATE INDEX ix_todo_task_ready ON todo_task (status, priority DESC, id)")
    conn.exec_driver_sql(
        """
        CREATE TABLE todo_dependency (
            task_id INTEGER NOT NULL REFERENCES todo_task (id) ON DELETE CASCADE,
            depends_on INTEGER NOT NULL REFERENCES todo_task (id) ON DELETE CASCADE,
            PRIMARY KEY (task_id, depends_on),
            CHECK (task_id != depends_on)
        )
        """
    )
    conn.exec_driver_sql(
        "CREATE INDEX ix_todo_dependency_depends_on ON todo_dependency (depends_on)"
    )


def _v2(conn: Connection) -> None:
    """Index ``cause``: retrying or finishing a task finds the tasks it held in one lookup."""
    conn.exec_driver_sql(
        "CREATE INDEX ix_todo_task_cause ON todo_task (cause) WHERE cause IS NOT NULL"
    )


#: Ordered migrations: ``MIGRATIONS[i]`` takes the schema from version i to i + 1.
MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2]
SCHEMA_VERSION = len(MIGRATIONS)


def make_engine(
    path: Path, *, busy_timeout: float = 30.0, read_only_uri: str | None = None
) -> Engine:
    """A SQLite engine in WAL mode with foreign keys and explicit transactions.

    Transactions begin with ``BEGIN`` unless the connection carries the
    execution option ``todo_write=True``, which begins ``BEGIN IMMEDIATE``:
    writers take the write lock up front, so a read-check-write sequence (the
    cycle check before inserting an edge) cannot interleave with another
    process's writer. With ``read_only_uri`` (from
    :func:`magray.common.salvage.read_only_uris`) every connection opens that
    URI instead and sets nothing that would write.
    """
    import sqlite3

    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": busy_timeout}
    if read_only_uri is None:
        engine = create_engine(f"sqlite:///{path}", connect_args=connect_args)
    else:
        engine = create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(read_only_uri, uri=True, **connect_args),
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see below)
        cursor = dbapi_conn.cursor()
        try:
            if read_only_uri is None:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("todo_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def schema_version(conn: Connection) -> int:
    """The database's ``user_version``."""
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())


def migrate(engine: Engine, path: Path) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`; returns the version found.

    Raises:
        TodoStorageError: The database is newer than this code, or not SQLite.
    """
    import sqlalchemy.exc

    try:
        with engine.connect() as conn, conn.begin():
            found = schema_version(conn)
        if found == SCHEMA_VERSION:  # the usual case: no write lock needed
            return found
        with engine.connect().execution_options(todo_write=True) as conn, conn.begin():
            found = schema_version(conn)  # again, under the lock: another process may have won
            if found > SCHEMA_VERSION:
                raise TodoStorageError(
                    f"{path} has schema version {found}, newer than this magray-todo "
                    f"understands ({SCHEMA_VERSION})",
                    hint="upgrade magray-todo (pip install -U magray-todo)",
                    details={"path": str(path), "found": found, "known": SCHEMA_VERSION},
                )
            for version in range(found, SCHEMA_VERSION):
                MIGRATIONS[version](conn)
            if found < SCHEMA_VERSION:
                conn.exec_driver_sql(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlalchemy.exc.DatabaseError as exc:
        raise storage_failure(exc, path, f"cannot open the task database {path}") from exc
    return found


def storage_failure(exc: Exception, path: Path, where: str) -> StorageError:
    """The magray error for a database failure (``exc`` from sqlalchemy or sqlite3):
    damaged, full, read-only, refused, busy, or else a plain :class:`TodoStorageError`."""
    orig = getattr(exc, "orig", None) or exc
    if is_corruption(orig):
        return TodoCorruptError(
            f"{where} is damaged: {orig}", hint=repair_hint(path), details={"path": str(path)}
        )
    mapped = storage_error(orig, path=path, where=where)
    if mapped is not None:
        return mapped
    return TodoStorageError(
        f"{where}: {orig}",
        hint="check the file and its permissions",
        details={"path": str(path)},
    )
