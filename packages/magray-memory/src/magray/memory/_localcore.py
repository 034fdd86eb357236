"""The shared state of the local backend and the small reads every part of it uses.

:class:`LocalCore` declares what :class:`~magray.memory._local.LocalBackend` sets up and
holds the model pin, record counts and the write guard. The parts are layered, each
module one responsibility: ``_layercols`` (filter columns of the index positions) →
``_upkeep`` (sync, rebuild, save, compaction, warm-up) → ``_queries`` (reads,
search, access counts) → ``_writes`` (insert, update, move, delete) → ``_integrity``
(open-time checks, recovery, ``check``) → ``_local`` (open, stats, backup, vacuum,
re-embedding, close).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import EllipsisType
from typing import Any

import numpy as np

from magray.common.errors import ReadOnlyStorageError, StorageError
from magray.common.log import get_logger
from magray.memory._access import AccessLog
from magray.memory._backend import BackendConfig
from magray.memory._cache import HitRowCache
from magray.memory._columns import LayerMeta
from magray.memory._index import IndexFiles
from magray.memory._layerindex import LayerIndex
from magray.memory._sql import SQLITE
from magray.memory._sqlite import RecordDB
from magray.memory._sqlrecords import SqlRecords
from magray.memory._types import Layer

__all__ = ["LocalCore"]

log = get_logger("magray.memory")


class LocalCore(SqlRecords):
    """The state of a local backend (set up by :class:`~magray.memory._local.LocalBackend`)
    and the small reads every part uses: the model pin, counts, the write guard."""

    dialect = SQLITE
    path: Path
    config: BackendConfig
    files: IndexFiles
    db: RecordDB
    read_only: bool
    file_lock: Any
    recovered: dict[str, Any] | None
    _resave: bool
    _mutex: threading.RLock
    layers: dict[str, LayerIndex]
    meta: dict[str, LayerMeta | None]
    applied: int
    epoch: int
    dirty: int
    status: dict[str, Any]
    _data_version: int
    _wal_header: bytes | None
    _access: AccessLog
    _access_writer: threading.Thread | None
    _access_conn: sqlite3.Connection | None
    _on_access_written: Callable[[int], None] | None
    _hit_cache: HitRowCache
    _next_expiry: float | EllipsisType | None
    _compactions: dict[str, threading.Thread]
    _filtered_keys: set[frozenset[str]]
    _saved_keys_cache: dict[str, tuple[Path, frozenset[str]]]
    compaction_hook: Callable[[str], None] | None
    _closed: bool

    def pinned(self) -> tuple[str, int] | None:
        """``(model_id, dim)`` the store is pinned to, or ``None`` for a new store."""
        model_id, dim = self.db.meta("model_id"), self.db.meta("dim")
        if model_id is None or dim is None:
            return None
        return model_id, int(dim)

    def _writable(self, action: str) -> None:
        """Raise :class:`ReadOnlyStorageError` on a store opened read-only."""
        if self.read_only:
            raise ReadOnlyStorageError(
                f"memory store {self.path} is read-only for this process, so it cannot {action}",
                hint=f"{self.db.read_only_reason}; searching and reading work. To write, make "
                f"{self.path} and its files writable for this user, or copy the store to a "
                "writable place (`magray memory backup`)",
                details={"path": str(self.path)},
            )

    def pin(self, model_id: str, dim: int) -> tuple[str, int]:
        """Pin a new store to a model and dim (no-op if already pinned; returns the pin)."""
        self._writable("create a new store")
        with self._mutex, self.db.write() as conn:
            current = self.pinned()
            if current is not None:
                return current
            RecordDB.set_meta(conn, "model_id", model_id)
            RecordDB.set_meta(conn, "dim", str(dim))
        return model_id, dim

    @property
    def dim(self) -> int | None:
        pin = self.pinned()
        return None if pin is None else pin[1]

    def _model_id(self) -> str:
        pin = self.pinned()
        assert pin is not None
        return pin[0]

    def counts(self) -> dict[str, int]:
        rows = self.db.conn.execute("SELECT layer, count(*) FROM records GROUP BY layer")
        out = {layer.value: 0 for layer in Layer}
        out.update(dict(rows))
        return out

    def counts_total(self) -> int:
        return int(self.db.conn.execute("SELECT count(*) FROM records").fetchone()[0])

    def _labels(self, sql: str, params: list[Any]) -> np.ndarray:
        cursor = self.db.conn.execute(sql, params)
        return np.fromiter((row[0] for row in cursor), dtype=np.int64)

    def _db_tip(self) -> dict[str, Any] | None:
        """The newest history event (seq, record id, time): saved with the index, so a later
        open can tell a database that lost it (or replaced it with another)."""
        row = self.db.conn.execute(
            "SELECT seq, record_id, at FROM history ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else {"seq": row[0], "id": row[1], "at": row[2]}

    def _damage(self, reason: str) -> None:
        """Damage found in a saved file: a warning, and a ``index_damaged`` history event
        (the health check reports recent ones)."""
        log.warning("memory index damaged; rebuilt from SQLite", path=str(self.path), reason=reason)
        if self.read_only:
            return
        try:
            with self.db.write() as conn:
                self._log(
                    conn, "*", "index_damaged", time.time(), layer=None, details={"reason": reason}
                )
        except (sqlite3.Error, StorageError) as exc:  # reporting must not stop the open
            log.warning("memory index damage not recorded", error=str(exc))
