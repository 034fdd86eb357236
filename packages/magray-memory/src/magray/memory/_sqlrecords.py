"""The record writes both SQL backends share, written once over a :class:`Dialect`.

:class:`SqlRecords` implements the :class:`~magray.memory._backend.StorageBackend` calls
whose logic does not depend on the engine: ``insert`` (explicit-id check, per-layer
dedupe by content hash), ``update``/``move``/``delete`` (row lookup, what changed, the
history event) and the resumable re-embedding loop; its base
:class:`~magray.memory._sqlreads.SqlReads` the reads. A backend supplies its dialect, its
table names and a few primitives, which is where SQLite + faiss and PostgreSQL + pgvector
really differ:

- ``_reading(fn, flush=...)`` / ``_writing(action, fn, lock=...)`` / ``_write_cache(fn)``:
  run ``fn(conn)`` inside the backend's locking, retries and transaction;
- ``_insert_new(conn, new, now)``: store new records (the local backend also appends to
  its change log; postgres loads a large batch in bulk);
- ``_rewrite(conn, row, sets, now)``: apply an update (``sets`` from
  :func:`~magray.memory._sql.update_changes`; a new label either way);
- ``_remove(conn, ids)``: delete records, ``{id: layer}`` of those that existed;
- ``_reembed_begin()``, ``_store_vectors(...)``, ``_reembed_end(...)``: a re-embedding.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from types import EllipsisType
from typing import TYPE_CHECKING, Any, TypeVar

from magray.memory._sql import (
    HISTORY_COLUMNS,
    history_row,
    update_changes,
)
from magray.memory._sqlreads import SqlReads
from magray.memory._types import Layer, Record
from magray.memory.errors import DuplicateIdError, RecordNotFoundError

if TYPE_CHECKING:
    import numpy as np

    from magray.memory._backend import NewRecord

__all__ = ["SqlRecords"]

T = TypeVar("T")


def _not_found(record_id: str) -> RecordNotFoundError:
    return RecordNotFoundError(
        f"no memory record with id {record_id!r}",
        hint="`magray memory list` shows ids",
        details={"id": record_id},
    )


class SqlRecords(SqlReads):
    """Record writes and re-embedding over SQL, shared by the local and the postgres
    backend (the reads are :class:`~magray.memory._sqlreads.SqlReads`')."""

    # ------------------------------------------------------------ what a backend supplies
    def _writing(self, action: str, fn: Callable[[Any], T], *, lock: bool = False) -> T:
        """``fn(conn)`` in one write transaction of records (``lock``: serialised with
        every other such write of the store)."""
        raise NotImplementedError

    def _insert_new(self, conn: Any, new: list[tuple[str, NewRecord]], now: float) -> None:
        """Store ``(id, record)`` pairs and their ``add`` history events."""
        raise NotImplementedError

    def _rewrite(self, conn: Any, row: tuple[Any, ...], sets: dict[str, Any], now: float) -> None:
        """Apply the new values ``sets`` (see :func:`~magray.memory._sql.update_changes`) to
        the record of ``row``."""
        raise NotImplementedError

    def _remove(self, conn: Any, ids: Sequence[str]) -> dict[str, str]:
        """Delete records by id; ``{id: layer}`` of those that existed."""
        raise NotImplementedError

    def _reembed_begin(self) -> None:
        """Prepare for vectors of another model (check writability, flush counts)."""
        raise NotImplementedError

    def _store_vectors(
        self, labels: list[int], vectors: np.ndarray, *, model_id: str, dim: int
    ) -> None:
        """Replace the vectors of the records ``labels`` (one transaction)."""
        raise NotImplementedError

    def _reembed_end(self, *, model_id: str, dim: int, now: float, done: int) -> None:
        """Pin the store to ``model_id``/``dim``, log ``reindex``, rebuild the index."""
        raise NotImplementedError

    # ------------------------------------------------------------ shared pieces
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
        """Append one event to the history."""
        conn.execute(self._history_insert(), history_row(record_id, event, at, layer, details))

    def _history_insert(self) -> str:
        return (
            f"INSERT INTO {self._table('history')} ({HISTORY_COLUMNS}) "
            f"VALUES ({self.dialect.marks(5)})"
        )

    def _locked_row(self, conn: Any, record_id: str) -> tuple[Any, ...] | None:
        """The record columns of ``record_id`` (locked for this transaction), or None."""
        row = conn.execute(
            f"SELECT {self._record_columns()} FROM {self._table('records')} "
            f"WHERE id = {self.dialect.mark}{self.dialect.for_update}",
            (record_id,),
        ).fetchone()
        return None if row is None else tuple(row)

    def _present_ids(self, conn: Any, ids: Sequence[str]) -> list[str]:
        found: list[str] = []
        for clause, args in self.dialect.in_lists("id", ids):
            found += [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM {self._table('records')} WHERE {clause}", args
                )
            ]
        return found

    # ------------------------------------------------------------ writes
    def insert(self, rows: Sequence[NewRecord], *, dedupe: bool, now: float) -> list[str]:
        """Insert records in one transaction; returns ids (existing ids for deduped text)."""
        m = self.dialect.mark
        same_text = (
            f"SELECT id FROM {self._table('records')} WHERE layer = {m} AND content_hash = {m} "
            "ORDER BY label LIMIT 1"
        )

        def write(conn: Any) -> list[str]:
            taken = self._present_ids(conn, [r.id for r in rows if r.id is not None])
            if taken:
                shown = ", ".join(sorted(taken)[:5])
                raise DuplicateIdError(
                    f"ids already in the store: {shown}",
                    hint="use update() (magray memory update) to change a record, "
                    "or delete it first; nothing was added",
                    details={"ids": sorted(taken)},
                )
            ids: list[str] = []
            new: list[tuple[str, NewRecord]] = []
            seen: dict[tuple[str, str], str] = {}
            given: set[str] = set()
            for r in rows:
                key = (r.layer.value, r.content_hash)
                if dedupe:
                    existing = seen.get(key)
                    if existing is None:
                        row = conn.execute(same_text, key).fetchone()
                        existing = None if row is None else row[0]
                    if existing is not None:
                        ids.append(existing)
                        seen[key] = existing
                        continue
                if r.id is not None:
                    if r.id in given:
                        raise DuplicateIdError(
                            f"id {r.id!r} appears twice in one add",
                            hint="give each record its own id; nothing was added",
                        )
                    given.add(r.id)
                record_id = r.id if r.id is not None else uuid.uuid4().hex
                new.append((record_id, r))
                ids.append(record_id)
                seen[key] = record_id
            if new:
                self._insert_new(conn, new, now)
            return ids

        return self._writing("add records", write, lock=True)

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
        """Change fields of one record (its row locked); a new text/vector or layer
        re-indexes it. Returns the record as the same transaction stored it."""

        def write(conn: Any) -> Record:
            row = self._locked_row(conn, record_id)
            if row is None:
                raise _not_found(record_id)
            changed, sets = update_changes(
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
                self._rewrite(conn, row, sets, now)
                self._log(
                    conn, record_id, "update", now, layer=sets.get("layer", row[2]), details=changed
                )
                row = self._locked_row(conn, record_id)
                assert row is not None
            return self._record(row)

        return self._writing("update records", write)

    def move(
        self,
        moves: Sequence[tuple[str, Layer, float | None, str, dict[str, Any]]],
        *,
        now: float,
    ) -> int:
        """Move records between layers: ``(id, layer, expires_at, event, details)``."""
        if not moves:
            return 0

        def write(conn: Any) -> int:
            done = 0
            for record_id, layer, expires_at, event, details in moves:
                row = self._locked_row(conn, record_id)
                if row is None:
                    continue  # deleted by someone else meanwhile
                self._rewrite(conn, row, {"layer": layer.value, "expires_at": expires_at}, now)
                self._log(conn, record_id, event, now, layer=layer.value, details=details)
                done += 1
            return done

        return self._writing("move records", write)

    def delete(
        self,
        ids: Sequence[str],
        *,
        now: float,
        event: str = "delete",
        details: dict[str, dict[str, Any]] | None = None,
    ) -> list[str]:
        """Delete records; returns the ids that existed."""

        def write(conn: Any) -> list[str]:
            gone = self._remove(conn, list(dict.fromkeys(ids)))
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

        return self._writing("delete records", write)

    # ------------------------------------------------------------ re-embedding
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
        """Re-embed every record not yet on ``model_id``/``dim``; resumable after a crash
        (each batch is committed with its new model id)."""
        self._reembed_begin()
        m = self.dialect.mark
        stale = f"FROM {self._table('records')} WHERE model_id != {m} OR dim != {m}"
        total = int(
            self._reading(
                lambda conn: conn.execute(f"SELECT count(*) {stale}", (model_id, dim)).fetchone()[
                    0
                ],
                flush=False,
            )
        )
        done = 0
        if progress:
            progress(0, total)
        batch_query = f"SELECT label, text {stale} ORDER BY label LIMIT {m}"
        while True:
            rows = self._reading(
                lambda conn: conn.execute(batch_query, (model_id, dim, batch_size)).fetchall(),
                flush=False,
            )
            if not rows:
                break
            vectors = embed([text for _, text in rows])
            self._store_vectors([label for label, _ in rows], vectors, model_id=model_id, dim=dim)
            done += len(rows)
            if progress:
                progress(done, total)
        self._reembed_end(model_id=model_id, dim=dim, now=now, done=done)
        return done
