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
"""

from __future__ import annotations

import contextlib
import json
import operator
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import EllipsisType
from typing import Any

import numpy as np
from filelock import FileLock

from magray.common.errors import InvalidInputError, ReadOnlyStorageError, StorageError
from magray.common.log import get_logger
from magray.memory._access import AccessLog, fold
from magray.memory._backend import BackendConfig, NewRecord
from magray.memory._cache import HitRow, HitRowCache
from magray.memory._columns import (
    MISSING,
    RECORD_FIELDS,
    LayerMeta,
    MetaRow,
    SavedColumn,
    SavedColumns,
    filter_keys,
    save_columns,
    saved_keys,
)
from magray.memory._filters import ACCESS_FIELDS, compile_where
from magray.memory._index import (
    FLAT,
    HNSW,
    IndexFiles,
    IndexLoadError,
    LayerIndex,
    Manifest,
)
from magray.memory._sql import SQLITE, row_to_record, select_query
from magray.memory._sqlite import RecordDB, loads_metadata, record_columns
from magray.memory._types import Hit, Layer, Record
from magray.memory.errors import (
    DatabaseMissingError,
    DatabaseRegressedError,
    DuplicateIdError,
    RecordNotFoundError,
)

__all__ = ["BackendConfig", "LocalBackend", "NewRecord"]  # the types re-exported from _backend

log = get_logger("magray.memory")

# Access counts are statistics, not data: written without fsync (WAL + NORMAL still
# survives a process crash; a power cut may lose the last few counts).
_UPDATE_ACCESS = (
    "UPDATE records SET access_count = access_count + ?, "
    "last_access = max(last_access, ?) WHERE id = ?"
)


class _SqlBase:
    """Filter columns of a layer's indexed positions, read from SQLite on demand.

    Labels are immutable (any change makes a new label), so reading a label's
    fields later gives the values it had when it was indexed; positions whose
    record is gone are dead in the index and get placeholder values.
    """

    def __init__(self, db: RecordDB, layer: str, labels: np.ndarray) -> None:
        self.db = db
        self.layer = layer
        self.n = len(labels)
        order = np.argsort(labels, kind="stable")
        self._sorted, self._order = labels[order], order

    def _positions(self, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, row indices) of the SQL rows whose label is indexed here."""
        if self.n == 0 or len(found) == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        idx = np.minimum(np.searchsorted(self._sorted, found), self.n - 1)
        hit = self._sorted[idx] == found
        return self._order[idx[hit]], np.flatnonzero(hit)

    def _rows(self, columns: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        marker = f"?{len(params) + 1}"  # numbered, so columns may reuse ?1
        return self.db.conn.execute(
            # NOT INDEXED: a scan in rowid order beats 100k lookups through the layer index
            f"SELECT label, {columns} FROM records NOT INDEXED WHERE layer = {marker}",
            (*params, self.layer),
        ).fetchall()

    def fields(self) -> dict[str, np.ndarray]:
        rows = self._rows("created_at, updated_at, importance, expires_at, pinned")
        out = {
            name: np.full(self.n, np.nan if name == "expires" else 0.0)
            for name in ("created", "updated", "importance", "expires", "pinned")
        }
        if not rows:
            return out
        table = np.array(rows, dtype=np.float64)  # expires_at NULL -> nan
        pos, take = self._positions(table[:, 0].astype(np.int64))
        for i, name in enumerate(("created", "updated", "importance", "expires", "pinned"), 1):
            out[name][pos] = table[take, i]
        return out

    def key(self, key: str) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        path = "$." + ".".join(f'"{part}"' for part in key.split("."))
        # SQLite computes the kind code and the numeric value; Python touches only strings.
        rows = self._rows(
            "CASE json_type(metadata, ?1) WHEN 'null' THEN 1 WHEN 'true' THEN 2 "
            "WHEN 'false' THEN 2 WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 "
            "WHEN 'array' THEN 5 WHEN 'object' THEN 5 ELSE 0 END, "
            "CASE WHEN json_type(metadata, ?1) IN ('integer', 'real', 'true', 'false') "
            "THEN json_extract(metadata, ?1) END, "
            "CASE WHEN json_type(metadata, ?1) = 'text' THEN json_extract(metadata, ?1) END",
            (path,),
        )
        kinds = np.full(self.n, MISSING, dtype=np.int8)
        nums = np.full(self.n, np.nan)
        texts: list[str | None] = [None] * self.n
        if not rows:
            return kinds, nums, texts
        count = len(rows)
        labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=count)
        pos, take = self._positions(labels)
        kinds[pos] = np.fromiter((r[1] for r in rows), dtype=np.int8, count=count)[take]
        values = np.fromiter(
            (np.nan if r[2] is None else r[2] for r in rows), dtype=np.float64, count=count
        )
        nums[pos] = values[take]
        for p, t in zip(pos.tolist(), take.tolist(), strict=True):
            text = rows[t][3]
            if text is not None:
                texts[p] = text
        return kinds, nums, texts

    def saved_column(self, key: str) -> SavedColumn | None:
        return None

    def ids(self) -> list[str]:
        out = [""] * self.n
        rows = self._rows("id")
        if rows:
            labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            pos, take = self._positions(labels)
            for p, t in zip(pos.tolist(), take.tolist(), strict=True):
                out[p] = rows[t][1]
        return out


class _FileBase(_SqlBase):
    """Filter columns of a layer's first positions from a file saved with the index;
    metadata keys the file lacks (and ids) are read from SQLite like :class:`_SqlBase`."""

    def __init__(self, db: RecordDB, layer: str, saved: SavedColumns, labels: np.ndarray) -> None:
        super().__init__(db, layer, labels[: saved.n])
        self.saved = saved

    def fields(self) -> dict[str, np.ndarray]:
        return self.saved.fields()

    def saved_column(self, key: str) -> SavedColumn | None:
        return self.saved.column(key)


class LocalBackend:
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

    # ------------------------------------------------------------ the database is the truth
    def _db_tip(self) -> dict[str, Any] | None:
        """The newest history event (seq, record id, time): saved with the index, so a later
        open can tell a database that lost it (or replaced it with another)."""
        row = self.db.conn.execute(
            "SELECT seq, record_id, at FROM history ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else {"seq": row[0], "id": row[1], "at": row[2]}

    def _lost_database(self, manifest: Manifest | None, why: str | None = None) -> Exception:
        db_path = self.path / "memory.db"
        if why is None:
            return DatabaseMissingError(
                f"memory store {self.path}: memory.db is missing or empty, but its index files "
                "exist; the database is the source of truth, so opening it as a new store "
                "would silently lose every record",
                hint=f"put memory.db back from a backup, or run `magray memory check --repair "
                f"--store {self.path}` (MemoryStore.open(..., recover=True)) to start over "
                "from an empty database and report what was lost",
                details={"path": str(db_path)},
            )
        return DatabaseRegressedError(
            f"memory store {self.path}: memory.db lost changes its saved index had seen ({why})",
            hint=f"restore memory.db (with its -wal file) from a backup, or run `magray memory "
            f"check --repair --store {self.path}` (MemoryStore.open(..., recover=True)) to "
            "rebuild the index from what the database holds and report what was lost",
            details={
                "path": str(db_path),
                "index_watermark": None if manifest is None else manifest.watermark,
                "db_last_change": self.db.last_seq(),
            },
        )

    def _index_saw_records(self) -> bool:
        """Whether a saved index exists that has seen at least one change."""
        try:
            return self.files.read_manifest().watermark > 0
        except IndexLoadError:
            return False

    def _check_database(self, *, recover: bool) -> None:
        """Refuse a database that is empty or behind the saved index (unless ``recover``)."""
        try:
            manifest = self.files.read_manifest()
        except IndexLoadError:
            return  # no readable manifest: nothing to compare the database with
        if manifest.watermark == 0:
            return  # the index never saw a record: nothing can have been lost
        last = self.db.last_seq()
        why: str | None = "empty"
        if self.pinned() is None or (last == 0 and self.counts_total() == 0):
            why = None  # missing or emptied
        elif last < manifest.watermark:
            why = f"its change log ends at {last}, the index had seen {manifest.watermark}"
        else:
            tip = manifest.db_tip or {}
            row = (
                self.db.conn.execute(
                    "SELECT record_id, at FROM history WHERE seq = ?", (tip["seq"],)
                ).fetchone()
                if tip.get("seq")
                else None
            )
            if tip.get("seq") and (row is None or (row[0], row[1]) != (tip["id"], tip["at"])):
                why = f"history event {tip['seq']} the index had seen is gone or different"
            else:
                return
        if not recover:
            raise self._lost_database(manifest, why)
        self._recover(manifest, why or "memory.db was missing or empty")

    def _recover(self, manifest: Manifest, why: str) -> None:
        """Start from what the database holds: pin it like the index (if it lost even that),
        count what the saved index knew and the database does not, rebuild, save, log."""
        if self.read_only:
            raise ReadOnlyStorageError(
                f"memory store {self.path} is read-only, so it cannot be recovered in place",
                hint="copy the directory somewhere writable and recover the copy",
            )
        if self.pinned() is None:
            self.pin(manifest.model_id, manifest.dim)
        known: set[int] = set()
        for info in manifest.layers.values():
            try:
                with np.load(self.files.dir / info["state"]) as state:
                    known.update(state["labels"][state["alive"]].tolist())
            except Exception:  # an unreadable state file: its labels stay unknown
                continue
        present = set(self._labels("SELECT label FROM records", []).tolist())
        report = {
            "reason": why,
            "index_records": len(known),
            "db_records": len(present),
            "lost_records": len(known - present),
            "index_watermark": manifest.watermark,
            "db_last_change": self.db.last_seq(),
        }
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO history (record_id, event, at, layer, details) "
                "VALUES ('*', 'recovered', strftime('%s', 'now'), NULL, ?)",
                (json.dumps(report, sort_keys=True),),
            )
        log.warning("memory store recovered from a damaged database", path=str(self.path), **report)
        self.recovered = report
        self.files.remove()  # the old index describes records that are gone

    # ------------------------------------------------------------ model pinning
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

    # ------------------------------------------------------------ index lifecycle
    def _damage(self, reason: str) -> None:
        """Damage found in a saved file: a warning, and a ``index_damaged`` history event
        (the health check reports recent ones)."""
        log.warning("memory index damaged; rebuilt from SQLite", path=str(self.path), reason=reason)
        if self.read_only:
            return
        try:
            with self.db.write() as conn:
                RecordDB.log(
                    conn, "*", "index_damaged", time.time(), layer=None, details={"reason": reason}
                )
        except (sqlite3.Error, StorageError) as exc:  # reporting must not stop the open
            log.warning("memory index damage not recorded", error=str(exc))

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

    def counts(self) -> dict[str, int]:
        rows = self.db.conn.execute("SELECT layer, count(*) FROM records GROUP BY layer")
        out = {layer.value: 0 for layer in Layer}
        out.update(dict(rows))
        return out

    def consistency(self) -> dict[str, dict[str, int | bool]]:
        """Per layer: records in SQLite vs live vectors in the index; ``ok`` needs the same
        count and the same sum of labels (so an index holding labels the database lost, with
        as many others it lacks, is not ok)."""
        with self._mutex:
            self.sync()
            sums = {layer.value: (0, 0) for layer in Layer}
            for layer, n, total in self.db.conn.execute(
                "SELECT layer, count(*), sum(label) FROM records GROUP BY layer"
            ):
                sums[layer] = (int(n), int(total or 0))
            out: dict[str, dict[str, int | bool]] = {}
            for layer, (n, total) in sums.items():
                index = self.layers.get(layer)
                live = index.live if index is not None else 0
                indexed_sum = int(index.labels().sum()) if index is not None else 0
                out[layer] = {
                    "records": n,
                    "indexed": live,
                    "ok": (n, total) == (live, indexed_sum),
                }
            return out

    def damage_events(self, since: float = 0.0) -> list[dict[str, Any]]:
        """``index_damaged`` and ``recovered`` events (newest first) since a Unix time."""
        rows = self.db.conn.execute(
            "SELECT seq, event, at, details FROM history WHERE record_id = '*' AND "
            "event IN ('index_damaged', 'recovered') AND at >= ? ORDER BY seq DESC LIMIT 20",
            (since,),
        ).fetchall()
        return [
            {"seq": seq, "event": event, "at": float(at), "details": json.loads(details)}
            for seq, event, at, details in rows
        ]

    def _cross_check(self) -> dict[str, dict[str, Any]]:
        """Per layer, label by label: records the index lacks, index entries the database
        does not have, and vectors that differ between the two."""
        pin = self.pinned()
        out: dict[str, dict[str, Any]] = {}
        for layer in Layer:
            db_labels = np.sort(
                self._labels("SELECT label FROM records WHERE layer = ?", [layer.value])
            )
            index = self.layers.get(layer.value)
            indexed = np.sort(index.labels()) if index is not None else db_labels[:0]
            common = np.intersect1d(db_labels, indexed, assume_unique=True)
            differ = 0
            if index is not None and pin is not None and len(common):
                stored = index.vectors()
                for start in range(0, len(common), 4096):
                    chunk = common[start : start + 4096].tolist()
                    blobs = self.db.vectors_by_label(chunk)
                    keep = [lb for lb in chunk if len(blobs.get(lb, b"")) == pin[1] * 4]
                    if not keep:
                        continue
                    want = np.frombuffer(b"".join(blobs[lb] for lb in keep), dtype=np.float32)
                    have = stored[index.positions(np.asarray(keep, dtype=np.int64))]
                    diff = np.abs(have - want.reshape(len(keep), pin[1])).max(axis=1)
                    differ += int(np.count_nonzero(diff > 1e-5))
            missing = int(len(db_labels) - len(common))
            unknown = int(len(indexed) - len(common))
            out[layer.value] = {
                "records": len(db_labels),
                "indexed": len(indexed),
                "missing_in_index": missing,
                "unknown_to_db": unknown,
                "vectors_differ": differ,
                "ok": missing == unknown == differ == 0,
            }
        return out

    def check(self, *, repair: bool = False) -> dict[str, Any]:
        """SQLite's ``integrity_check``, the saved files' checksums, and the index checked
        label by label (and vector by vector) against the database; with ``repair``, an
        index that fails is rebuilt from SQLite and saved, then checked again."""
        with self._mutex:
            self.sync()
            integrity = [str(row[0]) for row in self.db.conn.execute("PRAGMA integrity_check")]
            checksums = self.files.verify()
            layers = self._cross_check()
            problems = [] if integrity == ["ok"] else [f"database: {integrity[0]}"]
            problems += [f"index file: {p}" for p in checksums]
            problems += [
                f"layer {layer}: {c['missing_in_index']} records not indexed, "
                f"{c['unknown_to_db']} index entries unknown to the database, "
                f"{c['vectors_differ']} vectors differ"
                for layer, c in layers.items()
                if not c["ok"]
            ]
            report: dict[str, Any] = {
                "path": str(self.path),
                "ok": not problems,
                "problems": problems,
                "integrity": integrity[:20],
                "checksums": checksums,
                "layers": layers,
                "index_status": dict(self.status),
                "recovered": self.recovered,
                "damage_events": self.damage_events(),
                "read_only": self.read_only,
                "repaired": [],
            }
            if repair and (checksums or any(not c["ok"] for c in layers.values())):
                self._writable("be repaired")
                self.rebuild()
                self.save_index(force=True)
                report["repaired"].append("index rebuilt from SQLite and saved")
                report["checksums"] = self.files.verify()
                report["layers"] = self._cross_check()
                index_ok = not report["checksums"] and all(
                    c["ok"] for c in report["layers"].values()
                )
                report["ok"] = index_ok and integrity == ["ok"]
                report["problems"] = [p for p in problems if p.startswith("database:")]
            return report

    def _inconsistent_layers(self) -> list[str]:
        return [layer for layer, c in self.consistency().items() if not c["ok"]]

    def rebuild(self) -> None:
        """Rebuild every layer's index from SQLite's vectors."""
        with self._mutex:
            pin = self.pinned()
            if pin is None:
                self.layers = {}
                self.applied = self.db.last_seq()
                return
            dim = pin[1]
            conn = self.db.conn
            conn.execute("BEGIN")  # one read snapshot for the rows and the watermark
            try:
                seq = self.db.last_seq()
                epoch = self.db.epoch()
                layers: dict[str, LayerIndex] = {}
                for layer, count in self.counts().items():
                    labels = np.empty(count, dtype=np.int64)
                    vectors = np.empty((count, dim), dtype=np.float32)
                    n = 0
                    cursor = conn.execute(
                        "SELECT r.label, v.vector FROM records AS r NOT INDEXED "
                        "JOIN vectors v ON v.label = r.label WHERE r.layer = ? ORDER BY r.label",
                        (layer,),
                    )
                    while rows := cursor.fetchmany(4096):
                        for label, blob in rows:
                            if len(blob) != dim * 4:
                                continue  # mid-reindex row of another dim; reindex bumps the epoch
                            labels[n] = label
                            vectors[n] = np.frombuffer(blob, dtype=np.float32)
                            n += 1
                    kind = HNSW if n > self.config.flat_threshold else FLAT
                    layers[layer] = LayerIndex.build(
                        dim, labels[:n], vectors[:n], kind=kind, params=self.config.hnsw
                    )
            finally:
                conn.execute("COMMIT")
            self.layers, self.applied, self.epoch = layers, seq, epoch
            self.meta = dict.fromkeys(layers)
            self.dirty = 1

    def save_index(self, *, force: bool = False) -> bool:
        """Persist the in-memory index unless the saved one is as new; returns whether saved
        (never on a read-only store)."""
        with self._mutex:
            pin = self.pinned()
            if pin is None or self.read_only:
                return False
            with self.file_lock:
                if not force:
                    try:
                        current = self.files.read_manifest()
                        if (
                            current.epoch == self.epoch
                            and current.watermark >= self.applied
                            and (current.model_id, current.dim) == pin
                        ):
                            self.dirty = 0
                            return False
                    except IndexLoadError:
                        pass
                self.files.save(
                    self.layers,
                    watermark=self.applied,
                    epoch=self.epoch,
                    model_id=pin[0],
                    dim=pin[1],
                    columns=self._column_snapshots(),
                    db_tip=self._db_tip(),
                )
            self.dirty = 0
            self._resave = False
            return True

    def refresh(self) -> None:
        """Catch up with commits of other connections, if there were any."""
        with self._mutex:
            header = self.db.wal_header()  # read before data_version: a commit in between
            if header is not None and header == self._wal_header:  # is caught next time
                return
            self._wal_header = header
            version = self.db.data_version()
            if version != self._data_version:
                self._data_version = version
                self._next_expiry = ...
                self.sync()

    def sync(self) -> int:
        """Replay ``changes`` after the watermark into the index; returns how many."""
        with self._mutex:
            pin = self.pinned()
            if pin is None:
                self.applied = self.db.last_seq()
                return 0
            if self.db.epoch() != self.epoch or (not self.layers and self.counts_total() > 0):
                self.rebuild()
                return 0
            last = self.db.last_seq()
            if last <= self.applied:
                return 0
            first = self.db.first_seq()
            if first is None or first > self.applied + 1:
                self.rebuild()
                return 0
            rows = self.db.conn.execute(
                "SELECT seq, op, label, layer FROM changes WHERE seq > ? ORDER BY seq",
                (self.applied,),
            ).fetchall()
            pending: dict[tuple[str, int], None] = {}
            touched: set[str] = set()
            for _seq, op, label, layer in rows:
                touched.add(layer)
                if op == "add":
                    pending[(layer, label)] = None
                else:
                    pending.pop((layer, label), None)
                    if layer in self.layers:
                        self.layers[layer].remove([label])
            if pending:
                found = self.db.index_rows([label for _, label in pending])
                grouped: dict[str, list[tuple[int, bytes, MetaRow]]] = {}
                for layer, label in pending:
                    row = found.get(label)
                    if row is None or row[0] != layer or len(row[1]) != pin[1] * 4:
                        continue
                    grouped.setdefault(layer, []).append((label, row[1], row[2]))
                for layer, items in grouped.items():
                    labels = np.fromiter(
                        (lb for lb, _, _ in items), dtype=np.int64, count=len(items)
                    )
                    vectors = np.frombuffer(b"".join(b for _, b, _ in items), dtype=np.float32)
                    index = self.layers.get(layer)
                    if index is None:
                        index = self.layers[layer] = LayerIndex(
                            pin[1], kind=FLAT, params=self.config.hnsw
                        )
                        self.meta[layer] = LayerMeta()
                    index.add(labels, vectors.reshape(len(items), pin[1]))
                    meta = self.meta.get(layer)
                    if meta is not None:
                        meta.append([m for _, _, m in items])
                        if meta.n != index.n:  # never expected; fall back to a lazy reload
                            self.meta[layer] = None
            self.applied = int(rows[-1][0]) if rows else last
            self.dirty += len(rows)
            for layer in touched:
                self._maintain(layer)
            live = sum(index.live for index in self.layers.values())
            # At least autosave_changes, and at least half the store: big stores are not
            # rewritten every few batches (the change log covers whatever is unsaved).
            if self.dirty >= max(self.config.autosave_changes, live // 2):
                self.save_index()
            return len(rows)

    def counts_total(self) -> int:
        return int(self.db.conn.execute("SELECT count(*) FROM records").fetchone()[0])

    def _maintain(self, layer: str) -> None:
        """Switch flat → HNSW past the threshold; compact when tombstones pass the ratio."""
        index = self.layers.get(layer)
        if index is None:
            return
        want = HNSW if index.live > self.config.flat_threshold else index.kind
        too_dead = (
            index.dead >= self.config.min_compact
            and index.dead > self.config.tombstone_ratio * index.n
        )
        if want != index.kind or too_dead:
            if too_dead and index.live <= self.config.flat_threshold:
                want = FLAT
            if want == index.kind == HNSW and self.config.background_compaction:
                self._compact_in_background(layer)
                return
            self._rebuild_layer(layer, want)
            log.info(
                "memory index layer rebuilt",
                layer=layer,
                kind=want,
                live=index.live,
                dropped_tombstones=index.dead,
            )

    def _rebuild_layer(self, layer: str, kind: str) -> None:
        """Replace a layer's index by one of only its live vectors (filter columns follow)."""
        index = self.layers[layer]
        positions, labels, vectors = index.live_vectors()
        self.layers[layer] = LayerIndex.build(
            index.dim, labels, vectors, kind=kind, params=self.config.hnsw
        )
        self._take_meta(layer, index, positions)

    def _take_meta(self, layer: str, old: LayerIndex, positions: np.ndarray) -> None:
        """The layer's filter columns for a new index holding ``old``'s ``positions`` in that
        order (``None``, reloaded on first use, when they were not aligned with ``old``)."""
        meta = self.meta.get(layer)
        aligned = meta is not None and meta.n == old.n
        self.meta[layer] = meta.take(positions) if meta is not None and aligned else None

    def _compact_in_background(self, layer: str) -> None:
        """Rebuild an HNSW layer without its tombstones in a thread (an HNSW build takes
        about a minute per 100k vectors, too long to hold up the write that crossed the
        ratio). Searches keep using the old index, whose tombstones they filter out, until
        the new one is swapped in with whatever changed meanwhile."""
        job = self._compactions.get(layer)
        if job is not None and job.is_alive():
            return
        index = self.layers[layer]
        positions, labels, vectors = index.live_vectors()
        job = threading.Thread(
            target=self._compaction_job,
            args=(layer, index),
            kwargs={
                "snapshot_n": index.n,
                "positions": positions,
                "labels": labels,
                "vectors": vectors,
            },
            name=f"magray-memory-compact-{layer}",
            daemon=True,
        )
        self._compactions[layer] = job
        log.info("memory index compaction started", layer=layer, live=index.live, dead=index.dead)
        job.start()

    def _compaction_job(
        self,
        layer: str,
        old: LayerIndex,
        *,
        snapshot_n: int,
        positions: np.ndarray,
        labels: np.ndarray,
        vectors: np.ndarray,
    ) -> None:
        try:
            new = LayerIndex(old.dim, kind=HNSW, params=self.config.hnsw)
            for start in range(0, len(labels), 10_000):  # stops soon after close or a rebuild
                if self._closed or self.layers.get(layer) is not old:
                    return
                new.add(labels[start : start + 10_000], vectors[start : start + 10_000])
            del vectors
            if self.compaction_hook is not None:
                self.compaction_hook(layer)
            with self._mutex:
                if self._closed or self.layers.get(layer) is not old:
                    return
                died, tail, tail_labels, tail_vectors = old.changes_since(positions, snapshot_n)
                new.remove(died.tolist())
                new.add(tail_labels, tail_vectors)
                self._take_meta(layer, old, np.concatenate([positions, tail]))
                self.layers[layer] = new
                self.dirty += 1
            log.info(
                "memory index layer compacted in the background",
                layer=layer,
                live=new.live,
                dropped_tombstones=old.dead - new.dead,
            )
        except Exception as exc:  # the old index stays in use; the next trigger retries
            log.error("memory index compaction failed", layer=layer, error=repr(exc))

    def wait_for_compaction(self, timeout: float | None = None) -> bool:
        """Wait for background compactions; ``False`` when one is still running."""
        for job in list(self._compactions.values()):
            job.join(timeout)
        return not any(job.is_alive() for job in self._compactions.values())

    def _layer_meta(self, layer: str) -> LayerMeta:
        """The filter columns of a layer: from the file saved with the index when there is
        one for these positions, else read from SQLite lazily, one metadata key at a time
        (``json_extract``), not as parsed dicts; positions added since are appended."""
        meta = self.meta.get(layer)
        index = self.layers[layer]
        if meta is not None and meta.n == index.n:
            return meta
        labels, _ = index.state()
        saved = self._saved_columns(layer, labels)
        if saved is not None:
            meta = LayerMeta(_FileBase(self.db, layer, saved, labels))
            tail = labels[saved.n :].tolist()
            if tail:
                found = self.db.meta_rows(tail)
                gone = MetaRow("", {}, 0.0, 0.0, 0.0, None, False)  # dead positions
                meta.append([found.get(label, gone) for label in tail])
        else:
            meta = LayerMeta(_SqlBase(self.db, layer, labels))
        self.meta[layer] = meta
        return meta

    def _columns_path(self, layer: str) -> Path | None:
        """The filter-column file the manifest lists for ``layer``, if any."""
        found = self.files.columns_file(layer)
        return None if found is None else found[0]

    def _saved_columns(self, layer: str, labels: np.ndarray) -> SavedColumns | None:
        found = self.files.columns_file(layer)
        if found is None:
            return None
        path, digest = found
        try:
            return SavedColumns(path, labels, digest)
        except ValueError as exc:  # another generation's positions, or damaged: use SQLite
            if "checksum" in str(exc):
                self._damage(f"{path.name} {exc}")
            else:
                log.info("memory filter columns not used", path=str(path), reason=str(exc))
            return None

    def _saved_keys(self, layer: str) -> frozenset[str]:
        """Metadata keys with saved columns for ``layer`` (read once per generation)."""
        path = self._columns_path(layer)
        if path is None:
            return frozenset()
        cached = self._saved_keys_cache.get(layer)
        if cached is None or cached[0] != path:
            cached = self._saved_keys_cache[layer] = (path, saved_keys(path))
        return cached[1]

    def _complete_metas(self) -> dict[str, LayerMeta]:
        """Filter columns worth saving: those that cover every position of their layer."""
        return {
            layer: meta
            for layer, index in self.layers.items()
            if (meta := self.meta.get(layer)) is not None and meta.n == index.n
        }

    def _column_snapshots(self) -> dict[str, dict[str, np.ndarray]]:
        return {layer: meta.snapshot() for layer, meta in self._complete_metas().items()}

    def _save_columns(self) -> None:
        """Save built filter columns beside an index on disk that matches memory (the index
        itself unchanged), so the next process need not rebuild them from SQLite."""
        if self.dirty or self.read_only:
            return
        with self.file_lock:  # no other process saves a generation meanwhile
            try:
                manifest = self.files.read_manifest()
            except IndexLoadError:
                return
            if manifest.watermark != self.applied or manifest.epoch != self.epoch:
                return
            for layer, meta in self._complete_metas().items():
                path = self.files.dir / f"{layer}.{manifest.generation}.cols.npz"
                if self._columns_path(layer) == path and meta.column_keys <= self._saved_keys(
                    layer
                ):
                    continue
                labels, _ = self.layers[layer].state()
                digest = save_columns(path, labels, meta.snapshot())
                self.files.add_columns(layer, path.name, digest)

    def compact(self) -> int:
        """Drop every tombstone now; returns how many were dropped."""
        with self._mutex:
            self.sync()
            dropped = 0
            for layer, index in list(self.layers.items()):
                if index.dead:
                    dropped += index.dead
                    kind = HNSW if index.live > self.config.flat_threshold else FLAT
                    self._rebuild_layer(layer, kind)
            if dropped:
                self.dirty += 1
            return dropped

    # ------------------------------------------------------------ writes
    def _after_write(self) -> None:
        self._next_expiry = ...
        # data_version first: a commit of another process that lands after this read is
        # seen by the next refresh (read after the sync, it would be absorbed unseen).
        version = self.db.data_version()
        self.sync()
        self._data_version = version

    def insert(self, rows: Sequence[NewRecord], *, dedupe: bool, now: float) -> list[str]:
        """Insert records in one transaction; returns ids (existing ids for deduped text)."""
        self._writable("add records")
        with self._mutex:
            self._flush_touches()
            ids: list[str] = []
            added: list[tuple[int, HitRow]] = []
            with self.db.write() as conn:
                explicit = [r.id for r in rows if r.id is not None]
                if explicit:
                    taken = self.db.labels_by_id(explicit)
                    if taken:
                        shown = ", ".join(sorted(taken)[:5])
                        raise DuplicateIdError(
                            f"ids already in the store: {shown}",
                            hint="use update() (magray memory update) to change a record, "
                            "or delete it first; nothing was added",
                            details={"ids": sorted(taken)},
                        )
                seen: dict[tuple[str, str], str] = {}
                for r in rows:
                    key = (r.layer.value, r.content_hash)
                    if dedupe:
                        existing = seen.get(key)
                        if existing is None:
                            row = conn.execute(
                                "SELECT id FROM records WHERE layer = ? AND content_hash = ? "
                                "LIMIT 1",
                                key,
                            ).fetchone()
                            existing = None if row is None else row[0]
                        if existing is not None:
                            ids.append(existing)
                            seen[key] = existing
                            continue
                    record_id = r.id if r.id is not None else uuid.uuid4().hex
                    label = self._insert_row(
                        conn,
                        record_id=record_id,
                        layer=r.layer.value,
                        text=r.text,
                        metadata_json=r.metadata_json,
                        vector=r.vector,
                        content_hash=r.content_hash,
                        created_at=now if r.created_at is None else r.created_at,
                        updated_at=now if r.updated_at is None else r.updated_at,
                        last_access=now if r.last_access is None else r.last_access,
                        access_count=r.access_count,
                        importance=r.importance,
                        expires_at=r.expires_at,
                        pinned=r.pinned,
                        model_id=self._model_id(),
                    )
                    RecordDB.log(
                        conn,
                        record_id,
                        "add",
                        now,
                        layer=r.layer.value,
                        details={"chars": len(r.text), "content_hash": r.content_hash},
                    )
                    ids.append(record_id)
                    seen[key] = record_id
                    added.append((label, (record_id, r.text, r.metadata_json, r.layer)))
            # Committed: recently added records are the likeliest hits, so their rows are
            # cached now and a search over them needs no SQLite read.
            self._hit_cache.put_many(added)
            self._after_write()
            return ids

    def _model_id(self) -> str:
        pin = self.pinned()
        assert pin is not None
        return pin[0]

    @staticmethod
    def _insert_row(
        conn: sqlite3.Connection,
        *,
        record_id: str,
        layer: str,
        text: str,
        metadata_json: str,
        vector: np.ndarray | bytes,
        content_hash: str,
        created_at: float,
        updated_at: float,
        last_access: float,
        access_count: int,
        importance: float,
        expires_at: float | None,
        pinned: bool,
        model_id: str,
    ) -> int:
        blob = vector if isinstance(vector, bytes) else np.asarray(vector, np.float32).tobytes()
        cursor = conn.execute(
            "INSERT INTO records (id, layer, text, metadata, content_hash, created_at, "
            "updated_at, last_access, access_count, importance, expires_at, pinned, model_id, dim) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record_id,
                layer,
                text,
                metadata_json,
                content_hash,
                created_at,
                updated_at,
                last_access,
                access_count,
                importance,
                expires_at,
                int(pinned),
                model_id,
                len(blob) // 4,
            ),
        )
        label = int(cursor.lastrowid or 0)
        conn.execute("INSERT INTO vectors (label, vector) VALUES (?, ?)", (label, blob))
        RecordDB.change(conn, "add", label, layer)
        return label

    def _fetch_row(self, conn: sqlite3.Connection, record_id: str) -> tuple[Any, ...]:
        row = conn.execute(
            f"SELECT {record_columns(with_vector=True)} FROM records WHERE id = ?", (record_id,)
        ).fetchone()
        if row is None:
            raise RecordNotFoundError(
                f"no memory record with id {record_id!r}",
                hint="`magray memory list` shows ids",
                details={"id": record_id},
            )
        return tuple(row)

    def _relabel(
        self,
        conn: sqlite3.Connection,
        row: tuple[Any, ...],
        *,
        now: float,
        layer: str | None = None,
        text: str | None = None,
        vector: np.ndarray | None = None,
        content_hash: str | None = None,
        metadata_json: str | None = None,
        importance: float | None = None,
        pinned: bool | None = None,
        expires_at: float | EllipsisType | None = ...,
    ) -> None:
        """Replace a record's row (new label) because its vector or layer changed."""
        (
            label,
            record_id,
            old_layer,
            old_text,
            old_meta,
            old_hash,
            created_at,
            _updated,
            last_access,
            access_count,
            old_importance,
            old_expires,
            old_pinned,
            model_id,
            _dim,
            blob,
        ) = row
        conn.execute("DELETE FROM records WHERE label = ?", (label,))
        RecordDB.change(conn, "del", label, old_layer)
        self._insert_row(
            conn,
            record_id=record_id,
            layer=layer or old_layer,
            text=old_text if text is None else text,
            metadata_json=old_meta if metadata_json is None else metadata_json,
            vector=blob if vector is None else vector,
            content_hash=old_hash if content_hash is None else content_hash,
            created_at=created_at,
            updated_at=now,
            last_access=last_access,
            access_count=access_count,
            importance=old_importance if importance is None else importance,
            expires_at=old_expires if isinstance(expires_at, EllipsisType) else expires_at,
            pinned=bool(old_pinned) if pinned is None else pinned,
            model_id=model_id if vector is None else self._model_id(),
        )

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
        """Change fields of one record; a new text/vector or layer re-indexes it."""
        self._writable("update records")
        with self._mutex:
            self._flush_touches()
            with self.db.write() as conn:
                row = self._fetch_row(conn, record_id)
                changed: dict[str, Any] = {}
                if text is not None and text != row[3]:
                    changed["text"] = {"chars": len(text), "content_hash": content_hash}
                if metadata_json is not None and metadata_json != row[4]:
                    changed["metadata"] = True
                if importance is not None and importance != row[10]:
                    changed["importance"] = [row[10], importance]
                if pinned is not None and pinned != bool(row[12]):
                    changed["pinned"] = pinned
                if layer is not None and layer.value != row[2]:
                    changed["layer"] = [row[2], layer.value]
                if not isinstance(expires_at, EllipsisType) and expires_at != row[11]:
                    changed["expires_at"] = [row[11], expires_at]
                if vector is not None and "text" not in changed:
                    changed["vector"] = True
                if changed:
                    # Any change gives the record a new label, so the index and its
                    # in-memory filter columns only ever append (see _columns.py).
                    self._relabel(
                        conn,
                        row,
                        now=now,
                        layer=layer.value if layer else None,
                        text=text,
                        vector=vector,
                        content_hash=content_hash,
                        metadata_json=metadata_json,
                        importance=importance,
                        pinned=pinned,
                        expires_at=expires_at,
                    )
                if changed:
                    new_layer = layer.value if layer else row[2]
                    RecordDB.log(conn, record_id, "update", now, layer=new_layer, details=changed)
            self._after_write()
            return self.get([record_id])[0]

    def move(
        self,
        moves: Sequence[tuple[str, Layer, float | None, str, dict[str, Any]]],
        *,
        now: float,
    ) -> int:
        """Move records between layers: ``(id, layer, expires_at, event, details)``."""
        if not moves:
            return 0
        self._writable("move records")
        with self._mutex:
            self._flush_touches()
            done = 0
            with self.db.write() as conn:
                for record_id, layer, expires_at, event, details in moves:
                    try:
                        row = self._fetch_row(conn, record_id)
                    except RecordNotFoundError:
                        continue  # deleted by someone else meanwhile
                    self._relabel(conn, row, now=now, layer=layer.value, expires_at=expires_at)
                    RecordDB.log(conn, record_id, event, now, layer=layer.value, details=details)
                    done += 1
            self._after_write()
            return done

    def delete(
        self,
        ids: Sequence[str],
        *,
        now: float,
        event: str = "delete",
        details: dict[str, dict[str, Any]] | None = None,
    ) -> list[str]:
        """Delete records; returns the ids that existed."""
        self._writable("delete records")
        with self._mutex:
            self._flush_touches()
            deleted = []
            with self.db.write() as conn:
                for record_id in ids:
                    row = conn.execute(
                        "SELECT label, layer FROM records WHERE id = ?", (record_id,)
                    ).fetchone()
                    if row is None:
                        continue
                    conn.execute("DELETE FROM records WHERE label = ?", (row[0],))
                    RecordDB.change(conn, "del", row[0], row[1])
                    RecordDB.log(
                        conn,
                        record_id,
                        event,
                        now,
                        layer=row[1],
                        details=(details or {}).get(record_id),
                    )
                    deleted.append(record_id)
            self._after_write()
            return deleted

    # ------------------------------------------------------------ access stats
    def touch(self, ids: Sequence[str], now: float) -> None:
        """Count a search hit for each id (buffered; see :class:`AccessLog` for when the
        counts are written)."""
        if self.read_only:
            return  # statistics cannot be written to a read-only store
        with self._mutex:
            if self._access.add(ids, now):
                self._flush_in_background()

    def _flush_in_background(self) -> None:
        """Write the pending counts on a second connection in a thread, so the search that
        filled the log does not wait for them (8192 counts dirty thousands of pages of the
        records table: ~0.1 s at 100k records). One such write at a time; hits logged while
        it runs go with the next one."""
        if self._access_writer is not None and self._access_writer.is_alive():
            return
        logged = self._access.take()
        if not logged:
            return
        self._access_writer = threading.Thread(
            target=self._write_access, args=(logged,), name="magray-memory-access", daemon=True
        )
        self._access_writer.start()

    def _write_access(self, logged: list[tuple[Sequence[str], float]]) -> None:
        items = fold(logged)
        try:
            if self._access_conn is None:
                self._access_conn = self.db.connect_side()
            with self.db.write(self._access_conn) as conn:
                conn.executemany(_UPDATE_ACCESS, items)
            if self._on_access_written is not None:
                self._on_access_written(len(items))
        except Exception as exc:  # statistics: logged, never raised into a search
            log.warning("search access counts were not written", records=len(items), error=str(exc))

    def _join_access_writer(self) -> None:
        writer, self._access_writer = self._access_writer, None
        if writer is not None:
            writer.join()

    def _flush_touches(self) -> None:
        self._join_access_writer()  # whoever reads counts sees every count logged before
        items = self._access.drain()
        if not items:
            return
        self.db.conn.execute("PRAGMA synchronous=NORMAL")  # statistics: see _UPDATE_ACCESS
        try:
            with self.db.write() as conn:
                conn.executemany(_UPDATE_ACCESS, items)
        except (sqlite3.Error, StorageError) as exc:
            # Statistics: a full disk must not fail the read (get, list) that flushes them.
            log.warning("search access counts were not written", records=len(items), error=str(exc))
        finally:
            self.db.conn.execute("PRAGMA synchronous=FULL")
        # No data_version update here: this connection's own commits do not change it, and
        # reading it now would absorb other processes' commits since the last sync unseen
        # (a search after another process's add() then missed that record).

    def flush(self) -> None:
        """Write buffered access counts now."""
        with self._mutex:
            self._flush_touches()

    # ------------------------------------------------------------ reads
    def get(self, ids: Sequence[str], *, with_vector: bool = False) -> list[Record]:
        with self._mutex:
            self._flush_touches()
            labels = self.db.labels_by_id(list(ids))
            found = self.db.records_by_label(list(labels.values()), with_vector=with_vector)
            return [found[labels[i]] for i in ids if i in labels and labels[i] in found]

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
            SQLITE,
            table="records",
            columns=record_columns(with_vector=with_vector),
            layer=layer,
            where=where,
            limit=limit,
            offset=offset,
            order=order,
            descending=descending,
        )
        with self._mutex:
            self._flush_touches()
            return [
                row_to_record(row, with_vector=with_vector)
                for row in self.db.conn.execute(query, args)
            ]

    def iter_records(
        self,
        *,
        layers: Sequence[Layer] | None = None,
        with_vector: bool = False,
        batch: int = 1000,
    ) -> Iterator[Record]:
        """Every record in label order, read in batches (each batch under the lock)."""
        names = [layer.value for layer in (layers or list(Layer))]
        marks = ",".join("?" * len(names))
        last = 0
        while True:
            with self._mutex:
                rows = self.db.conn.execute(
                    f"SELECT {record_columns(with_vector=with_vector)} FROM records "
                    f"WHERE label > ? AND layer IN ({marks}) "
                    "ORDER BY label LIMIT ?",
                    [last, *names, batch],
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for row in rows:
                yield row_to_record(row, with_vector=with_vector)

    def expired_ids(self, now: float) -> list[tuple[str, str, bool]]:
        """``(id, layer, pinned)`` of records whose TTL passed."""
        with self._mutex:
            return [
                (r[0], r[1], bool(r[2]))
                for r in self.db.conn.execute(
                    "SELECT id, layer, pinned FROM records WHERE expires_at <= ? ORDER BY label",
                    (now,),
                )
            ]

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
        """Exact top-k (approximate only inside large HNSW layers) among matching live records."""
        if where:
            return self.search_many(
                query.reshape(1, -1), k, layers=layers, where=where, now=now, ef_search=ef_search
            )[0]
        with self._mutex:  # the hot path: one query, no filter
            self.refresh()
            any_expired = self._any_expired(now)
            parts = []
            for layer in layers:
                index = self.layers.get(layer)  # Layer is a StrEnum: it hashes as its value
                if index is None or index.n == index.dead:
                    continue
                if index.dim != len(query):
                    raise _wrong_dim(len(query), index.dim)
                mask = self._unexpired_mask(layer, index, now) if any_expired else None
                if mask is None:
                    parts.append(index.search_one(query, k, ef_search=ef_search))
                else:
                    labels, scores = index.search_many(
                        query.reshape(1, -1), k, mask=mask, ef_search=ef_search
                    )[0]
                    parts.append((labels.tolist(), scores.tolist()))
            if len(parts) == 1 and all(map(operator.gt, parts[0][1], parts[0][1][1:])):
                top = parts[0]  # strictly decreasing scores: faiss's order is already final
            else:
                top = _top([item for part in parts for item in zip(*part, strict=True)], k)
            return self._hits([top])[0]

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
        sql, params = compile_where(where, SQLITE)
        with self._mutex:
            self.refresh()
            any_expired = self._any_expired(now)
            found: list[list[tuple[int, float]]] = [[] for _ in range(len(queries))]
            keys = filter_keys(where or {})
            reads_access = not ACCESS_FIELDS.isdisjoint(keys)
            in_memory = bool(where) and not reads_access
            if in_memory:
                # The first filter on a set of keys runs as SQL (~50 ms at 100k); building the
                # in-memory columns costs ~4x that and only pays off for the filters after it,
                # so a one-shot `magray memory search --where` never pays for it.
                in_memory = keys in self._filtered_keys or all(
                    self.meta.get(layer.value) is not None
                    or keys - RECORD_FIELDS <= self._saved_keys(layer.value)
                    for layer in layers
                    if layer.value in self.layers and self.layers[layer.value].live
                )
                self._filtered_keys.add(keys)
            if reads_access:
                self._flush_touches()  # the filter reads access counts
            for layer in layers:
                index = self.layers.get(layer.value)
                if index is None or index.live == 0:
                    continue
                if index.dim != queries.shape[1]:
                    raise _wrong_dim(queries.shape[1], index.dim)
                mask: np.ndarray | None = None
                if in_memory:
                    meta = self._layer_meta(layer.value)
                    mask = meta.mask(where or {})
                    if any_expired:
                        mask &= ~meta.expired(now)
                elif where:
                    allow = self._labels(
                        "SELECT label FROM records NOT INDEXED WHERE layer = ? AND "
                        f"(expires_at IS NULL OR expires_at > ?) AND ({sql})",
                        [layer.value, now, *params],
                    )
                    mask = index.mask_of(allow)
                elif any_expired:
                    mask = self._unexpired_mask(layer.value, index, now)
                results = index.search_many(
                    queries,
                    k,
                    mask=mask,
                    exact_limit=self.config.exact_filter_limit,
                    ef_search=ef_search,
                )
                for i, (labels, scores) in enumerate(results):
                    found[i].extend(zip(labels.tolist(), scores.tolist(), strict=True))
            return self._hits([_top(items, k) for items in found])

    def _any_expired(self, now: float) -> bool:
        """Whether some record's TTL has passed by ``now`` (its time is cached per change)."""
        if self._next_expiry is ...:
            row = self.db.conn.execute(  # the partial index, not a table scan
                "SELECT min(expires_at) FROM records WHERE expires_at IS NOT NULL"
            ).fetchone()
            self._next_expiry = row[0]
        next_expiry = self._next_expiry
        return isinstance(next_expiry, float | int) and next_expiry <= now

    def _unexpired_mask(self, layer: str, index: LayerIndex, now: float) -> np.ndarray | None:
        """The live positions of ``layer`` minus its expired records (None: none expired)."""
        deny = self._labels(
            "SELECT label FROM records WHERE layer = ? AND expires_at <= ?", [layer, now]
        )
        if not len(deny):
            return None
        mask = index.alive_mask()
        mask[index.positions(deny)] = False
        return mask

    def _hits(self, tops: list[tuple[list[int], list[float]]]) -> list[list[Hit]]:
        """Hits for ``(labels, scores)`` pairs (a label deleted meanwhile is dropped)."""
        labels = [label for top in tops for label in top[0]]
        rows, missing = self._hit_cache.lookup(labels)
        if missing:
            absent = [lb for lb, row in zip(labels, rows, strict=True) if row is None]
            fetched = self.db.hit_rows(absent)
            self._hit_cache.put_many(fetched.items())
            rows = [
                row if row is not None else fetched.get(lb)
                for lb, row in zip(labels, rows, strict=True)
            ]
        out: list[list[Hit]] = []
        at = 0
        loads = loads_metadata
        for _, scores in tops:
            hits = []
            for score, row in zip(scores, rows[at : at + len(scores)], strict=True):
                if row is not None:  # None: deleted meanwhile
                    record_id, text, metadata, layer = row
                    hits.append(Hit(record_id, score, text, loads(metadata), layer))
            out.append(hits)
            at += len(scores)
        return out

    def warm_up(self, *, batch: int = 5000) -> int:
        """Read record rows into the hit-row cache, newest first, until the cache budget is
        full or every row is in; returns how many were added. Each batch takes the lock on
        its own, so searches interleave with a warm-up running in another thread."""
        added, below = 0, self.db.max_label() + 1
        while True:
            with self._mutex:
                if self._closed:
                    return added
                rows = self.db.hit_rows_below(below, batch)
                if not rows:
                    return added
                count, full = self._hit_cache.fill(rows)
            added += count
            below = rows[-1][0]
            if full:
                return added

    def _labels(self, sql: str, params: list[Any]) -> np.ndarray:
        cursor = self.db.conn.execute(sql, params)
        return np.fromiter((row[0] for row in cursor), dtype=np.int64)

    def history(self, record_id: str) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            "SELECT seq, event, at, layer, details FROM history WHERE record_id = ? ORDER BY seq",
            (record_id,),
        ).fetchall()
        return [
            {"seq": s, "event": e, "at": at, "layer": layer, "details": json.loads(d)}
            for s, e, at, layer, d in rows
        ]

    # ------------------------------------------------------------ embedding cache
    def cached_vectors(self, model_id: str, keys: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for start in range(0, len(keys), 900):
            chunk = list(keys[start : start + 900])
            marks = ",".join("?" * len(chunk))
            for key, blob in self.db.conn.execute(
                f"SELECT text_hash, vector FROM embed_cache WHERE model_id = ? "
                f"AND text_hash IN ({marks})",
                [model_id, *chunk],
            ):
                out[key] = blob
        return out

    def cache_vectors(self, model_id: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        if self.read_only:
            return  # a cache: nothing is lost by not persisting it
        with self._mutex, self.db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embed_cache (model_id, text_hash, vector) VALUES (?, ?, ?)",
                [(model_id, key, np.asarray(v, np.float32).tobytes()) for key, v in items],
            )

    # ------------------------------------------------------------ operations
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
        self._writable("be re-embedded")
        with self._mutex:
            self._flush_touches()
        conn = self.db.conn
        total = int(
            conn.execute(
                "SELECT count(*) FROM records WHERE model_id != ? OR dim != ?", (model_id, dim)
            ).fetchone()[0]
        )
        done = 0
        if progress:
            progress(0, total)
        while True:
            with self._mutex:
                rows = conn.execute(
                    "SELECT label, text FROM records WHERE model_id != ? OR dim != ? "
                    "ORDER BY label LIMIT ?",
                    (model_id, dim, batch_size),
                ).fetchall()
            if not rows:
                break
            vectors = embed([text for _, text in rows])
            with self._mutex, self.db.write() as wconn:
                wconn.executemany(
                    "UPDATE vectors SET vector = ? WHERE label = ?",
                    [
                        (np.asarray(v, np.float32).tobytes(), label)
                        for (label, _), v in zip(rows, vectors, strict=True)
                    ],
                )
                wconn.executemany(
                    "UPDATE records SET model_id = ?, dim = ? WHERE label = ?",
                    [(model_id, dim, label) for label, _ in rows],
                )
            done += len(rows)
            if progress:
                progress(done, total)
        with self._mutex:
            with self.db.write() as wconn:
                RecordDB.set_meta(wconn, "model_id", model_id)
                RecordDB.set_meta(wconn, "dim", str(dim))
                RecordDB.set_meta(wconn, "index_epoch", str(self.db.epoch() + 1))
                wconn.execute(
                    "INSERT INTO history (record_id, event, at, layer, details) "
                    "VALUES ('*', 'reindex', ?, NULL, ?)",
                    (now, json.dumps({"model_id": model_id, "dim": dim, "records": done})),
                )
            version = self.db.data_version()  # before the rebuild reads (see _after_write)
            self.rebuild()
            self.save_index(force=True)
            self._data_version = version
            self.status = {"index": "rebuilt", "reason": "reindex"}
        return done

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


def _wrong_dim(got: int, dim: int) -> InvalidInputError:
    return InvalidInputError(
        f"the query vector has dim {got}, the store's vectors have dim {dim}",
        hint=f"search with a vector of dim {dim} (the store was opened with another dim, "
        "or the vector comes from another model)",
        details={"query_dim": got, "store_dim": dim},
    )


def _top(items: list[tuple[int, float]], k: int) -> tuple[list[int], list[float]]:
    """The best ``k`` of ``(label, score)`` pairs as ``(labels, scores)``: score descending,
    then label (ties are broken the same way whichever layers or index kinds found them)."""
    items.sort(key=lambda item: (-item[1], item[0]))
    best = items[:k]
    return [label for label, _ in best], [score for _, score in best]
