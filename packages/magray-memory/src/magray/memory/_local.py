"""The local backend: SQLite (source of truth) + per-layer faiss indexes.

Consistency model:

- Every write is one SQLite transaction that also appends to ``changes``.
  After it commits, :meth:`LocalBackend.sync` replays new ``changes`` rows into
  the in-memory index. Before a read, ``PRAGMA data_version`` tells whether
  another connection committed; if so, the same replay runs. So a process
  always searches exactly what SQLite holds, whichever process wrote it.
- The index on disk is a snapshot with a watermark (the last change applied).
  Opening loads it and replays the changes after the watermark; a missing,
  unreadable, stale (other epoch, model or dim) or inconsistent index is
  rebuilt from SQLite, with a warning log line and a ``rebuilt`` status.
- Index files are written and read under a file lock (``index.lock``); SQLite
  serialises writers with ``BEGIN IMMEDIATE``.

The class is layered over modules of one responsibility each (see ``_localcore``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from types import EllipsisType
from typing import Any

import numpy as np
from filelock import FileLock

from magray.common.errors import StorageError
from magray.common.log import get_logger
from magray.memory._access import AccessLog
from magray.memory._backend import BackendConfig, NewRecord
from magray.memory._cache import HitRowCache
from magray.memory._columns import LayerMeta
from magray.memory._index import IndexFiles, IndexLoadError
from magray.memory._integrity import Integrity
from magray.memory._layerindex import LayerIndex
from magray.memory._sqlite import RecordDB

__all__ = ["BackendConfig", "LocalBackend", "NewRecord"]

log = get_logger("magray.memory")


class LocalBackend(Integrity):
    """SQLite + faiss storage of one store directory.

    Args:
        path: The store directory (created if missing).
        config: Tuning.
    """

    name = "local"

    def __init__(
        self, path: Path, *, config: BackendConfig | None = None, recover: bool = False
    ) -> None:
        from magray.common import paths

        self.path = path
        self.config = config or BackendConfig()
        self.files = IndexFiles(path / "index")
        db_path = path / "memory.db"
        db_there = db_path.is_file() and db_path.stat().st_size > 0
        if not db_there and not recover and self._index_saw_records():
            raise self._lost_database(None)
        if not path.is_dir():
            paths.ensure_dir(path)
        self.db = RecordDB(db_path, busy_timeout=self.config.busy_timeout)
        self.read_only = self.db.read_only
        self.file_lock: Any = (
            contextlib.nullcontext()  # nothing can be written here: nothing to serialise
            if self.read_only
            else FileLock(str(path / "index.lock"), timeout=self.config.busy_timeout)
        )
        self.recovered: dict[str, Any] | None = None
        self._resave = False  # an index loaded from an older format: save it again on close
        self._mutex = threading.RLock()
        self.layers: dict[str, LayerIndex] = {}
        # Filter columns aligned with each layer's index positions (None = load on first use).
        self.meta: dict[str, LayerMeta | None] = {}
        self.applied = 0
        self.epoch = self.db.epoch()
        self.dirty = 0
        self.status: dict[str, Any] = {"index": "empty"}
        self._data_version = self.db.data_version()
        self._wal_header: bytes | None = None
        self._access = AccessLog()
        self._access_writer: threading.Thread | None = None
        self._access_conn: sqlite3.Connection | None = None  # the access writer's own
        self._on_access_written: Callable[[int], None] | None = None  # a test hook
        self._hit_cache = HitRowCache(max_bytes=self.config.hit_cache_bytes)
        self._hit_cache.reserve(self.db.max_label() + 1)
        self._next_expiry: float | EllipsisType | None = ...  # ... = unknown, re-read
        self._compactions: dict[str, threading.Thread] = {}
        self._filtered_keys: set[frozenset[str]] = set()  # filter key sets seen so far
        self._saved_keys_cache: dict[str, tuple[Path, frozenset[str]]] = {}
        # Called by a background compaction just before it swaps its index in (tests use it
        # to hold the swap while they write).
        self.compaction_hook: Callable[[str], None] | None = None
        self._closed = False
        try:
            self._check_database(recover=recover)
            if self.pinned() is not None:
                self._open_index()
            else:
                self.applied = self.db.last_seq()
        except BaseException:
            self.db.close()
            raise

    def _rebuilt(self, reason: str, *, damaged: bool) -> None:
        if damaged:
            self._damage(reason)
        else:
            log.info("memory index rebuilt from SQLite", path=str(self.path), reason=reason)
        self.rebuild()
        self.status = {"index": "rebuilt", "reason": reason, "damaged": damaged}
        if self.recovered is not None:
            self.status["recovered"] = self.recovered
        self.save_index(force=True)

    def _open_index(self) -> None:
        pin = self.pinned()
        assert pin is not None
        if self.recovered is not None:
            self._rebuilt(f"recovered: {self.recovered['reason']}", damaged=False)
            return
        if not self.files.manifest_path.exists() and self.db.last_seq() == 0:
            self.rebuild()  # a new, empty store: nothing to load, nothing to warn about
            self.status = {"index": "empty"}
            return
        try:
            with self.file_lock:
                manifest, layers = self.files.load(self.config.hnsw)
            if manifest.epoch != self.db.epoch():
                raise IndexLoadError(f"index epoch {manifest.epoch} != store {self.db.epoch()}")
            if (manifest.model_id, manifest.dim) != pin:
                raise IndexLoadError(
                    f"index built for {manifest.model_id}/{manifest.dim}, "
                    f"store is {pin[0]}/{pin[1]}"
                )
            first, last = self.db.first_seq(), self.db.last_seq()
            if last < manifest.watermark:
                raise IndexLoadError(
                    f"index watermark {manifest.watermark} is ahead of the store ({last})"
                )
            if last > manifest.watermark and (first is None or first > manifest.watermark + 1):
                raise IndexLoadError("change log no longer covers the index watermark")
            self.layers, self.applied, self.epoch = layers, manifest.watermark, manifest.epoch
            self.meta = dict.fromkeys(layers)
            behind = last - manifest.watermark
            self.status = {"index": "loaded", "caught_up": behind}
            if manifest.legacy:  # saved before checksums: re-saved with them on close
                self._resave = True
                self.status["unverified"] = "index saved by an older version, without checksums"
            if behind:
                log.info("memory index catching up", path=str(self.path), changes=behind)
        except IndexLoadError as exc:
            self._rebuilt(str(exc), damaged=exc.damaged)
        self.sync()
        bad = self._inconsistent_layers()
        if bad:
            self._rebuilt(f"index disagrees with SQLite in layers {', '.join(bad)}", damaged=True)

    def stats(self) -> dict[str, Any]:
        with self._mutex:
            self.refresh()
            pin = self.pinned()
            counts = self.counts()
            layers = {
                layer: {
                    "records": counts.get(layer, 0),
                    "index": self.layers[layer].kind if layer in self.layers else None,
                    "indexed": self.layers[layer].live if layer in self.layers else 0,
                    "tombstones": self.layers[layer].dead if layer in self.layers else 0,
                    "compacting": layer in self._compactions
                    and self._compactions[layer].is_alive(),
                }
                for layer in counts
            }
            sizes = self.db.file_sizes()
            sizes["index"] = self.files.size()
            history = self.db.conn.execute("SELECT count(*) FROM history").fetchone()[0]
            return {
                "backend": self.name,
                "path": str(self.path),
                "model_id": pin[0] if pin else None,
                "dim": pin[1] if pin else None,
                "records": sum(counts.values()),
                "layers": layers,
                "bytes": sizes,
                "history_events": history,
                "watermark": self.applied,
                "last_change": self.db.last_seq(),
                "index_status": dict(self.status),
                "unsaved_changes": self.dirty,
            }

    def backup(self, dest: Path) -> dict[str, Any]:
        """Copy the database (SQLite online backup) and the index into ``dest``."""
        from magray.common import paths

        with self._mutex:
            self._flush_touches()
            self.sync()
            paths.ensure_dir(dest)
            target = dest / "memory.db"
            if target.exists():
                from magray.common.errors import ConflictError

                raise ConflictError(
                    f"{target} already exists", hint="back up into a new or empty directory"
                )
            out = sqlite3.connect(target)
            try:
                self.db.conn.backup(out)
                row = out.execute(
                    "SELECT seq, record_id, at FROM history ORDER BY seq DESC LIMIT 1"
                ).fetchone()
            finally:
                out.close()
            tip = None if row is None else {"seq": row[0], "id": row[1], "at": row[2]}
            pin = self.pinned()
            if pin is not None:
                IndexFiles(dest / "index").save(
                    self.layers,
                    watermark=self.applied,
                    epoch=self.epoch,
                    model_id=pin[0],
                    dim=pin[1],
                    db_tip=tip,  # the copy's own, so the copy opens as the same history
                )
            return {"path": str(dest), "bytes": target.stat().st_size}

    def vacuum(self) -> dict[str, Any]:
        """Compact the index, prune the change log, VACUUM and truncate the WAL."""
        self._writable("be vacuumed")
        with self._mutex:
            self._flush_touches()
            before = self.db.file_sizes()
            before["index"] = self.files.size()
            dropped = self.compact()
            self.save_index(force=True)
            with self.db.write() as conn:
                conn.execute("DELETE FROM changes WHERE seq < ?", (self.applied,))
            self.db.conn.execute("VACUUM")
            self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            after = self.db.file_sizes()
            after["index"] = self.files.size()
            return {"tombstones_dropped": dropped, "bytes_before": before, "bytes_after": after}

    # ------------------------------------------------------------ re-embedding (see SqlRecords)
    def _reembed_begin(self) -> None:
        self._writable("be re-embedded")
        with self._mutex:
            self._flush_touches()

    def _store_vectors(
        self, labels: list[int], vectors: np.ndarray, *, model_id: str, dim: int
    ) -> None:
        with self._mutex, self.db.write() as conn:
            conn.executemany(
                "UPDATE vectors SET vector = ? WHERE label = ?",
                [
                    (np.asarray(v, np.float32).tobytes(), label)
                    for label, v in zip(labels, vectors, strict=True)
                ],
            )
            conn.executemany(
                "UPDATE records SET model_id = ?, dim = ? WHERE label = ?",
                [(model_id, dim, label) for label in labels],
            )

    def _reembed_end(self, *, model_id: str, dim: int, now: float, done: int) -> None:
        with self._mutex:
            with self.db.write() as conn:
                RecordDB.set_meta(conn, "model_id", model_id)
                RecordDB.set_meta(conn, "dim", str(dim))
                RecordDB.set_meta(conn, "index_epoch", str(self.db.epoch() + 1))
                details = {"model_id": model_id, "dim": dim, "records": done}
                self._log(conn, "*", "reindex", now, layer=None, details=details)
            version = self.db.data_version()  # before the rebuild reads (see _after_write)
            self.rebuild()
            self.save_index(force=True)
            self._data_version = version
            self.status = {"index": "rebuilt", "reason": "reindex"}

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            try:
                # Access counts are statistics and the index a cache of SQLite: failing to
                # write them (a full disk) loses no record, so close warns and finishes.
                try:
                    self._flush_touches()
                except (sqlite3.Error, OSError, StorageError) as exc:
                    log.warning("memory access counts not saved", error=str(exc))
                try:
                    if self.dirty or self._resave:
                        self.save_index(force=self._resave)
                    self._save_columns()
                except (OSError, StorageError) as exc:
                    log.warning(
                        "memory index not saved; the next open catches up from SQLite",
                        path=str(self.path),
                        error=str(exc),
                    )
                except Exception as exc:  # a cache: the next process rebuilds it from SQLite
                    log.warning("memory filter columns not saved", error=str(exc))
            finally:
                self._closed = True
                self._join_access_writer()
                if self._access_conn is not None:
                    self._access_conn.close()
                self.db.close()
