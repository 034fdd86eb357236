"""The SQLite source of truth: schema, migrations and row <-> :class:`Record`.

Why plain :mod:`sqlite3` rather than an ORM: every write is one explicit
``BEGIN IMMEDIATE`` transaction (writers from several processes queue on
SQLite's lock instead of failing half-way), bulk inserts go through
``executemany`` without per-object overhead, and nothing slow is imported.
The database runs in WAL mode with ``synchronous=FULL``: when ``add`` returns,
the rows and their change-log entries are on disk, so a ``kill -9`` (or a power
cut) cannot lose them. The faiss index is only a cache of the ``vector`` column.

Labels: ``records.label`` (an ``AUTOINCREMENT`` rowid, never reused) is the id
the vector index knows a record by. A record's vector never changes under the
same label: an update that changes the vector gives the record a new label, so
the change log ``changes(seq, op, label, layer)`` fully describes the index.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from magray.common.errors import ReadOnlyStorageError, StorageError, storage_error
from magray.common.salvage import CORRUPT_ERRORS, is_refusal, read_only_uris
from magray.memory._columns import MetaRow
from magray.memory._types import Layer
from magray.memory.errors import StoreCorruptError

try:  # orjson decodes small metadata objects ~8x faster; the search hot path uses it
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    _orjson = None  # type: ignore[assignment]

_LAYERS = {layer.value: layer for layer in Layer}
HitRowTuple = tuple[str, str, str, Layer]
_HIT_SELECT = "SELECT label, id, text, metadata, layer FROM records"


def loads_metadata(text: str) -> dict[str, Any]:
    """A fresh dict from stored metadata JSON (orjson when it can, else :mod:`json`)."""
    if text == "{}":
        return {}
    if _orjson is not None:
        try:
            return _orjson.loads(text)  # type: ignore[no-any-return]
        except _orjson.JSONDecodeError:  # e.g. integers beyond 64 bits: json takes them
            pass
    return json.loads(text)  # type: ignore[no-any-return]


__all__ = ["SCHEMA_VERSION", "RecordDB", "record_columns"]

RECORD_COLUMNS = (
    "label, id, layer, text, metadata, content_hash, created_at, updated_at, "
    "last_access, access_count, importance, expires_at, pinned, model_id, dim"
)
# Appended to RECORD_COLUMNS when a query wants the vector too.
VECTOR_COLUMN = ", (SELECT vector FROM vectors WHERE vectors.label = records.label)"


def record_columns(*, with_vector: bool = False) -> str:
    return RECORD_COLUMNS + (VECTOR_COLUMN if with_vector else "")


META_COLUMNS = "id, metadata, created_at, updated_at, importance, expires_at, pinned"


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction.

    (``executescript`` would COMMIT first, breaking the migration's atomicity.)
    """
    for statement in re.split(r";\s*\n", script):
        if statement.strip():
            conn.execute(statement)


def _m1(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE records (
            label INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            layer TEXT NOT NULL,
            text TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            vector BLOB NOT NULL,
            content_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            last_access REAL NOT NULL,
            access_count INTEGER NOT NULL DEFAULT 0,
            importance REAL NOT NULL DEFAULT 0.5,
            expires_at REAL,
            pinned INTEGER NOT NULL DEFAULT 0,
            model_id TEXT NOT NULL,
            dim INTEGER NOT NULL
        );
        CREATE INDEX records_layer_hash ON records (layer, content_hash);
        CREATE INDEX records_expires ON records (expires_at) WHERE expires_at IS NOT NULL;
        CREATE TABLE changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            op TEXT NOT NULL CHECK (op IN ('add', 'del')),
            label INTEGER NOT NULL,
            layer TEXT NOT NULL
        );
        CREATE TABLE history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            record_id TEXT NOT NULL,
            event TEXT NOT NULL,
            at REAL NOT NULL,
            layer TEXT,
            details TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX history_record ON history (record_id, seq);
        CREATE TABLE embed_cache (
            model_id TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (model_id, text_hash)
        ) WITHOUT ROWID;
        INSERT INTO meta (key, value) VALUES ('index_epoch', '0');
        """,
    )


def _m2(conn: sqlite3.Connection) -> None:
    """Move vectors out of ``records``: scans of records (filters, counts, list) no longer
    read 1.5 KB of vector per row."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(records)")}
    _run_script(
        conn,
        """
        CREATE TABLE IF NOT EXISTS vectors (label INTEGER PRIMARY KEY, vector BLOB NOT NULL);
        CREATE TRIGGER IF NOT EXISTS records_delete_vector AFTER DELETE ON records
            BEGIN DELETE FROM vectors WHERE label = old.label; END;
        """,
    )
    if "vector" in columns:
        conn.execute("INSERT INTO vectors (label, vector) SELECT label, vector FROM records")
        conn.execute("ALTER TABLE records DROP COLUMN vector")


# Ordered migrations: MIGRATIONS[i] moves a database from version i to i + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m1, _m2]
SCHEMA_VERSION = len(MIGRATIONS)


def translate(exc: BaseException, path: Path, where: str | None = None) -> StorageError:
    """The :class:`StorageError` for a SQLite or OS failure on the store at ``path``:
    full, read-only, permission denied, busy, corrupt (only when SQLite says so), or
    plain I/O."""
    where = where or f"memory database {path}"
    name = str(getattr(exc, "sqlite_errorname", ""))
    if name.startswith(CORRUPT_ERRORS):
        return StoreCorruptError(
            f"{where}: {exc}",
            hint="the database file is damaged: `magray memory check` tells more; restore it "
            "from a backup (`magray memory backup` makes one)",
            details={"path": str(path)},
        )
    mapped = storage_error(exc, path=path, where=where)
    if mapped is not None:
        return mapped
    return StorageError(
        f"{where}: {type(exc).__name__}: {exc}",
        hint="check the store's files and directory (permissions, free space, the disk)",
        details={"path": str(path)},
    )


def _open_error(path: Path, exc: sqlite3.Error) -> StorageError:
    """The error for a database that cannot be opened: corrupt only when SQLite says so."""
    return translate(exc, path, f"cannot open memory database {path}")


class RecordDB:
    """One connection to a store's SQLite file, with transaction helpers.

    Args:
        path: The database file.
        busy_timeout: Seconds a writer waits for another process's transaction.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 60.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._shm_fd: int | None = None
        self.read_only = False
        self.read_only_reason = ""
        try:
            self.conn = self._open_read_write()
        except sqlite3.Error as exc:
            if not (is_refusal(exc) and path.is_file() and os.access(path, os.R_OK)):
                raise _open_error(path, exc) from exc
            self.conn = self._open_read_only(exc)

    def _open_read_write(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            # Search hits read a few random rows per query: a 32 MB page cache keeps the
            # hot part of the table in memory. (Memory-mapped reads were a little faster
            # still, but every page a scan touched then counted in the RSS: +256 MB
            # after the first filtered search of a 1M store.)
            conn.execute("PRAGMA cache_size=-32768")
            self.conn = conn
            self._migrate()
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self, cause: sqlite3.Error) -> sqlite3.Connection:
        """Open a store this process may read but not write (file or directory permissions,
        a read-only mount): ``mode=ro`` while SQLite can use the WAL files, else
        ``immutable=1`` when there is no WAL content to miss."""
        last: sqlite3.Error = cause
        for target in read_only_uris(self.path):
            try:
                conn = sqlite3.connect(
                    target, uri=True, isolation_level=None, check_same_thread=False
                )
            except sqlite3.Error as exc:
                last = exc
                continue
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute("SELECT count(*) FROM meta").fetchone()
            except sqlite3.Error as exc:
                conn.close()
                last = exc
                continue
            if version != SCHEMA_VERSION:
                conn.close()
                raise ReadOnlyStorageError(
                    f"memory database {self.path} has schema version {version} and needs "
                    f"{SCHEMA_VERSION}, but it is read-only here, so it cannot be migrated",
                    hint="open it once where it is writable (or with the magray version "
                    "that wrote it)",
                    details={"path": str(self.path)},
                )
            conn.execute("PRAGMA cache_size=-32768")
            self.read_only = True
            self.read_only_reason = f"it was opened read-only ({cause})"
            return conn
        raise _open_error(self.path, last) from last

    # ------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def write(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction on this store's connection (or on ``conn``, one
        from :meth:`connect_side`): committed on success, rolled back on error."""
        conn = self.conn if conn is None else conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"memory database {self.path} has schema version {version}, newer than this "
                f"magray-memory understands ({SCHEMA_VERSION})",
                hint='upgrade: pip install -U "magray-memory"',
            )
        if version == SCHEMA_VERSION:
            return
        with self.write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under lock
            for step in MIGRATIONS[version:]:
                step(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def connect_side(self) -> sqlite3.Connection:
        """A second connection to the same file (autocommit, ``synchronous=NORMAL``), for
        writes that should not wait behind this one's thread."""
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def close(self) -> None:
        if self._shm_fd is not None:
            os.close(self._shm_fd)
            self._shm_fd = None
        self.conn.close()

    # ------------------------------------------------------------ meta
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def data_version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def wal_header(self) -> bytes | None:
        """The WAL-index header from the ``-shm`` file, or None where it cannot be read.

        SQLite rewrites this header (its change counter, frame count and salts) with
        every commit, by any connection (https://www.sqlite.org/walformat.html,
        "The WAL-Index Header"), so while it reads the same nothing was committed and
        :meth:`data_version` need not run: 0.5 µs instead of 3 µs on the search path.
        """
        if self._shm_fd is None:
            if not hasattr(os, "pread"):
                return None
            try:
                self._shm_fd = os.open(f"{self.path}-shm", os.O_RDONLY)
            except OSError:
                return None
        try:
            header = os.pread(self._shm_fd, 48, 0)
        except OSError:
            return None
        return header if len(header) == 48 else None

    def max_label(self) -> int:
        """The highest record label in use (0 for an empty store)."""
        row = self.conn.execute("SELECT max(label) FROM records").fetchone()
        return int(row[0] or 0)

    def last_seq(self) -> int:
        row = self.conn.execute("SELECT max(seq) FROM changes").fetchone()
        return int(row[0] or 0)

    def first_seq(self) -> int | None:
        row = self.conn.execute("SELECT min(seq) FROM changes").fetchone()
        return None if row[0] is None else int(row[0])

    def epoch(self) -> int:
        return int(self.meta("index_epoch") or 0)

    # ------------------------------------------------------------ changes
    @staticmethod
    def change(conn: sqlite3.Connection, op: str, label: int, layer: str) -> None:
        conn.execute("INSERT INTO changes (op, label, layer) VALUES (?, ?, ?)", (op, label, layer))

    # ------------------------------------------------------------ reads
    def _rows_in(self, select: str, column: str, keys: Sequence[Any]) -> Iterator[Any]:
        """Rows of ``{select} WHERE {column} IN (keys)``, in chunks of 900 keys (SQLite's
        parameter limit)."""
        for start in range(0, len(keys), 900):
            chunk = keys[start : start + 900]
            marks = ",".join("?" * len(chunk))
            yield from self.conn.execute(f"{select} WHERE {column} IN ({marks})", chunk)

    def hit_rows(self, labels: list[int]) -> dict[int, HitRowTuple]:
        """``{label: (id, text, metadata JSON, layer)}``: just what a search hit shows.

        The metadata stays JSON text: a hit decodes it into a fresh dict (see
        :func:`loads_metadata`), so cached rows are never shared with callers.
        """
        layers = _LAYERS
        return {
            label: (record_id, text, metadata, layers[layer])
            for label, record_id, text, metadata, layer in self._rows_in(
                _HIT_SELECT, "label", labels
            )
        }

    def hit_rows_below(self, label: int, limit: int) -> list[tuple[int, HitRowTuple]]:
        """Up to ``limit`` ``(label, (id, text, metadata JSON, layer))`` below ``label``,
        highest label (newest record) first."""
        layers = _LAYERS
        return [
            (lb, (record_id, text, metadata, layers[layer]))
            for lb, record_id, text, metadata, layer in self.conn.execute(
                f"{_HIT_SELECT} WHERE label < ? ORDER BY label DESC LIMIT ?", (label, limit)
            )
        ]

    def index_rows(self, labels: list[int]) -> dict[int, tuple[str, bytes, MetaRow]]:
        """``{label: (layer, vector blob, filterable fields)}`` for labels that still exist."""
        select = f"SELECT label, layer, {VECTOR_COLUMN.lstrip(', ')}, {META_COLUMNS} FROM records"
        return {
            row[0]: (row[1], row[2], MetaRow(*row[3:]))
            for row in self._rows_in(select, "label", labels)
        }

    def meta_rows(self, labels: list[int]) -> dict[int, MetaRow]:
        """``{label: filterable fields}`` for labels that still exist (no vectors)."""
        select = f"SELECT label, {META_COLUMNS} FROM records"
        return {row[0]: MetaRow(*row[1:]) for row in self._rows_in(select, "label", labels)}

    def vectors_by_label(self, labels: list[int]) -> dict[int, bytes]:
        """``{label: vector blob}`` for labels that have a vector."""
        return dict(self._rows_in("SELECT label, vector FROM vectors", "label", labels))

    def file_sizes(self) -> dict[str, int]:
        sizes = {}
        for suffix in ("", "-wal", "-shm"):
            p = Path(f"{self.path}{suffix}")
            sizes["db" + suffix.replace("-", "_")] = p.stat().st_size if p.exists() else 0
        return sizes
