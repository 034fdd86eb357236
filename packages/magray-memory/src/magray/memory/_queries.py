"""Queries of the local backend: get, list, iteration, search and the embedding cache.

A search reads the in-memory index after :meth:`~magray.memory._upkeep.IndexUpkeep.refresh`
(so it sees every commit of every process) and turns labels into hits through the
hit-row cache. Hits are counted (``touch``) in an :class:`~magray.memory._access.AccessLog`
written in the background; any read of the counts writes the pending ones first.
"""

from __future__ import annotations

import operator
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from magray.common.errors import InvalidInputError, StorageError
from magray.common.log import get_logger
from magray.memory._access import fold
from magray.memory._columns import RECORD_FIELDS, filter_keys
from magray.memory._filters import ACCESS_FIELDS, compile_where
from magray.memory._layerindex import LayerIndex
from magray.memory._sql import SQLITE
from magray.memory._sqlite import loads_metadata, record_columns
from magray.memory._types import Hit, Layer
from magray.memory._upkeep import IndexUpkeep

__all__ = ["Queries"]

log = get_logger("magray.memory")

T = TypeVar("T")

# Access counts are statistics, not data: written without fsync (WAL + NORMAL still
# survives a process crash; a power cut may lose the last few counts).
_UPDATE_ACCESS = (
    "UPDATE records SET access_count = access_count + ?, "
    "last_access = max(last_access, ?) WHERE id = ?"
)


class Queries(IndexUpkeep):
    """Reads and search over SQLite and the index; search hits' access counts."""

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

    def flush(self) -> None:
        """Write buffered access counts now."""
        with self._mutex:
            self._flush_touches()

    # ------------------------------------------------------------ reads (see SqlRecords)
    def _table(self, name: str) -> str:
        return name

    def _record_columns(self, *, with_vector: bool = False) -> str:
        return record_columns(with_vector=with_vector)

    def _reading(self, fn: Callable[[Any], T], *, flush: bool) -> T:
        with self._mutex:
            if flush:
                self._flush_touches()
            return fn(self.db.conn)

    def _write_cache(self, fn: Callable[[Any], None]) -> None:
        if self.read_only:
            return  # a cache: nothing is lost by not persisting it
        with self._mutex, self.db.write() as conn:
            fn(conn)

    # ------------------------------------------------------------ search
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
