"""One layer's vectors in faiss, addressed by record label.

A :class:`LayerIndex` keeps a faiss ``IndexFlatIP`` (exact) or
``IndexHNSWFlat`` (approximate) over L2-normalised vectors, plus the mapping
from faiss positions to record labels and an ``alive`` mask. Deletes are
tombstones (``IndexHNSWFlat`` cannot remove vectors): dead positions are
excluded inside the search through a faiss ``IDSelectorBitmap``, and the layer
is compacted when the dead share passes a ratio.

Filtered searches receive the matching labels: if they are few (at most
``exact_limit``) or the layer is flat, the exact top-k among them is computed
directly; otherwise HNSW searches with a bitmap selector of exactly those
positions, so no result outside the filter can appear. faiss itself is imported
on first use (:func:`faiss_module`), not with this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FLAT", "HNSW", "HNSWParams", "LayerIndex", "auto_ef_search", "faiss_module"]

FLAT = "flat"
HNSW = "hnsw"


def auto_ef_search(live: int) -> int:
    """The HNSW search breadth for a layer of ``live`` vectors when none is configured.

    64 up to 100k vectors, then doubling per tenfold growth (128 at 1M, 256 at 10M): on the
    benchmark data (384-d, M 32, efConstruction 200) a fixed 64 gives recall@10 0.998 at
    100k but 0.929 at 1M, while 128 at 1M gives 0.988 (docs/benchmarks.md, "ef at 1M").
    """
    if live <= 100_000:
        return 64
    return min(1024, round(64 * 2 ** math.log10(live / 100_000)))


@dataclass(frozen=True)
class HNSWParams:
    """HNSW construction and search parameters (``ef_search=None``: :func:`auto_ef_search`)."""

    m: int = 32
    ef_construction: int = 200
    ef_search: int | None = None


_FAISS: Any = None


def faiss_module() -> Any:
    """The faiss module, imported on first use."""
    global _FAISS
    if _FAISS is None:
        import faiss

        _FAISS = faiss
    return _FAISS


_F32 = np.dtype(np.float32)
_I64 = np.dtype(np.int64)


class LayerIndex:
    """The vectors of one layer, addressed by record label.

    Args:
        dim: Vector dimension.
        kind: ``"flat"`` or ``"hnsw"``.
        params: HNSW parameters (used when ``kind == "hnsw"``).
    """

    def __init__(self, dim: int, *, kind: str = FLAT, params: HNSWParams | None = None) -> None:
        self.dim = dim
        self.kind = kind
        self.params = params or HNSWParams()
        self.index = self._new_index(kind)
        self._labels = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=bool)
        self.n = 0
        self.dead = 0
        self.pos_of: dict[int, int] = {}
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self._dupes = False
        self._dead_set: set[int] = set()
        self._plain_params: dict[int, Any] = {}
        self._hot: tuple[int, int, Any] | None = None  # (live, k, params) of the last search

    # ------------------------------------------------------------ construction
    def _new_index(self, kind: str) -> Any:
        faiss = faiss_module()
        if kind == FLAT:
            return faiss.IndexFlatIP(self.dim)
        index = faiss.IndexHNSWFlat(self.dim, self.params.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.params.ef_construction
        index.hnsw.efSearch = self.params.ef_search or auto_ef_search(0)
        return index

    @classmethod
    def build(
        cls,
        dim: int,
        labels: np.ndarray,
        vectors: np.ndarray,
        *,
        kind: str,
        params: HNSWParams | None = None,
    ) -> LayerIndex:
        """A fresh index holding ``vectors`` under ``labels``."""
        layer = cls(dim, kind=kind, params=params)
        layer.add(labels, vectors)
        return layer

    @property
    def live(self) -> int:
        return self.n - self.dead

    def labels(self) -> np.ndarray:
        """Labels of the live vectors."""
        return self._labels[: self.n][self._alive[: self.n]]

    def vectors(self) -> np.ndarray:
        """A read-only view of all stored vectors (dead ones included), shape ``(n, dim)``."""
        faiss = faiss_module()
        if self.n == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        flat = self.index if self.kind == FLAT else faiss.downcast_index(self.index.storage)
        view: np.ndarray = faiss.rev_swig_ptr(flat.get_xb(), self.n * self.dim)
        return view.reshape(self.n, self.dim)

    def live_vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, labels, vectors) of the live entries, vectors copied."""
        positions = np.flatnonzero(self._alive[: self.n])
        return positions, self._labels[positions].copy(), np.array(self.vectors()[positions])

    def changes_since(
        self, positions: np.ndarray, snapshot_n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What changed since a snapshot of the live ``positions`` among the first
        ``snapshot_n`` entries: ``(labels of those that died since, positions appended
        since and still live, their labels, their vectors)`` (vectors copied)."""
        died = self._labels[positions[~self._alive[positions]]]
        tail = np.arange(snapshot_n, self.n, dtype=np.int64)
        tail = tail[self._alive[snapshot_n : self.n]]
        return died.copy(), tail, self._labels[tail].copy(), np.array(self.vectors()[tail])

    # ------------------------------------------------------------ mutation
    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Append vectors; a label already present is tombstoned first."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) == 0:
            return
        present = [int(lb) for lb in labels if int(lb) in self.pos_of]
        if present:
            self.remove(present)
        if self._dead_set and not self._dupes:
            self._dupes = any(int(lb) in self._dead_set for lb in labels)
        need = self.n + len(labels)
        if need > len(self._labels):
            cap = max(need, 2 * len(self._labels), 1024)
            self._labels = np.resize(self._labels, cap)
            self._alive = np.resize(self._alive, cap)
        self._labels[self.n : need] = labels
        self._alive[self.n : need] = True
        for offset, label in enumerate(labels.tolist()):
            self.pos_of[label] = self.n + offset
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.n = need
        self._sorted = None

    def remove(self, labels: Iterable[int]) -> int:
        """Tombstone labels; returns how many were live here."""
        removed = 0
        for label in labels:
            pos = self.pos_of.pop(int(label), None)
            if pos is not None:
                self._alive[pos] = False
                self._dead_set.add(int(label))
                removed += 1
        self.dead += removed
        return removed

    # ------------------------------------------------------------ search
    def positions(self, labels: np.ndarray) -> np.ndarray:
        """Positions of the given labels that are live here (unknown labels dropped)."""
        labels = np.asarray(labels, dtype=np.int64)
        if self._dupes:
            found = [self.pos_of[lb] for lb in labels.tolist() if lb in self.pos_of]
            return np.asarray(found, dtype=np.int64)
        if self._sorted is None:
            current = self._labels[: self.n]
            order = np.argsort(current, kind="stable")
            self._sorted = (current[order], order)
        ordered, order = self._sorted
        if len(ordered) == 0:
            return np.empty(0, dtype=np.int64)
        idx = np.searchsorted(ordered, labels)
        idx = np.minimum(idx, len(ordered) - 1)
        hit = ordered[idx] == labels
        pos: np.ndarray = order[idx[hit]]
        live: np.ndarray = pos[self._alive[pos]]
        return live

    def alive_mask(self) -> np.ndarray:
        """A copy of the live-position mask."""
        return self._alive[: self.n].copy()

    def mask_of(self, labels: np.ndarray) -> np.ndarray:
        """A position mask of the live positions holding ``labels``."""
        mask = np.zeros(self.n, dtype=bool)
        mask[self.positions(labels)] = True
        return mask

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        mask: np.ndarray | None = None,
        exact_limit: int = 0,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (labels, scores) among live positions (and within ``mask`` if given).

        A mask with at most ``exact_limit`` positions is searched exactly (brute
        force over just those vectors); otherwise faiss searches with the mask as
        an ``IDSelectorBitmap`` (exact on a flat layer, HNSW otherwise), so
        nothing outside it can be returned.
        """
        return self.search_many(
            query.reshape(1, -1), k, mask=mask, exact_limit=exact_limit, ef_search=ef_search
        )[0]

    def search_many(
        self,
        queries: np.ndarray,
        k: int,
        *,
        mask: np.ndarray | None = None,
        exact_limit: int = 0,
        ef_search: int | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`search` for a batch of queries ``(nq, dim)`` sharing one mask."""
        nq = len(queries)
        empty = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
        if self.live == 0 or k <= 0:
            return [empty] * nq
        faiss = faiss_module()
        if mask is not None:
            mask = mask & self._alive[: self.n]
            allowed = int(np.count_nonzero(mask))
            if allowed == 0:
                return [empty] * nq
            if allowed <= exact_limit:
                return self._exact(queries, k, np.flatnonzero(mask))
        elif self.dead:
            mask = self._alive[: self.n]
            allowed = self.live
        else:
            allowed = self.live
        kk = min(k, allowed)
        if mask is None:
            params = self._params(kk, ef_search)
        else:
            bitmap = np.packbits(mask, bitorder="little")
            sel = faiss.IDSelectorBitmap(self.n, faiss.swig_ptr(bitmap))
            if self.kind == FLAT:
                params = faiss.SearchParameters(sel=sel)
            else:
                ef = max(ef_search or self.params.ef_search or auto_ef_search(self.live), kk)
                params = faiss.SearchParametersHNSW(sel=sel, efSearch=ef)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        scores, ids = self.index.search(q, kk, params=params)
        out = []
        for row_ids, row_scores in zip(ids, scores, strict=True):
            ok = row_ids >= 0
            out.append((self._labels[row_ids[ok]], row_scores[ok]))
        return out

    def search_one(
        self, query: np.ndarray, k: int, *, ef_search: int | None = None
    ) -> tuple[list[int], list[float]]:
        """Top-k ``(labels, scores)`` of one query among the live positions, best first.

        The search hot path: no mask, one faiss call into buffers of exactly ``k``, and
        plain lists out. A layer with tombstones goes through :meth:`search_many`.
        """
        live = self.n - self.dead
        if self.dead or live == 0 or k <= 0:
            labels, scores = self.search_many(query.reshape(1, -1), k, ef_search=ef_search)[0]
            return labels.tolist(), scores.tolist()
        kk = k if k < live else live
        if query.dtype is not _F32 or not query.flags.c_contiguous:
            query = np.ascontiguousarray(query, dtype=np.float32)
        hot = self._hot  # the default parameters for the current size and k
        if ef_search is None and hot is not None and hot[0] == live and hot[1] == kk:
            params = hot[2]
        else:
            params = self._params(kk, ef_search)
            if ef_search is None:
                self._hot = (live, kk, params)
        ptr = (_FAISS or faiss_module()).swig_ptr
        scores = np.empty(kk, dtype=_F32)
        ids = np.empty(kk, dtype=_I64)
        self.index.search_c(1, ptr(query), kk, ptr(scores), ptr(ids), params)
        if ids[kk - 1] < 0:  # fewer than kk found: faiss pads with -1
            ok = ids >= 0
            ids, scores = ids[ok], scores[ok]
        return self._labels[ids].tolist(), scores.tolist()

    def _params(self, k: int, ef_search: int | None) -> Any:
        """Search parameters without a selector (one object per efSearch, reused)."""
        if self.kind == FLAT:
            return None
        ef = max(ef_search or self.params.ef_search or auto_ef_search(self.live), k)
        params = self._plain_params.get(ef)
        if params is None:
            params = self._plain_params[ef] = faiss_module().SearchParametersHNSW(efSearch=ef)
        return params

    def _exact(
        self, queries: np.ndarray, k: int, pos: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        vectors = self.vectors()[pos]
        if len(queries) == 1:
            # einsum, not `@`: a BLAS gemv spawns threads that only slow a single query down
            all_scores = np.einsum("ij,j->i", vectors, queries[0].astype(np.float32))[None, :]
        else:
            all_scores = (vectors @ queries.astype(np.float32).T).T
        kk = min(k, len(pos))
        labels = self._labels[pos]
        out = []
        for scores in all_scores:
            top = np.argpartition(-scores, kk - 1)[:kk] if kk < len(pos) else np.arange(len(pos))
            top = top[np.lexsort((labels[top], -scores[top]))]
            out.append((labels[top], scores[top]))
        return out

    # ------------------------------------------------------------ persistence
    def state(self) -> tuple[np.ndarray, np.ndarray]:
        return self._labels[: self.n].copy(), self._alive[: self.n].copy()

    @classmethod
    def restore(
        cls,
        index: Any,
        labels: np.ndarray,
        alive: np.ndarray,
        *,
        kind: str,
        params: HNSWParams,
    ) -> LayerIndex:
        layer = cls(index.d, kind=kind, params=params)
        layer.index = index
        layer._labels = labels.astype(np.int64)
        layer._alive = alive.astype(bool)
        layer.n = len(labels)
        layer.dead = int((~layer._alive).sum())
        live = layer._labels[layer._alive]
        layer.pos_of = dict(zip(live.tolist(), np.flatnonzero(layer._alive).tolist(), strict=True))
        # Neighbours in sorted order, not np.unique: that one imports numpy.ma (~8 ms of a
        # cold open) to ask whether the labels are a masked array.
        ordered = np.sort(layer._labels)
        layer._dupes = bool((ordered[1:] == ordered[:-1]).any())
        layer._dead_set = set(layer._labels[~layer._alive].tolist())
        if kind == HNSW:
            index.hnsw.efSearch = params.ef_search or auto_ef_search(layer.live)
        return layer
