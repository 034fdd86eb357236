"""Writes of the local backend: what SQLite + faiss add to the shared record writes.

``insert``, ``update``, ``move`` and ``delete`` are written once in
:class:`~magray.memory._sqlrecords.SqlRecords`; here is how the local backend runs them:
each is one SQLite transaction that also appends to ``changes`` (and to ``history``); any
change gives a record a new label (its row is replaced), so the index and its filter
columns only ever append. After the commit the index is synced.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from magray.memory._backend import NewRecord
from magray.memory._cache import HitRow
from magray.memory._queries import Queries
from magray.memory._sql import INSERT_COLUMNS, SQLITE, add_details, new_values
from magray.memory._sqlite import RecordDB

__all__ = ["Writes"]

T = TypeVar("T")

_INSERT = f"INSERT INTO records ({INSERT_COLUMNS}) VALUES ({SQLITE.marks(14)})"


class Writes(Queries):
    """The local primitives of the shared writes: one SQLite transaction each, then a sync."""

    _new_hits: list[tuple[int, HitRow]]

    def _after_write(self) -> None:
        self._next_expiry = ...
        # data_version first: a commit of another process that lands after this read is
        # seen by the next refresh (read after the sync, it would be absorbed unseen).
        version = self.db.data_version()
        self.sync()
        self._data_version = version

    def _writing(self, action: str, fn: Callable[[Any], T], *, lock: bool = False) -> T:
        self._writable(action)
        with self._mutex:
            self._flush_touches()
            self._new_hits = []
            with self.db.write() as conn:
                result = fn(conn)
            # Committed: recently added records are the likeliest hits, so their rows are
            # cached now and a search over them needs no SQLite read.
            self._hit_cache.put_many(self._new_hits)
            self._after_write()
            return result

    def _insert_new(self, conn: Any, new: list[tuple[str, NewRecord]], now: float) -> None:
        model_id = self._model_id()
        for record_id, r in new:
            blob = np.asarray(r.vector, np.float32).tobytes()
            label = self._insert_row(conn, new_values(record_id, r, now, model_id), blob)
            self._log(conn, record_id, "add", now, layer=r.layer.value, details=add_details(r))
            self._new_hits.append((label, (record_id, r.text, r.metadata_json, r.layer)))

    @staticmethod
    def _insert_row(conn: sqlite3.Connection, values: Sequence[Any], blob: bytes) -> int:
        """Insert a record row (``values``: the columns of ``_INSERT`` but ``dim``) and its
        vector; returns the new label."""
        cursor = conn.execute(_INSERT, (*values, len(blob) // 4))
        label = int(cursor.lastrowid or 0)
        conn.execute("INSERT INTO vectors (label, vector) VALUES (?, ?)", (label, blob))
        RecordDB.change(conn, "add", label, values[1])
        return label

    def _rewrite(self, conn: Any, row: tuple[Any, ...], sets: dict[str, Any], now: float) -> None:
        """Replace the record's row (new label): any change re-adds it to the index."""
        label, record_id, old_layer = row[0], row[1], row[2]
        vector = sets.get("vector")
        if vector is None:
            blob = conn.execute("SELECT vector FROM vectors WHERE label = ?", (label,)).fetchone()[
                0
            ]
        else:
            blob = np.asarray(vector, np.float32).tobytes()
        conn.execute("DELETE FROM records WHERE label = ?", (label,))
        RecordDB.change(conn, "del", label, old_layer)
        self._insert_row(
            conn,
            (
                record_id,
                sets.get("layer", old_layer),
                sets.get("text", row[3]),
                sets.get("metadata_json", row[4]),
                sets.get("content_hash", row[5]),
                row[6],  # created_at
                now,
                row[8],  # last_access
                row[9],  # access_count
                sets.get("importance", row[10]),
                sets.get("expires_at", row[11]),
                int(sets.get("pinned", bool(row[12]))),
                row[13] if vector is None else self._model_id(),
            ),
            blob,
        )

    def _remove(self, conn: Any, ids: Sequence[str]) -> dict[str, str]:
        gone: dict[str, str] = {}
        for record_id in ids:
            row = conn.execute(
                "SELECT label, layer FROM records WHERE id = ?", (record_id,)
            ).fetchone()
            if row is None:
                continue
            conn.execute("DELETE FROM records WHERE label = ?", (row[0],))
            RecordDB.change(conn, "del", row[0], row[1])
            gone[record_id] = row[1]
        return gone
