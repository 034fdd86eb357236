"""The store's foundation: engine, transactions, and lookups the other parts share."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

from sqlalchemy import Connection, Engine, select, text

from magray.common import paths
from magray.common.errors import StorageError
from magray.common.salvage import is_refusal, read_only_uris
from magray.todo import _rows as V
from magray.todo._model import Status, Task
from magray.todo._resolver import FailurePolicy
from magray.todo._schema import (
    SCHEMA_VERSION,
    TASK,
    make_engine,
    migrate,
    schema_version,
    storage_failure,
)
from magray.todo.errors import (
    TaskNotFoundError,
    TodoStorageError,
)

if TYPE_CHECKING:
    from magray.common.settings import TodoSettings

__all__ = ["UNSET", "StoreCore", "default_path"]

S = Status


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: "Leave this field as it is" in :meth:`TodoStore.update`.
UNSET: Final[Any] = _Unset()


def default_path(settings: TodoSettings | None = None) -> Path:
    """``settings.path`` if set, else ``<data dir>/todo.db``."""
    if settings is not None and settings.path is not None:
        return Path(settings.path).expanduser()
    return paths.data_dir() / "todo.db"


class StoreCore:
    """Opens the database and provides transactions; see :class:`~magray.todo.TodoStore`."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        settings: TodoSettings | None = None,
        on_failure: FailurePolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if settings is None:
            from magray.common.settings import TodoSettings

            settings = TodoSettings()
        self.settings = settings
        self.path = Path(path).expanduser() if path is not None else default_path(settings)
        self.on_failure: FailurePolicy = on_failure or settings.on_failure
        self.clock = clock
        try:
            paths.ensure_dir(self.path.parent)  # a new directory gets mode 0700 (user data)
        except OSError as exc:
            raise TodoStorageError(
                f"cannot create the directory of {self.path}: {exc.strerror or exc}",
                hint="choose another path with --db or `magray config set todo.path PATH`",
            ) from exc
        self.read_only = False
        """True when the database could only be opened read-only (a read-only file,
        directory or mount): reads work, writes raise ``storage.read_only``."""
        self._engine = make_engine(self.path)
        try:
            self.schema_found = migrate(self._engine, self.path)
        except StorageError as exc:
            self._engine.dispose()
            if not (is_refusal(exc.__cause__ or exc) and os.access(self.path, os.R_OK)):
                raise
            self._engine, self.schema_found = self._open_read_only(exc)
            self.read_only = True

    def _open_read_only(self, refusal: StorageError) -> tuple[Engine, int]:
        """The database opened read-only, for a process that may read but not write it."""
        for uri in read_only_uris(self.path):
            engine = make_engine(self.path, read_only_uri=uri)
            try:
                with engine.connect() as conn, conn.begin():
                    found = schema_version(conn)
                    conn.exec_driver_sql("SELECT count(*) FROM todo_task").scalar_one()
            except Exception:
                engine.dispose()
                continue
            if found != SCHEMA_VERSION:
                engine.dispose()
                raise TodoStorageError(
                    f"task database {self.path} has schema version {found} and needs "
                    f"{SCHEMA_VERSION}, but it is read-only here, so it cannot be migrated",
                    hint="open it once where it is writable, or with the magray version "
                    "that wrote it",
                    details={"path": str(self.path)},
                ) from refusal
            return engine, found
        raise refusal

    # ------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Release all database connections."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TodoStore({str(self.path)!r})"

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._guard(), self._engine.connect() as raw:
            conn = raw.execution_options(todo_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._guard(), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        import sqlalchemy.exc

        try:
            yield
        except sqlalchemy.exc.DatabaseError as exc:
            raise storage_failure(exc, self.path, f"task database {self.path}") from exc

    def schema_version(self) -> int:
        """The schema version stored in the database."""
        with self._read() as conn:
            return schema_version(conn)

    def now(self) -> float:
        return float(self.clock())

    def get(self, task_id: int) -> Task:
        """The task with ``task_id``.

        Raises:
            TaskNotFoundError: No such task.
        """
        with self._read() as conn:
            found = self._fetch(conn, [task_id])
        if not found:
            raise TaskNotFoundError(task_id)
        return found[0]

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _require(conn: Connection, task_id: int) -> None:
        found = conn.execute(
            text("SELECT 1 FROM todo_task WHERE id = :id"), {"id": task_id}
        ).first()
        if found is None:
            raise TaskNotFoundError(task_id)

    @staticmethod
    def _statuses(conn: Connection, ids: Iterable[int]) -> dict[int, tuple[Status, int | None]]:
        ids = list(ids)
        out: dict[int, tuple[Status, int | None]] = {}
        for chunk in _chunks(ids, 10_000):
            rows = conn.execute(
                select(TASK.c.id, TASK.c.status, TASK.c.cause).where(TASK.c.id.in_(chunk))
            )
            for task_id, status, cause in rows:
                out[int(task_id)] = (Status(status), cause)
        return out

    @staticmethod
    def _unfinished_deps(conn: Connection, task_id: int) -> list[tuple[int, str]]:
        rows = conn.execute(
            text(
                "SELECT t.id, t.status FROM todo_dependency d JOIN todo_task t "
                "ON t.id = d.depends_on WHERE d.task_id = :id AND t.status != 'done' ORDER BY 1"
            ),
            {"id": task_id},
        )
        return [(int(a), str(b)) for a, b in rows]

    @staticmethod
    def _fetch(
        conn: Connection, ids: Sequence[int], *, keep_order: Sequence[Task] | None = None
    ) -> list[Task]:
        found: dict[int, Task] = {}
        for chunk in _chunks(list(ids), 10_000):
            for row in conn.execute(select(TASK).where(TASK.c.id.in_(chunk))):
                task = V.to_task(row._mapping)
                found[task.id] = task
        order = [t.id for t in keep_order] if keep_order is not None else list(ids)
        return [found[i] for i in order if i in found]


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
