"""Reads of :class:`~magray.memory.MemoryStore`: get, list, count, search (with rerank),
explain and history."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from magray.common.errors import (
    DependencyMissingError,
    InvalidInputError,
    NotFoundError,
)
from magray.common.log import get_logger
from magray.memory._plugins import load_reranker
from magray.memory._scoring import Explanation
from magray.memory._sqlite import translate
from magray.memory._storecore import (
    ALL_LAYERS,
    MAX_K,
    check_nested,
    guarded,
)
from magray.memory._storewrites import StoreWrites
from magray.memory._types import Hit, Layer, Record
from magray.memory.errors import RecordNotFoundError

if TYPE_CHECKING:
    pass

__all__ = ["StoreReads"]

log = get_logger("magray.memory")


class StoreReads(StoreWrites):
    """Reads and similarity search, validated; search hits are counted."""

    @overload
    def get(self, ids: str, *, with_vector: bool = False) -> Record: ...  # type: ignore[overload-overlap]
    @overload
    def get(self, ids: Sequence[str], *, with_vector: bool = False) -> list[Record]: ...
    @guarded
    def get(self, ids: str | Sequence[str], *, with_vector: bool = False) -> Record | list[Record]:
        """One record by id (raises if missing), or the found records of a list of ids."""
        if isinstance(ids, str):
            found = self._backend.get([ids], with_vector=with_vector)
            if not found:
                raise RecordNotFoundError(
                    f"no memory record with id {ids!r}", hint="`magray memory list` shows ids"
                )
            return found[0]
        return self._backend.get(list(ids), with_vector=with_vector)

    @guarded
    def list_records(
        self,
        *,
        layer: Layer | str | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = 100,
        offset: int = 0,
        order: str = "created_at",
        descending: bool = True,
    ) -> list[Record]:
        """Records in a layer / matching a filter, newest first (no similarity search)."""
        if where:
            check_nested(where, "the filter")
        return self._backend.select(
            layer=Layer.parse(layer) if layer is not None else None,
            where=dict(where) if where else None,
            limit=limit,
            offset=offset,
            order=order,
            descending=descending,
        )

    @guarded
    def count(self, layer: Layer | str | None = None) -> int:
        counts = self._backend.counts()
        if layer is None:
            return sum(counts.values())
        return counts[Layer.parse(layer).value]

    def search(
        self,
        query: str | Sequence[float] | np.ndarray,
        k: int = 10,
        *,
        layers: Sequence[Layer | str] | Layer | str | None = None,
        where: Mapping[str, Any] | None = None,
        rerank: bool = False,
        ef_search: int | None = None,
    ) -> list[Hit]:
        """The ``k`` most similar memories, best first.

        Args:
            query: A text (embedded with the store's embedder) or a vector.
            k: How many hits.
            layers: Layers to search (default: all three).
            where: Metadata/record filter (see :mod:`magray.memory` docs); the
                results are exactly the top-k among matching records (approximate
                only within HNSW layers when more than ``exact_filter_limit`` match).
            rerank: Rerank ``k × rerank_candidates`` candidates with the installed
                cross-encoder (a warning and plain results when none is installed).
            ef_search: HNSW search breadth for this query (default: settings).
        """
        # No decorator on the hot path: a try block costs nothing until it raises.
        try:
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
                raise InvalidInputError(f"k must be an integer from 1 to {MAX_K}, not {k!r}")
            chosen = self._layers(layers)
            if where:
                check_nested(where, "the filter")
            text_query = query if isinstance(query, str) else None
            if text_query is not None:
                if not text_query.strip():
                    raise InvalidInputError("the search query is empty")
                check_nested(text_query, "the search query")
                self._check_model()
                qvec = self._embed([text_query])[0]
            else:
                qvec = self._query_vector(query)
            fetch = min(MAX_K, k * self.settings.rerank_candidates) if rerank else k
            now = self.clock()
            start = time.perf_counter()
            hits = self._backend.search(
                qvec,
                fetch,
                layers=chosen,
                where=dict(where) if where else None,
                now=now,
                ef_search=ef_search,
            )
            self._search_latency.observe((time.perf_counter() - start) * 1000.0)
            self._search_calls.inc()
            if rerank:
                hits = self._rerank(text_query, hits, k)[:k]
            self._backend.touch([h.id for h in hits], now)
            return hits
        except (sqlite3.Error, OSError) as exc:
            raise translate(exc, self.path, f"memory store {self.location}: search") from exc

    @guarded
    def search_many(
        self,
        queries: Sequence[str] | np.ndarray | Sequence[Sequence[float]],
        k: int = 10,
        *,
        layers: Sequence[Layer | str] | Layer | str | None = None,
        where: Mapping[str, Any] | None = None,
        ef_search: int | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries at once (one embedding batch, one faiss call per
        layer, all cores); returns one hit list per query, in order. No reranking."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InvalidInputError(f"k must be an integer from 1 to {MAX_K}, not {k!r}")
        if isinstance(queries, str):
            raise InvalidInputError("search_many takes a list of queries; use search() for one")
        chosen = self._layers(layers)
        if where:
            check_nested(where, "the filter")
        items = list(queries)
        if not items:
            return []
        if all(isinstance(q, str) for q in items):
            self._check_model()
            qvecs = self._embed(self._texts(items))
        elif any(isinstance(q, str) for q in items):
            raise InvalidInputError("search_many takes all texts or all vectors, not a mix")
        else:
            qvecs = self._vectors(np.asarray(items, dtype=np.float32), len(items))
        now = self.clock()
        found = self._backend.search_many(
            qvecs,
            k,
            layers=chosen,
            where=dict(where) if where else None,
            now=now,
            ef_search=ef_search,
        )
        self._search_calls.inc(len(items))
        self._backend.touch([h.id for hits in found for h in hits], now)
        return found

    def _layers(self, layers: Sequence[Layer | str] | Layer | str | None) -> list[Layer]:
        if layers is None:
            return ALL_LAYERS
        if isinstance(layers, str):
            return [Layer.parse(layers)]
        return list(dict.fromkeys(Layer.parse(x) for x in layers))

    def _rerank(self, query: str | None, hits: list[Hit], k: int) -> list[Hit]:
        if not hits:
            return hits
        if query is None:
            log.warning("rerank skipped: the query is a vector, a reranker needs its text")
            return hits
        try:
            if self._reranker is None:
                self._reranker = load_reranker("default")
            scores = np.asarray(
                self._reranker.rerank(query, [h.text for h in hits]), dtype=np.float64
            )
        except (DependencyMissingError, NotFoundError) as exc:
            log.warning(
                "rerank skipped: no reranker available; returning similarity order",
                error=exc.message,
                hint=exc.hint,
            )
            return hits
        if scores.shape != (len(hits),):
            from magray.common.errors import ModelError

            raise ModelError(f"reranker returned {scores.shape} scores for {len(hits)} texts")
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
        return [
            Hit(hits[i].id, float(scores[i]), hits[i].text, hits[i].metadata, hits[i].layer)
            for i in order[:k]
        ]

    @guarded
    def explain(self, id: str) -> Explanation:
        """The features, weights and score of a record, and what promote/expire would do."""
        record = self.get(id)
        return self.policy.explain(record, self.clock())

    @guarded
    def history(self, id: str) -> list[dict[str, Any]]:
        """Every add/update/promote/archive/expire/delete of a record, oldest first.

        History outlives the record, so you can see why a memory vanished.

        Raises:
            RecordNotFoundError: The id never existed.
        """
        events = self._backend.history(id)
        if not events:
            raise RecordNotFoundError(f"no history for memory id {id!r}")
        return events
