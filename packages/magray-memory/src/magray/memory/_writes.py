"""Writes of the local backend.

Each write is one SQLite transaction that also appends to ``changes`` and to
``history``; any change gives a record a new label, so the index and its filter
columns only ever append. After the commit the index is synced.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from types import EllipsisType
from typing import Any

import numpy as np

from magray.memory._backend import NewRecord
from magray.memory._cache import HitRow
from magray.memory._queries import Queries
from magray.memory._sql import update_details
from magray.memory._sqlite import RecordDB, record_columns
from magray.memory._types import Layer, Record
from magray.memory.errors import DuplicateIdError, RecordNotFoundError

__all__ = ["Writes"]


class Writes(Queries):
    """Inserts, updates, moves and deletes: one SQLite transaction each, then a sync."""

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
