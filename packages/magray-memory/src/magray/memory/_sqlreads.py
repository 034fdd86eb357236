"""The record reads both SQL backends share, written once over a :class:`Dialect`.

:class:`SqlReads` implements ``get``, ``select``, ``iter_records``, ``expired_ids``,
``history`` and the persisted embedding cache; a backend supplies its dialect, its table
names, its record columns and how a read runs (``_reading``: locks, retries, whether
buffered access counts are written first). The writes are in ``_sqlrecords.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from magray.memory._sql import HISTORY_COLUMNS, Dialect, row_to_record, select_query
from magray.memory._types import Layer, Record

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SqlReads"]

T = TypeVar("T")


class SqlReads:
    """Record reads over SQL, shared by the local and the postgres backend."""

    dialect: Dialect

    # ------------------------------------------------------------ what a backend supplies
    def _table(self, name: str) -> str:
        """The qualified name of table ``name`` (``records``, ``history``, ``embed_cache``)."""
        raise NotImplementedError

    def _record_columns(self, *, with_vector: bool = False) -> str:
        """The record columns :func:`~magray.memory._sql.row_to_record` reads."""
        raise NotImplementedError

    def _reading(self, fn: Callable[[Any], T], *, flush: bool) -> T:
        """``fn(conn)`` for a read; ``flush``: write buffered access counts first."""
        raise NotImplementedError

    def _write_cache(self, fn: Callable[[Any], None]) -> None:
        """``fn(conn)`` in one transaction of the embedding cache (skipped where the store
        cannot be written: a cache loses nothing by not being persisted)."""
        raise NotImplementedError

    def _record(self, row: Sequence[Any], *, with_vector: bool = False) -> Record:
        return row_to_record(row, with_vector=with_vector, dialect=self.dialect)

    # ------------------------------------------------------------ reads
    def get(self, ids: Sequence[str], *, with_vector: bool = False) -> list[Record]:
        """The records of ``ids`` that exist, in the order asked."""
        wanted = list(ids)
        columns = self._record_columns(with_vector=with_vector)
        select = f"SELECT {columns} FROM {self._table('records')}"

        def read(conn: Any) -> list[Record]:
            found: dict[str, Record] = {}
            for clause, args in self.dialect.in_lists("id", wanted):
                for row in conn.execute(f"{select} WHERE {clause}", args):
                    found[row[1]] = self._record(row, with_vector=with_vector)
            return [found[i] for i in wanted if i in found]

        return self._reading(read, flush=True)

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
            self.dialect,
            table=self._table("records"),
            columns=self._record_columns(with_vector=with_vector),
            layer=layer,
            where=where,
            limit=limit,
            offset=offset,
            order=order,
            descending=descending,
        )
        return self._reading(
            lambda conn: [
                self._record(row, with_vector=with_vector) for row in conn.execute(query, args)
            ],
            flush=True,
        )

    def iter_records(
        self,
        *,
        layers: Sequence[Layer] | None = None,
        with_vector: bool = False,
        batch: int = 1000,
    ) -> Iterator[Record]:
        """Every record in label order, read in batches (one read each; access counts
        written before the first)."""
        clause, names = self.dialect.in_list("layer", [x.value for x in (layers or list(Layer))])
        m = self.dialect.mark
        query = (
            f"SELECT {self._record_columns(with_vector=with_vector)} FROM {self._table('records')} "
            f"WHERE label > {m} AND {clause} ORDER BY label LIMIT {m}"
        )
        last = -1
        while True:
            args = [last, *names, batch]

            def read(conn: Any, args: list[Any] = args) -> list[Any]:
                return list(conn.execute(query, args).fetchall())

            rows = self._reading(read, flush=last == -1)
            if not rows:
                return
            last = rows[-1][0]
            for row in rows:
                yield self._record(row, with_vector=with_vector)

    def expired_ids(self, now: float) -> list[tuple[str, str, bool]]:
        """``(id, layer, pinned)`` of records whose TTL passed."""
        query = (
            f"SELECT id, layer, pinned FROM {self._table('records')} "
            f"WHERE expires_at <= {self.dialect.mark} ORDER BY label"
        )
        return self._reading(
            lambda conn: [(r[0], r[1], bool(r[2])) for r in conn.execute(query, (now,))],
            flush=False,
        )

    def history(self, record_id: str) -> list[dict[str, Any]]:
        """Every event of a record, oldest first (also after it was deleted)."""
        query = (
            f"SELECT seq, {HISTORY_COLUMNS} FROM {self._table('history')} "
            f"WHERE record_id = {self.dialect.mark} ORDER BY seq"
        )
        rows = self._reading(lambda conn: conn.execute(query, (record_id,)).fetchall(), flush=False)
        return [
            {"seq": s, "event": e, "at": at, "layer": layer, "details": json.loads(d)}
            for s, _, e, at, layer, d in rows
        ]

    # ------------------------------------------------------------ embedding cache
    def cached_vectors(self, model_id: str, keys: Sequence[str]) -> dict[str, bytes]:
        """``{text hash: float32 bytes}`` of the persisted embeddings of ``keys``."""
        select = (
            f"SELECT text_hash, vector FROM {self._table('embed_cache')} "
            f"WHERE model_id = {self.dialect.mark} AND "
        )

        def read(conn: Any) -> dict[str, bytes]:
            out: dict[str, bytes] = {}
            for clause, args in self.dialect.in_lists("text_hash", keys):
                out.update(
                    (key, bytes(blob))
                    for key, blob in conn.execute(select + clause, [model_id, *args])
                )
            return out

        return self._reading(read, flush=False)

    def cache_vectors(self, model_id: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """Persist embeddings of texts (by text hash) for ``model_id``."""
        import numpy as np

        upsert = (
            f"INSERT INTO {self._table('embed_cache')} (model_id, text_hash, vector) "
            f"VALUES ({self.dialect.marks(3)}) ON CONFLICT (model_id, text_hash) "
            "DO UPDATE SET vector = excluded.vector"
        )
        rows = [(model_id, key, np.asarray(v, np.float32).tobytes()) for key, v in items]
        self._write_cache(lambda conn: self.dialect.executemany(conn, upsert, rows))
