"""The core of the postgres backend: its connections, schema, model pin and record primitives.

:class:`PgCore` holds a ``psycopg_pool`` pool; every operation is one transaction
(:meth:`PgCore._run`), retried on transient errors (lost connection, serialization
failure, deadlock). Writes that must not race (dedupe, explicit ids, pinning) take a
per-store transaction advisory lock, and updates lock their row (``SELECT ... FOR
UPDATE``), so no update is lost. The record operations themselves are
:class:`~magray.memory._sqlrecords.SqlRecords`', shared with the local backend; here are
the primitives they run on (a bulk load for large inserts, ``UPDATE`` with a new label).
"""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from magray.common.errors import StorageError
from magray.common.log import get_logger
from magray.memory._access import AccessLog
from magray.memory._dsn import redact_dsn as redact
from magray.memory._pgschema import (
    BULK_ROWS,
    COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    import_driver,
    one_line,
    split_dsn,
)
from magray.memory._sql import INSERT_COLUMNS, POSTGRES, add_details, history_row, new_values
from magray.memory._sqlrecords import SqlRecords
from magray.memory._types import Layer

if TYPE_CHECKING:
    from magray.common.settings import MemorySettings
    from magray.memory._backend import NewRecord

__all__ = ["PgCore"]

log = get_logger("magray.memory")

T = TypeVar("T")


class PgCore(SqlRecords):
    """A store in one PostgreSQL schema: connections, schema, pin, record primitives.

    Args:
        dsn: ``postgresql://user:password@host:port/db`` (``?schema=NAME`` optional).
        settings: The ``[memory]`` settings (pool size, HNSW parameters, thresholds).
    """

    name = "postgres"
    dialect = POSTGRES

    def __init__(self, dsn: str, *, settings: MemorySettings) -> None:
        psycopg, psycopg_pool, register_vector = import_driver()
        self._psycopg = psycopg
        self.settings = settings
        self.dsn = redact(dsn)
        conninfo, self.schema = split_dsn(dsn, settings.pg_schema)
        self.path = Path(self.dsn)
        self.location = f"{self.dsn} (schema {self.schema})"
        self._s = f'"{self.schema}"'
        self._lock_key = zlib.crc32(f"magray-memory:{self.schema}".encode())
        self._access = AccessLog()
        self._ef_auto: tuple[float, int] | None = None  # (when, efSearch) for the table's size
        self._mutex = threading.RLock()
        self._closed = False
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot open the postgres memory store at {self.dsn}: {one_line(exc)}",
                hint="check the DSN, that the server runs and that pgvector is installed "
                "(CREATE EXTENSION vector needs it on the server)",
                retriable=isinstance(exc, psycopg.OperationalError),
            ) from None

        def configure(conn: Any) -> None:
            register_vector(conn)
            conn.commit()

        self.pool = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=1,
            max_size=settings.pg_pool_size,
            configure=configure,
            kwargs={"connect_timeout": 10},
            open=True,
            timeout=settings.pg_timeout,
        )
        try:
            self._migrate()
        except BaseException:
            self.pool.close()
            raise

    # ------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def _tx(self, *, lock: bool = False) -> Iterator[Any]:
        """A connection inside one transaction (committed on success)."""
        with self.pool.connection() as conn, conn.transaction():
            if lock:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            yield conn

    def _retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one whole transaction), retrying transient errors with backoff."""
        errors = self._psycopg.errors
        transient = (
            self._psycopg.OperationalError,
            errors.SerializationFailure,
            errors.DeadlockDetected,
        )
        attempts = max(1, self.settings.pg_retries + 1)
        for attempt in range(attempts):
            try:
                return fn()
            except transient as exc:
                if attempt + 1 == attempts:
                    raise StorageError(
                        f"postgres memory store {self.dsn}: {one_line(exc)}",
                        hint="the database is unreachable or overloaded; try again",
                        retriable=True,
                    ) from exc
                log.warning("postgres memory retry", error=str(exc), attempt=attempt + 1)
                time.sleep(min(2.0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    def _run(self, fn: Callable[[Any], T], *, lock: bool = False) -> T:
        """``fn(conn)`` in one transaction, retried as a whole on transient errors."""

        def attempt() -> T:
            with self._tx(lock=lock) as conn:
                return fn(conn)

        return self._retry(attempt)

    def _migrate(self) -> None:
        def run() -> None:
            with self._tx() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._s}")
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._s}.meta "
                    "(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
                row = conn.execute(
                    f"SELECT value FROM {self._s}.meta WHERE key = 'schema_version'"
                ).fetchone()
                version = int(row[0]) if row else 0
                if version > SCHEMA_VERSION:
                    raise StorageError(
                        f"memory store {self.location} has schema version {version}, newer "
                        f"than this magray-memory understands ({SCHEMA_VERSION})",
                        hint='upgrade: pip install -U "magray-memory[postgres]"',
                    )
                for step in MIGRATIONS[version:]:
                    for statement in step(self.schema):
                        conn.execute(statement)
                if version != SCHEMA_VERSION:
                    self._set_meta(conn, "schema_version", str(SCHEMA_VERSION))

        self._retry(run)

    def _set_meta(self, conn: Any, key: str, value: str) -> None:
        conn.execute(
            f"INSERT INTO {self._s}.meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _meta(self, conn: Any, key: str) -> str | None:
        row = conn.execute(f"SELECT value FROM {self._s}.meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------ model pinning
    def pinned(self) -> tuple[str, int] | None:
        def read(conn: Any) -> tuple[str, int] | None:
            model_id, dim = self._meta(conn, "model_id"), self._meta(conn, "dim")
            return None if model_id is None or dim is None else (model_id, int(dim))

        return self._run(read)

    def pin(self, model_id: str, dim: int) -> tuple[str, int]:
        def run() -> tuple[str, int]:
            with self._tx(lock=True) as conn:
                current_model, current_dim = self._meta(conn, "model_id"), self._meta(conn, "dim")
                if current_model is not None and current_dim is not None:
                    return current_model, int(current_dim)
                self._set_meta(conn, "model_id", model_id)
                self._set_meta(conn, "dim", str(dim))
                self._index_for_dim(conn, dim)
            return model_id, dim

        return self._retry(run)

    def _index_for_dim(self, conn: Any, dim: int) -> None:
        """Type the vector column as ``vector(dim)``; (re)build the HNSW index if needed."""
        conn.execute(f"DROP INDEX IF EXISTS {self._s}.records_embedding")
        conn.execute(
            f"ALTER TABLE {self._s}.records ALTER COLUMN embedding TYPE vector({int(dim)})"
        )
        self._ensure_index(conn)

    def _has_index(self, conn: Any) -> bool:
        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{self.schema}.records_embedding",)
        ).fetchone()
        return bool(row[0])

    def _bounded_count(self, conn: Any, limit: int) -> int:
        """``min(count(*), limit + 1)``: cheap however large the table is."""
        row = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {self._s}.records LIMIT %s) AS r", (limit + 1,)
        ).fetchone()
        return int(row[0])

    def _ensure_index(self, conn: Any) -> None:
        """Build the HNSW index once the store outgrows exact search (``flat_threshold``).

        Below that size every search is an exact scan, so there is no index to keep up
        to date; building it in one go (pgvector's bulk build) is much faster than
        inserting row by row into it.
        """
        threshold = self.settings.flat_threshold
        if self._has_index(conn) or self._bounded_count(conn, threshold) <= threshold:
            return
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS records_embedding ON {self._s}.records USING hnsw "
            f"(embedding vector_ip_ops) WITH (m = {int(self.settings.hnsw_m)}, "
            f"ef_construction = {int(self.settings.hnsw_ef_construction)})"
        )
        conn.execute(f"ANALYZE {self._s}.records")  # fresh statistics for the planner

    def _model_id(self, conn: Any) -> str:
        return self._meta(conn, "model_id") or "external"

    # ------------------------------------------------------------ SqlRecords' primitives
    def _table(self, name: str) -> str:
        return f"{self._s}.{name}"

    def _record_columns(self, *, with_vector: bool = False) -> str:
        return COLUMNS + (", embedding" if with_vector else "")

    def _reading(self, fn: Callable[[Any], T], *, flush: bool) -> T:
        if flush:
            self.flush()
        return self._run(fn)

    def _writing(self, action: str, fn: Callable[[Any], T], *, lock: bool = False) -> T:
        self.flush()
        return self._run(fn, lock=lock)

    def _write_cache(self, fn: Callable[[Any], None]) -> None:
        self._run(fn)

    def _insert_new(self, conn: Any, new: list[tuple[str, NewRecord]], now: float) -> None:
        model_id = self._model_id(conn)
        rows = [
            (
                *new_values(record_id, r, now, model_id),
                len(r.vector),
                r.metadata_json,
                np.asarray(r.vector, np.float32),
            )
            for record_id, r in new
        ]
        events = [
            history_row(record_id, "add", now, r.layer.value, add_details(r))
            for record_id, r in new
        ]
        # A batch as large as the store itself: load it without the HNSW index and
        # bulk-build the index afterwards (far faster than row by row).
        bulk = len(rows) >= BULK_ROWS and len(rows) >= self._bounded_count(conn, len(rows))
        if bulk:
            conn.execute(f"DROP INDEX IF EXISTS {self._s}.records_embedding")
        POSTGRES.executemany(
            conn,
            f"INSERT INTO {self._s}.records ({INSERT_COLUMNS}, metadata_text, embedding) "
            f"VALUES (%s, %s, %s, %s::jsonb, {POSTGRES.marks(12)})",
            rows,
        )
        POSTGRES.executemany(conn, self._history_insert(), events)
        if bulk:
            conn.execute(f"ANALYZE {self._s}.records")
        self._ensure_index(conn)

    def _rewrite(self, conn: Any, row: tuple[Any, ...], sets: dict[str, Any], now: float) -> None:
        """UPDATE the row; like the local backend, any change gives it a new label."""
        assigns: list[str] = []
        values: list[Any] = []
        for column, value in sets.items():
            if column == "metadata_json":
                assigns += ["metadata_text = %s", "metadata = %s::jsonb"]
                values += [value, value]
            elif column == "vector":
                assigns += ["embedding = %s", "model_id = %s", "dim = %s"]
                values += [np.asarray(value, np.float32), self._model_id(conn), len(value)]
            else:
                assigns.append(f"{column} = %s")
                values.append(int(value) if column == "pinned" else value)
        assigns += ["updated_at = %s", f"label = nextval('{self.schema}.labels')"]
        values += [now, row[1]]
        conn.execute(
            f"UPDATE {self._s}.records SET {', '.join(assigns)} WHERE id = %s", tuple(values)
        )

    def _remove(self, conn: Any, ids: Sequence[str]) -> dict[str, str]:
        return dict(
            conn.execute(
                f"DELETE FROM {self._s}.records WHERE id = ANY(%s) RETURNING id, layer",
                (list(ids),),
            ).fetchall()
        )

    # ------------------------------------------------------------ access counts
    def touch(self, ids: Sequence[str], now: float) -> None:
        """Count a search hit for each id (buffered; written with the next write or read)."""
        with self._mutex:
            due = self._access.add(ids, now)
        if due:
            self.flush()

    def flush(self) -> None:
        """Write buffered access counts now."""
        with self._mutex:
            items = self._access.drain()
        if not items:
            return

        self._run(
            lambda conn: POSTGRES.executemany(
                conn,
                f"UPDATE {self._s}.records SET access_count = access_count + %s, "
                "last_access = greatest(last_access, %s) WHERE id = %s",
                items,
            )
        )

    def counts(self) -> dict[str, int]:
        rows = self._run(
            lambda conn: conn.execute(
                f"SELECT layer, count(*) FROM {self._s}.records GROUP BY layer"
            ).fetchall()
        )
        out = {layer.value: 0 for layer in Layer}
        out.update({layer: int(n) for layer, n in rows})
        return out
