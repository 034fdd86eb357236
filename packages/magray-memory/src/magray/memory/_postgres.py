"""The postgres backend: PostgreSQL + pgvector behind the same :class:`StorageBackend` API.

One store is one PostgreSQL schema (``magray`` by default; ``?schema=NAME`` in the
DSN or ``memory.pg_schema`` picks another), holding ``records`` (a ``vector(dim)``
column with an HNSW index using ``vector_ip_ops``, ``jsonb`` metadata with a GIN
index), ``history``, ``meta`` and ``embed_cache``. Several processes and hosts may
use one store at once: every write is one transaction; writes that must not race
(dedupe, explicit ids, pinning) take a per-store transaction advisory lock, and
updates lock their row (``SELECT ... FOR UPDATE``), so no update is lost.

Search is exact (a sequential scan) while the matching records number at most
``flat_threshold`` (filters: ``exact_filter_limit``), like the local backend's flat
index; above that it uses HNSW with ``hnsw.ef_search``, and falls back to an exact
scan when a filter leaves HNSW with fewer than ``k`` hits (pgvector 0.6 filters
after the index scan).

Connections come from a ``psycopg_pool`` pool; operations are retried on
transient errors (lost connection, serialization failure, deadlock).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from magray.common.errors import DependencyMissingError, InvalidInputError, StorageError
from magray.common.log import get_logger
from magray.memory._access import AccessLog
from magray.memory._backend import NewRecord
from magray.memory._columns import uses_access_fields
from magray.memory._dsn import redact_dsn as redact
from magray.memory._filters import compile_where
from magray.memory._index import auto_ef_search
from magray.memory._sql import POSTGRES, row_to_record, select_query, update_details
from magray.memory._types import Hit, Layer, Record
from magray.memory.errors import DuplicateIdError, RecordNotFoundError

if TYPE_CHECKING:
    from magray.common.settings import MemorySettings

__all__ = ["PostgresBackend", "is_dsn", "open_backend"]

log = get_logger("magray.memory")

T = TypeVar("T")

SCHEMA_VERSION = 1
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_COLUMNS = (
    "label, id, layer, text, metadata_text, content_hash, created_at, updated_at, "
    "last_access, access_count, importance, expires_at, pinned, model_id, dim"
)
# An insert of at least this many rows, and at least as many as the store holds, drops the
# HNSW index, loads the rows and rebuilds the index in bulk.
BULK_ROWS = 2_000


def is_dsn(value: object) -> bool:
    """Whether ``value`` is a PostgreSQL URL (``postgres://`` or ``postgresql://``)."""
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def split_dsn(dsn: str, default_schema: str = "magray") -> tuple[str, str]:
    """``(libpq dsn, schema)``: the ``schema`` query parameter is ours, not libpq's."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = default_schema
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_NAME.match(schema):
        raise InvalidInputError(
            f"invalid store schema name {schema!r}",
            hint="use lower-case letters, digits and _ (at most 63), e.g. ?schema=team_memory",
        )
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


def _one_line(exc: BaseException) -> str:
    """libpq's multi-line messages on one line (the CLI prints errors as one line)."""
    return " ".join(str(exc).split())


def open_backend(dsn: str, settings: MemorySettings) -> PostgresBackend:
    """Entry point ``magray.memory.backends: postgres``."""
    if not is_dsn(dsn):
        raise InvalidInputError(
            f"the postgres memory backend needs a postgresql://... DSN, not {dsn!r}",
            hint="set memory.dsn (MAGRAY_MEMORY__DSN=postgresql://user@host/db) or pass the "
            "DSN to MemoryStore.open()",
        )
    return PostgresBackend(dsn, settings=settings)


def _import_driver() -> tuple[Any, Any, Any]:
    try:
        import psycopg
        import psycopg_pool
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise DependencyMissingError(
            f"the postgres memory backend needs psycopg, psycopg_pool and pgvector ({exc})",
            hint='pip install "magray-memory[postgres]"',
        ) from None
    return psycopg, psycopg_pool, register_vector


def _migration_1(schema: str) -> list[str]:
    s = f'"{schema}"'
    return [
        f"CREATE TABLE IF NOT EXISTS {s}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE SEQUENCE IF NOT EXISTS {s}.labels",
        f"""CREATE TABLE IF NOT EXISTS {s}.records (
            label BIGINT NOT NULL UNIQUE DEFAULT nextval('{schema}.labels'),
            id TEXT PRIMARY KEY,
            layer TEXT NOT NULL,
            text TEXT NOT NULL,
            metadata JSONB NOT NULL DEFAULT '{{}}',
            metadata_text TEXT NOT NULL DEFAULT '{{}}',
            content_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            last_access DOUBLE PRECISION NOT NULL,
            access_count BIGINT NOT NULL DEFAULT 0,
            importance DOUBLE PRECISION NOT NULL DEFAULT 0.5,
            expires_at DOUBLE PRECISION,
            pinned SMALLINT NOT NULL DEFAULT 0,
            model_id TEXT NOT NULL,
            dim INTEGER NOT NULL,
            embedding vector NOT NULL
        )""",
        f"CREATE INDEX IF NOT EXISTS records_layer_hash ON {s}.records (layer, content_hash)",
        f"CREATE INDEX IF NOT EXISTS records_expires ON {s}.records (expires_at) "
        "WHERE expires_at IS NOT NULL",
        f"CREATE INDEX IF NOT EXISTS records_metadata ON {s}.records USING gin (metadata)",
        f"""CREATE TABLE IF NOT EXISTS {s}.history (
            seq BIGSERIAL PRIMARY KEY,
            record_id TEXT NOT NULL,
            event TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            layer TEXT,
            details TEXT NOT NULL DEFAULT '{{}}'
        )""",
        f"CREATE INDEX IF NOT EXISTS history_record ON {s}.history (record_id, seq)",
        f"""CREATE TABLE IF NOT EXISTS {s}.embed_cache (
            model_id TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            vector BYTEA NOT NULL,
            PRIMARY KEY (model_id, text_hash)
        )""",
    ]


# MIGRATIONS[i] moves a store schema from version i to i + 1.
MIGRATIONS: list[Callable[[str], list[str]]] = [_migration_1]


class PostgresBackend:
    """A store in one PostgreSQL schema.

    Args:
        dsn: ``postgresql://user:password@host:port/db`` (``?schema=NAME`` optional).
        settings: The ``[memory]`` settings (pool size, HNSW parameters, thresholds).
    """

    name = "postgres"

    def __init__(self, dsn: str, *, settings: MemorySettings) -> None:
        psycopg, psycopg_pool, register_vector = _import_driver()
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
                f"cannot open the postgres memory store at {self.dsn}: {_one_line(exc)}",
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
                        f"postgres memory store {self.dsn}: {_one_line(exc)}",
                        hint="the database is unreachable or overloaded; try again",
                        retriable=True,
                    ) from exc
                log.warning("postgres memory retry", error=str(exc), attempt=attempt + 1)
                time.sleep(min(2.0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

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

    def _log(
        self,
        conn: Any,
        record_id: str,
        event: str,
        at: float,
        *,
        layer: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            f"INSERT INTO {self._s}.history (record_id, event, at, layer, details) "
            "VALUES (%s, %s, %s, %s, %s)",
            (record_id, event, at, layer, json.dumps(details or {}, sort_keys=True)),
        )

    @staticmethod
    def _record(row: Sequence[Any], *, with_vector: bool = False) -> Record:
        return row_to_record(row, with_vector=with_vector, dialect=POSTGRES)

    def _columns(self, *, with_vector: bool = False) -> str:
        return _COLUMNS + (", embedding" if with_vector else "")

    # ------------------------------------------------------------ model pinning
    def pinned(self) -> tuple[str, int] | None:
        def run() -> tuple[str, int] | None:
            with self._tx() as conn:
                model_id, dim = self._meta(conn, "model_id"), self._meta(conn, "dim")
            return None if model_id is None or dim is None else (model_id, int(dim))

        return self._retry(run)

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

    # ------------------------------------------------------------ writes
    def insert(self, rows: Sequence[NewRecord], *, dedupe: bool, now: float) -> list[str]:
        """Insert records in one transaction; returns ids (existing ids for deduped text)."""
        self.flush()

        def run() -> list[str]:
            ids: list[str] = []
            with self._tx(lock=True) as conn:
                explicit = [r.id for r in rows if r.id is not None]
                if explicit:
                    taken = [
                        r[0]
                        for r in conn.execute(
                            f"SELECT id FROM {self._s}.records WHERE id = ANY(%s)", (explicit,)
                        )
                    ]
                    if taken:
                        shown = ", ".join(sorted(taken)[:5])
                        raise DuplicateIdError(
                            f"ids already in the store: {shown}",
                            hint="use update() (magray memory update) to change a record, "
                            "or delete it first; nothing was added",
                            details={"ids": sorted(taken)},
                        )
                model_id = self._model_id(conn)
                seen: dict[tuple[str, str], str] = {}
                batch: list[tuple[Any, ...]] = []
                history: list[tuple[Any, ...]] = []
                for r in rows:
                    key = (r.layer.value, r.content_hash)
                    if dedupe:
                        existing = seen.get(key)
                        if existing is None:
                            row = conn.execute(
                                f"SELECT id FROM {self._s}.records WHERE layer = %s AND "
                                "content_hash = %s ORDER BY label LIMIT 1",
                                key,
                            ).fetchone()
                            existing = None if row is None else row[0]
                        if existing is not None:
                            ids.append(existing)
                            seen[key] = existing
                            continue
                    record_id = r.id if r.id is not None else uuid.uuid4().hex
                    if record_id in seen.values() and r.id is not None:
                        raise DuplicateIdError(
                            f"id {record_id!r} appears twice in one add",
                            hint="give each record its own id; nothing was added",
                        )
                    batch.append(
                        (
                            record_id,
                            r.layer.value,
                            r.text,
                            r.metadata_json,
                            r.metadata_json,
                            r.content_hash,
                            now if r.created_at is None else r.created_at,
                            now if r.updated_at is None else r.updated_at,
                            now if r.last_access is None else r.last_access,
                            r.access_count,
                            r.importance,
                            r.expires_at,
                            int(r.pinned),
                            model_id,
                            len(r.vector),
                            np.asarray(r.vector, dtype=np.float32),
                        )
                    )
                    history.append(
                        (
                            record_id,
                            "add",
                            now,
                            r.layer.value,
                            json.dumps(
                                {"chars": len(r.text), "content_hash": r.content_hash},
                                sort_keys=True,
                            ),
                        )
                    )
                    ids.append(record_id)
                    seen[key] = record_id
                if batch:
                    # A batch as large as the store itself: load it without the HNSW index
                    # and bulk-build the index afterwards (far faster than row by row).
                    bulk = len(batch) >= BULK_ROWS and len(batch) >= self._bounded_count(
                        conn, len(batch)
                    )
                    if bulk:
                        conn.execute(f"DROP INDEX IF EXISTS {self._s}.records_embedding")
                    with conn.cursor() as cur:
                        cur.executemany(
                            f"INSERT INTO {self._s}.records (id, layer, text, metadata, "
                            "metadata_text, content_hash, created_at, updated_at, last_access, "
                            "access_count, importance, expires_at, pinned, model_id, dim, "
                            "embedding) VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, "
                            "%s, %s, %s, %s, %s, %s)",
                            batch,
                        )
                        cur.executemany(
                            f"INSERT INTO {self._s}.history (record_id, event, at, layer, "
                            "details) VALUES (%s, %s, %s, %s, %s)",
                            history,
                        )
                    if bulk:
                        conn.execute(f"ANALYZE {self._s}.records")
                    self._ensure_index(conn)
            return ids

        return self._retry(run)

    def _locked_row(self, conn: Any, record_id: str) -> tuple[Any, ...] | None:
        row = conn.execute(
            f"SELECT {self._columns()} FROM {self._s}.records WHERE id = %s FOR UPDATE",
            (record_id,),
        ).fetchone()
        return None if row is None else tuple(row)

    def update(
        self,
        record_id: str,
        *,
        now: float,
        text: str | None = None,
        vector: np.ndarray | None = None,
        content_hash: str | None = None,
        metadata_json: str | None = None,
        importance: float | None = None,
        pinned: bool | None = None,
        layer: Layer | None = None,
        expires_at: float | EllipsisType | None = ...,
    ) -> Record:
        """Change fields of one record (row-locked, so concurrent updates never get lost)."""
        self.flush()

        def run() -> None:
            with self._tx() as conn:
                row = self._locked_row(conn, record_id)
                if row is None:
                    raise RecordNotFoundError(
                        f"no memory record with id {record_id!r}",
                        hint="`magray memory list` shows ids",
                        details={"id": record_id},
                    )
                changed = update_details(
                    row,
                    text=text,
                    content_hash=content_hash,
                    metadata_json=metadata_json,
                    importance=importance,
                    pinned=pinned,
                    layer=layer,
                    expires_at=expires_at,
                    vector=vector,
                )
                sets: dict[str, Any] = {}
                if "text" in changed:
                    sets.update(text=text, content_hash=content_hash)
                if "metadata" in changed:
                    sets.update(metadata_text=metadata_json)
                if "importance" in changed:
                    sets.update(importance=importance)
                if "pinned" in changed:
                    sets.update(pinned=int(changed["pinned"]))
                if "layer" in changed:
                    sets.update(layer=changed["layer"][1])
                if "expires_at" in changed:
                    sets.update(expires_at=expires_at)
                if vector is not None:
                    sets.update(
                        embedding=np.asarray(vector, dtype=np.float32),
                        model_id=self._model_id(conn),
                        dim=len(vector),
                    )
                if changed:
                    self._apply(conn, record_id, sets, now)
                    new_layer = layer.value if layer else row[2]
                    self._log(conn, record_id, "update", now, layer=new_layer, details=changed)

        self._retry(run)
        return self.get([record_id])[0]

    def _apply(self, conn: Any, record_id: str, sets: dict[str, Any], now: float) -> None:
        """UPDATE one row; like the local backend, any change gives it a new label."""
        assigns = [f"{column} = %s" for column in sets]
        values = list(sets.values())
        if "metadata_text" in sets:
            assigns.append("metadata = %s::jsonb")
            values.append(sets["metadata_text"])
        assigns += ["updated_at = %s", f"label = nextval('{self.schema}.labels')"]
        values += [now, record_id]
        conn.execute(
            f"UPDATE {self._s}.records SET {', '.join(assigns)} WHERE id = %s", tuple(values)
        )

    def move(
        self,
        moves: Sequence[tuple[str, Layer, float | None, str, dict[str, Any]]],
        *,
        now: float,
    ) -> int:
        """Move records between layers: ``(id, layer, expires_at, event, details)``."""
        if not moves:
            return 0
        self.flush()

        def run() -> int:
            done = 0
            with self._tx() as conn:
                for record_id, layer, expires_at, event, details in moves:
                    if self._locked_row(conn, record_id) is None:
                        continue  # deleted by someone else meanwhile
                    self._apply(
                        conn, record_id, {"layer": layer.value, "expires_at": expires_at}, now
                    )
                    self._log(conn, record_id, event, now, layer=layer.value, details=details)
                    done += 1
            return done

        return self._retry(run)

    def delete(
        self,
        ids: Sequence[str],
        *,
        now: float,
        event: str = "delete",
        details: dict[str, dict[str, Any]] | None = None,
    ) -> list[str]:
        """Delete records; returns the ids that existed."""
        self.flush()

        def run() -> list[str]:
            with self._tx() as conn:
                gone = dict(
                    conn.execute(
                        f"DELETE FROM {self._s}.records WHERE id = ANY(%s) RETURNING id, layer",
                        (list(ids),),
                    ).fetchall()
                )
                deleted = [i for i in dict.fromkeys(ids) if i in gone]
                for record_id in deleted:
                    self._log(
                        conn,
                        record_id,
                        event,
                        now,
                        layer=gone[record_id],
                        details=(details or {}).get(record_id),
                    )
            return deleted

        return self._retry(run)

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

        def run() -> None:
            with self._tx() as conn, conn.cursor() as cur:
                cur.executemany(
                    f"UPDATE {self._s}.records SET access_count = access_count + %s, "
                    "last_access = greatest(last_access, %s) WHERE id = %s",
                    items,
                )

        self._retry(run)

    # ------------------------------------------------------------ reads
    def get(self, ids: Sequence[str], *, with_vector: bool = False) -> list[Record]:
        self.flush()
        wanted = list(ids)

        def run() -> list[Record]:
            with self._tx() as conn:
                rows = conn.execute(
                    f"SELECT {self._columns(with_vector=with_vector)} FROM {self._s}.records "
                    "WHERE id = ANY(%s)",
                    (wanted,),
                ).fetchall()
            found = {row[1]: self._record(row, with_vector=with_vector) for row in rows}
            return [found[i] for i in wanted if i in found]

        return self._retry(run)

    def select(
        self,
        *,
        layer: Layer | None = None,
        where: dict[str, Any] | None = None,
        limit: int | None = 100,
        offset: int = 0,
        order: str = "created_at",
        descending: bool = True,
        with_vector: bool = False,
    ) -> list[Record]:
        """Records matching a layer and filter, newest first by default."""
        query, args = select_query(
            POSTGRES,
            table=f"{self._s}.records",
            columns=self._columns(with_vector=with_vector),
            layer=layer,
            where=where,
            limit=limit,
            offset=offset,
            order=order,
            descending=descending,
        )
        self.flush()

        def run() -> list[Record]:
            with self._tx() as conn:
                rows = conn.execute(query, args).fetchall()
            return [self._record(row, with_vector=with_vector) for row in rows]

        return self._retry(run)

    def iter_records(
        self,
        *,
        layers: Sequence[Layer] | None = None,
        with_vector: bool = False,
        batch: int = 1000,
    ) -> Iterator[Record]:
        """Every record in label order, read in batches."""
        self.flush()
        names = [layer.value for layer in (layers or list(Layer))]
        last = -1
        while True:
            with self._tx() as conn:
                rows = conn.execute(
                    f"SELECT {self._columns(with_vector=with_vector)} FROM {self._s}.records "
                    "WHERE label > %s AND layer = ANY(%s) ORDER BY label LIMIT %s",
                    (last, names, batch),
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for row in rows:
                yield self._record(row, with_vector=with_vector)

    def counts(self) -> dict[str, int]:
        def run() -> dict[str, int]:
            with self._tx() as conn:
                rows = conn.execute(
                    f"SELECT layer, count(*) FROM {self._s}.records GROUP BY layer"
                ).fetchall()
            out = {layer.value: 0 for layer in Layer}
            out.update({layer: int(n) for layer, n in rows})
            return out

        return self._retry(run)

    def expired_ids(self, now: float) -> list[tuple[str, str, bool]]:
        """``(id, layer, pinned)`` of records whose TTL passed."""

        def run() -> list[tuple[str, str, bool]]:
            with self._tx() as conn:
                rows = conn.execute(
                    f"SELECT id, layer, pinned FROM {self._s}.records WHERE expires_at <= %s "
                    "ORDER BY label",
                    (now,),
                ).fetchall()
            return [(r[0], r[1], bool(r[2])) for r in rows]

        return self._retry(run)

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        layers: Sequence[Layer],
        where: dict[str, Any] | None,
        now: float,
        ef_search: int | None = None,
    ) -> list[Hit]:
        """Top-k by inner product among matching live records (exact when few match)."""
        return self.search_many(
            query.reshape(1, -1), k, layers=layers, where=where, now=now, ef_search=ef_search
        )[0]

    def search_many(
        self,
        queries: np.ndarray,
        k: int,
        *,
        layers: Sequence[Layer],
        where: dict[str, Any] | None,
        now: float,
        ef_search: int | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for a batch of query vectors ``(nq, dim)`` with one filter."""
        sql, params = compile_where(where, POSTGRES)
        if where and uses_access_fields(where):
            self.flush()  # the filter reads access counts
        names = [layer.value for layer in layers]
        if not names or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        base = (
            f"FROM {self._s}.records WHERE layer = ANY(%s) "
            f"AND (expires_at IS NULL OR expires_at > %s) AND ({sql})"
        )
        base_args: list[Any] = [names, now, *params]
        limit = self.settings.exact_filter_limit

        def run() -> list[list[Hit]]:
            out: list[list[Hit]] = []
            with self._tx() as conn:
                ef = max(int(ef_search or self.settings.hnsw_ef_search or self._auto_ef(conn)), k)
                if where:
                    # Exact when few records match (as on local); otherwise HNSW, which
                    # pgvector filters after the scan: a wide candidate list keeps k hits.
                    matching = conn.execute(
                        f"SELECT count(*) FROM (SELECT 1 {base} LIMIT %s) AS m",
                        (*base_args, limit + 1),
                    ).fetchone()[0]
                    exact = matching <= limit
                    ef_used = 20 * k  # ~10 % selectivity still leaves k hits after filtering
                else:
                    # The index exists only past flat_threshold records (see _ensure_index).
                    matching = k
                    exact = not self._has_index(conn)
                    ef_used = ef
                if exact:
                    conn.execute("SET LOCAL enable_indexscan = off")
                else:
                    # The planner cannot estimate the JSON filters and would sort all matches
                    # instead of walking the HNSW graph; only the index scan is left enabled.
                    for knob in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                        conn.execute(f"SET LOCAL {knob} = off")
                    conn.execute(f"SET LOCAL hnsw.ef_search = {min(max(ef_used, ef), 1000)}")
                for q in queries:
                    vector = np.asarray(q, dtype=np.float32)
                    rows = self._query(conn, base, base_args, vector, k, exact=exact)
                    if not exact and len(rows) < min(k, matching):
                        self._planner(conn, exact=True)
                        rows = self._query(conn, base, base_args, vector, k, exact=True)
                        self._planner(conn, exact=False)
                    rows.sort(key=lambda r: (-r[0], r[1]))
                    out.append(
                        [Hit(r[2], r[0], r[3], json.loads(r[4]), Layer(r[5])) for r in rows[:k]]
                    )
            return out

        return self._retry(run)

    def _auto_ef(self, conn: Any) -> int:
        """The HNSW search breadth for the table's size, as on ``local`` (:func:`auto_ef_search`):
        the size is PostgreSQL's row estimate (``reltuples``), read at most every 30 s."""
        cached = self._ef_auto
        now = time.monotonic()
        if cached is not None and now - cached[0] < 30.0:
            return cached[1]
        row = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            (f"{self.schema}.records",),
        ).fetchone()
        rows = int(row[0]) if row is not None and row[0] is not None else -1
        if rows < 0:  # never analysed: count what is there, up to where ef starts to grow
            rows = self._bounded_count(conn, 100_000)
        ef = auto_ef_search(rows)
        self._ef_auto = (now, ef)
        return ef

    @staticmethod
    def _planner(conn: Any, *, exact: bool) -> None:
        """Switch the transaction between an exact scan and a forced HNSW index scan."""
        value = "on" if exact else "off"
        for knob in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(f"SET LOCAL {knob} = {value}")
        conn.execute(f"SET LOCAL enable_indexscan = {'off' if exact else 'on'}")

    def _query(
        self, conn: Any, base: str, args: list[Any], vector: np.ndarray, k: int, *, exact: bool
    ) -> list[tuple[float, int, str, str, str, str]]:
        order = "embedding <#> %s, label" if exact else "embedding <#> %s"
        rows = conn.execute(
            f"SELECT -(embedding <#> %s), label, id, text, metadata_text, layer {base} "
            f"ORDER BY {order} LIMIT %s",
            (vector, *args, vector, k),
        ).fetchall()
        return [(float(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def history(self, record_id: str) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            with self._tx() as conn:
                rows = conn.execute(
                    f"SELECT seq, event, at, layer, details FROM {self._s}.history "
                    "WHERE record_id = %s ORDER BY seq",
                    (record_id,),
                ).fetchall()
            return [
                {"seq": s, "event": e, "at": at, "layer": layer, "details": json.loads(d)}
                for s, e, at, layer, d in rows
            ]

        return self._retry(run)

    # ------------------------------------------------------------ embedding cache
    def cached_vectors(self, model_id: str, keys: Sequence[str]) -> dict[str, bytes]:
        def run() -> dict[str, bytes]:
            with self._tx() as conn:
                rows = conn.execute(
                    f"SELECT text_hash, vector FROM {self._s}.embed_cache WHERE model_id = %s "
                    "AND text_hash = ANY(%s)",
                    (model_id, list(keys)),
                ).fetchall()
            return {key: bytes(blob) for key, blob in rows}

        return self._retry(run)

    def cache_vectors(self, model_id: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        def run() -> None:
            with self._tx() as conn, conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {self._s}.embed_cache (model_id, text_hash, vector) "
                    "VALUES (%s, %s, %s) ON CONFLICT (model_id, text_hash) "
                    "DO UPDATE SET vector = excluded.vector",
                    [(model_id, key, np.asarray(v, np.float32).tobytes()) for key, v in items],
                )

        self._retry(run)

    # ------------------------------------------------------------ operations
    def stats(self) -> dict[str, Any]:
        pin = self.pinned()
        counts = self.counts()

        def run() -> tuple[int, int, int]:
            with self._tx() as conn:
                history = conn.execute(f"SELECT count(*) FROM {self._s}.history").fetchone()[0]
                table = conn.execute(
                    "SELECT pg_total_relation_size(%s)", (f"{self.schema}.records",)
                ).fetchone()[0]
                index = conn.execute(
                    "SELECT coalesce(pg_relation_size(to_regclass(%s)), 0)",
                    (f"{self.schema}.records_embedding",),
                ).fetchone()[0]
            return int(history), int(table), int(index)

        history, table, index = self._retry(run)
        return {
            "backend": self.name,
            "path": self.location,
            "model_id": pin[0] if pin else None,
            "dim": pin[1] if pin else None,
            "records": sum(counts.values()),
            "layers": {
                layer: {
                    # what a search of this layer does: an exact scan up to flat_threshold
                    "index": "flat" if n <= self.settings.flat_threshold else "hnsw",
                    "records": n,
                    "indexed": n,
                    "tombstones": 0,
                    "compacting": False,  # PostgreSQL maintains its HNSW index itself
                }
                for layer, n in counts.items()
            },
            "bytes": {"db": table, "index": index},
            "history_events": history,
            "index_status": {"index": "postgres"},
            "unsaved_changes": len(self._access),
        }

    def consistency(self) -> dict[str, dict[str, int | bool]]:
        """Per layer: records vs rows with a vector of the pinned dim (the HNSW index's rows)."""
        pin = self.pinned()
        dim = pin[1] if pin else 0

        def run() -> dict[str, dict[str, int | bool]]:
            with self._tx() as conn:
                rows = conn.execute(
                    f"SELECT layer, count(*), count(*) FILTER (WHERE vector_dims(embedding) = %s)"
                    f" FROM {self._s}.records GROUP BY layer",
                    (dim,),
                ).fetchall()
            out: dict[str, dict[str, int | bool]] = {
                layer.value: {"records": 0, "indexed": 0, "ok": True} for layer in Layer
            }
            for layer, n, indexed in rows:
                out[layer] = {"records": int(n), "indexed": int(indexed), "ok": n == indexed}
            return out

        return self._retry(run)

    def warm_up(self) -> int:
        """Nothing to warm: hits come back with their rows from the one SQL query."""
        return 0

    def save_index(self, *, force: bool = False) -> bool:
        """Nothing to save: PostgreSQL maintains the HNSW index transactionally."""
        return False

    def rebuild(self) -> None:
        """Rebuild the HNSW index (built only once the store outgrows ``flat_threshold``)."""

        def run() -> None:
            with self._tx(lock=True) as conn:
                conn.execute(f"DROP INDEX IF EXISTS {self._s}.records_embedding")
                self._ensure_index(conn)

        self._retry(run)

    def backup(self, dest: Path) -> dict[str, Any]:
        """Write every record with its vector and history as JSON lines into ``dest``.

        (For the whole database use PostgreSQL's own tools: ``pg_dump`` or PITR.)
        """
        from magray.common import paths
        from magray.common.errors import ConflictError
        from magray.common.fs import atomic_writer

        paths.ensure_dir(dest)
        target = dest / "records.jsonl"
        if target.exists():
            raise ConflictError(
                f"{target} already exists", hint="back up into a new or empty directory"
            )
        n = 0
        with atomic_writer(target, mode=0o600) as raw:
            for record in self.iter_records(with_vector=True):
                line = record.to_dict(with_vector=True)
                line["history"] = self.history(record.id)
                raw.write((json.dumps(line, ensure_ascii=False) + "\n").encode())
                n += 1
        return {"path": str(dest), "bytes": target.stat().st_size, "records": n}

    def vacuum(self) -> dict[str, Any]:
        """``VACUUM ANALYZE`` the store's tables."""
        self.flush()
        before = self.stats()["bytes"]

        def run() -> None:
            with self.pool.connection() as conn:
                conn.autocommit = True
                try:
                    for table in ("records", "history", "embed_cache", "meta"):
                        conn.execute(f"VACUUM ANALYZE {self._s}.{table}")
                finally:
                    conn.autocommit = False

        self._retry(run)
        return {
            "tombstones_dropped": 0,
            "bytes_before": before,
            "bytes_after": self.stats()["bytes"],
        }

    def reembed(
        self,
        embed: Callable[[list[str]], np.ndarray],
        *,
        model_id: str,
        dim: int,
        batch_size: int = 64,
        progress: Callable[[int, int], None] | None = None,
        now: float,
    ) -> int:
        """Re-embed every record not yet on ``model_id``/``dim``; resumable after a crash."""
        self.flush()
        with self._tx() as conn:
            # An untyped column takes vectors of any dim while the store moves between models.
            conn.execute(f"DROP INDEX IF EXISTS {self._s}.records_embedding")
            conn.execute(f"ALTER TABLE {self._s}.records ALTER COLUMN embedding TYPE vector")
            total = conn.execute(
                f"SELECT count(*) FROM {self._s}.records WHERE model_id != %s OR dim != %s",
                (model_id, dim),
            ).fetchone()[0]
        done = 0
        if progress:
            progress(0, total)
        while True:
            with self._tx() as conn:
                rows = conn.execute(
                    f"SELECT id, text FROM {self._s}.records WHERE model_id != %s OR dim != %s "
                    "ORDER BY label LIMIT %s",
                    (model_id, dim, batch_size),
                ).fetchall()
            if not rows:
                break
            vectors = embed([text for _, text in rows])
            with self._tx() as conn, conn.cursor() as cur:
                cur.executemany(
                    f"UPDATE {self._s}.records SET embedding = %s, model_id = %s, dim = %s "
                    "WHERE id = %s",
                    [
                        (np.asarray(v, np.float32), model_id, dim, record_id)
                        for (record_id, _), v in zip(rows, vectors, strict=True)
                    ],
                )
            done += len(rows)
            if progress:
                progress(done, total)
        with self._tx(lock=True) as conn:
            self._set_meta(conn, "model_id", model_id)
            self._set_meta(conn, "dim", str(dim))
            self._index_for_dim(conn, dim)
            self._log(
                conn,
                "*",
                "reindex",
                now,
                layer=None,
                details={"model_id": model_id, "dim": dim, "records": done},
            )
        return done

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self.pool.close()
