"""The derived vector index: one faiss index per layer, saved atomically.

A :class:`LayerIndex` keeps a faiss ``IndexFlatIP`` (exact) or
``IndexHNSWFlat`` (approximate) over L2-normalised vectors, plus the mapping
from faiss positions to record labels and an ``alive`` mask. Deletes are
tombstones (``IndexHNSWFlat`` cannot remove vectors): dead positions are
excluded inside the search through a faiss ``IDSelectorBitmap``, and the layer
is compacted when the dead share passes a ratio.

Filtered searches receive the matching labels: if they are few (at most
``exact_limit``) or the layer is flat, the exact top-k among them is computed
directly; otherwise HNSW searches with a bitmap selector of exactly those
positions, so no result outside the filter can appear.

:class:`IndexFiles` saves all layers under ``<store>/index/``: each layer's
files carry a generation number, and ``manifest.json`` (written last,
atomically) names the generation together with the change-log watermark, the
model id, the dimension and the index epoch. A crash at any point leaves either
the old or the new manifest, each pointing at complete files.

Every file is checksummed (xxh3-64, computed while it is written): the manifest
records the digest of each layer's index, state and filter-column file, and its
own digest over the rest of its content. A file whose bytes do not match is
damage (:class:`IndexLoadError` with ``damaged=True``): the store rebuilds from
SQLite and says so, instead of loading a faiss file whose vectors are garbage.
The manifest also keeps the tip of SQLite's history table as it was when the
index was saved, so an open can tell a database that lost changes (see
``LocalBackend``).
"""

from __future__ import annotations

import io
import json
import math
import mmap
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from magray.common.fs import atomic_write_text, atomic_writer
from magray.memory._columns import columns_fit, save_columns

__all__ = [
    "HNSWParams",
    "HashingWriter",
    "IndexFiles",
    "IndexLoadError",
    "LayerIndex",
    "file_digest",
]

FLAT = "flat"
HNSW = "hnsw"
MANIFEST_FORMAT = 2  # 2: checksums and the database tip


class IndexLoadError(Exception):
    """The saved index is missing, stale or corrupt (internal: triggers a rebuild).

    ``damaged`` tells damage (a checksum mismatch, an unreadable file) from the
    ordinary reasons (no index saved yet, another epoch or model, an older format).
    """

    def __init__(self, message: str, *, damaged: bool = False) -> None:
        super().__init__(message)
        self.damaged = damaged


def file_digest(path: Path) -> str:
    """The xxh3-64 hex digest of a file's bytes.

    The file is memory-mapped and hashed in place (no copy into Python; xxhash releases
    the GIL, so another thread may read the same file meanwhile): about twice the speed of
    chunked ``read`` calls.
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return xxhash.xxh3_64_hexdigest(b"")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return xxhash.xxh3_64_hexdigest(mapped)


class HashingWriter:
    """A write-only, non-seekable stream that digests what it passes on (zip writers such
    as ``np.savez`` then stream instead of seeking back, so the digest is the file's)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._digest = xxhash.xxh3_64()

    def write(self, data: Any) -> int:
        self._digest.update(data)
        return int(self._handle.write(data))

    def flush(self) -> None:
        self._handle.flush()

    def read(self, *_: Any) -> bytes:  # numpy's savez takes only objects that have `read`
        raise io.UnsupportedOperation("write-only stream")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _manifest_digest(raw: Mapping[str, Any]) -> str:
    body = {key: value for key, value in raw.items() if key != "checksum"}
    return xxhash.xxh3_64_hexdigest(json.dumps(body, sort_keys=True).encode("utf-8"))


def _verify_into(path: Path, expected: Any, failures: list[IndexLoadError]) -> None:
    try:
        _verify(path, expected)
    except IndexLoadError as exc:
        failures.append(exc)


def _verify(path: Path, expected: Any) -> None:
    """Raise a damage :class:`IndexLoadError` unless ``path`` has the digest ``expected``.

    ``expected`` is None only in a manifest of format 1 (saved before checksums; a format 2
    manifest is itself checksummed, so its digests cannot go missing): nothing to check.
    """
    if expected is None:
        return
    try:
        actual = file_digest(path)
    except FileNotFoundError:
        raise IndexLoadError(f"{path.name} is missing", damaged=True) from None
    except OSError as exc:
        raise IndexLoadError(f"cannot read {path.name}: {exc}", damaged=True) from exc
    if actual != expected:
        raise IndexLoadError(
            f"{path.name} failed its checksum (xxh3 {actual}, saved {expected})", damaged=True
        )


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


def _faiss() -> Any:
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
        faiss = _faiss()
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
        faiss = _faiss()
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
        faiss = _faiss()
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
        ptr = (_FAISS or _faiss()).swig_ptr
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
            params = self._plain_params[ef] = _faiss().SearchParametersHNSW(efSearch=ef)
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
        layer._dupes = len(np.unique(labels)) != len(labels)
        layer._dead_set = set(layer._labels[~layer._alive].tolist())
        if kind == HNSW:
            index.hnsw.efSearch = params.ef_search or auto_ef_search(layer.live)
        return layer


@dataclass
class Manifest:
    """What ``manifest.json`` says about the saved index."""

    generation: int
    watermark: int
    epoch: int
    model_id: str
    dim: int
    layers: dict[str, dict[str, Any]]
    db_tip: dict[str, Any] | None = None
    legacy: bool = False  # format 1: no checksums to verify


class IndexFiles:
    """Atomic save/load of a set of layer indexes in one directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.manifest_path = directory / "manifest.json"

    def read_manifest(self) -> Manifest:
        """The manifest, verified against its own checksum."""
        try:
            raw = json.loads(self.manifest_path.read_text("utf-8"))
        except FileNotFoundError:
            raise IndexLoadError("no saved index") from None
        except (OSError, ValueError) as exc:
            raise IndexLoadError(f"unreadable index manifest: {exc}", damaged=True) from exc
        try:
            legacy = raw["format"] == 1  # saved before checksums: loaded once, then re-saved
            if raw["format"] != MANIFEST_FORMAT and not legacy:
                raise IndexLoadError(f"unknown index format {raw['format']!r}")
            if not legacy and raw.get("checksum") != _manifest_digest(raw):
                raise IndexLoadError("manifest.json failed its checksum", damaged=True)
            return Manifest(
                generation=int(raw["generation"]),
                watermark=int(raw["watermark"]),
                epoch=int(raw["epoch"]),
                model_id=str(raw["model_id"]),
                dim=int(raw["dim"]),
                layers=dict(raw["layers"]),
                db_tip=raw.get("db_tip"),
                legacy=legacy,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IndexLoadError(f"invalid index manifest: {exc}", damaged=True) from exc

    def _write_manifest(self, raw: dict[str, Any]) -> None:
        raw = {key: value for key, value in raw.items() if key != "checksum"}
        raw["checksum"] = _manifest_digest(raw)
        atomic_write_text(self.manifest_path, json.dumps(raw, indent=2))

    def columns_file(self, layer: str) -> tuple[Path, str] | None:
        """The filter-column file of ``layer`` listed in the manifest and its digest."""
        try:
            entry = self.read_manifest().layers.get(layer) or {}
        except IndexLoadError:
            return None
        name, digest = entry.get("columns"), entry.get("columns_xxh3")
        if not name or not digest:
            return None
        path = self.dir / str(name)
        return (path, str(digest)) if path.exists() else None

    def add_columns(self, layer: str, name: str, digest: str) -> None:
        """List a filter-column file saved for the current generation (caller holds the
        index lock)."""
        raw = json.loads(self.manifest_path.read_text("utf-8"))
        if raw.get("checksum") != _manifest_digest(raw) or layer not in raw["layers"]:
            return
        raw["layers"][layer].update(columns=name, columns_xxh3=digest)
        self._write_manifest(raw)

    def verify(self) -> list[str]:
        """Every checksum problem of the saved files (empty: all files match)."""
        try:
            manifest = self.read_manifest()
        except IndexLoadError as exc:
            return [str(exc)] if exc.damaged else []
        problems = []
        for info in manifest.layers.values():
            for name_key, digest_key in (
                ("index", "index_xxh3"),
                ("state", "state_xxh3"),
                ("columns", "columns_xxh3"),
            ):
                if info.get(name_key):
                    try:
                        _verify(self.dir / info[name_key], info.get(digest_key))
                    except IndexLoadError as exc:
                        problems.append(str(exc))
        return problems

    def load(self, params: HNSWParams) -> tuple[Manifest, dict[str, LayerIndex]]:
        """The saved layers, or :class:`IndexLoadError` saying why not."""
        faiss = _faiss()
        manifest = self.read_manifest()
        layers: dict[str, LayerIndex] = {}
        for name, info in manifest.layers.items():
            index_path = self.dir / info["index"]
            state_path = self.dir / info["state"]
            _verify(state_path, info.get("state_xxh3"))
            # The index file is hashed in a thread while faiss reads it (both release the
            # GIL): on an idle second core the check costs no wall-clock time. The index is
            # used only once its digest matched.
            failure: list[IndexLoadError] = []
            checker = threading.Thread(
                target=_verify_into,
                args=(index_path, info.get("index_xxh3"), failure),
                name="magray-memory-checksum",
            )
            checker.start()
            try:
                index = faiss.read_index(str(index_path))
                with np.load(state_path) as state:
                    labels, alive = state["labels"], state["alive"]
            except Exception as exc:  # faiss raises RuntimeError; numpy ValueError/OSError
                checker.join()
                if failure:  # the checksum names the damage better than the parser
                    raise failure[0] from exc
                raise IndexLoadError(f"cannot read {index_path.name}: {exc}", damaged=True) from exc
            checker.join()
            if failure:
                raise failure[0]
            kind = info.get("kind")
            if kind not in (FLAT, HNSW):
                raise IndexLoadError(f"unknown index kind {kind!r}")
            if index.ntotal != len(labels) or len(alive) != len(labels):
                raise IndexLoadError(
                    f"{index_path.name} holds {index.ntotal} vectors but its state {len(labels)}",
                    damaged=True,
                )
            if index.d != manifest.dim:
                raise IndexLoadError(
                    f"{index_path.name} has dim {index.d}, not {manifest.dim}", damaged=True
                )
            layers[name] = LayerIndex.restore(index, labels, alive, kind=kind, params=params)
        return manifest, layers

    def save(
        self,
        layers: dict[str, LayerIndex],
        *,
        watermark: int,
        epoch: int,
        model_id: str,
        dim: int,
        columns: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        db_tip: dict[str, Any] | None = None,
    ) -> int:
        """Write every layer (and the filter columns given for it) then the manifest;
        returns bytes written."""
        faiss = _faiss()
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            previous_manifest: Manifest | None = self.read_manifest()
        except IndexLoadError:
            previous_manifest = None
        generation = 1 if previous_manifest is None else previous_manifest.generation + 1
        entries: dict[str, dict[str, Any]] = {}
        keep_columns: set[str] = set()
        written = 0
        for name, layer in layers.items():
            index_name = f"{name}.{generation}.faiss"
            state_name = f"{name}.{generation}.npz"
            with atomic_writer(self.dir / index_name) as handle:
                index_out = HashingWriter(handle)
                faiss.write_index(layer.index, faiss.PyCallbackIOWriter(index_out.write))
            labels, alive = layer.state()
            with atomic_writer(self.dir / state_name) as handle:
                state_out = HashingWriter(handle)
                np.savez(state_out, labels=labels, alive=alive)
            written += (self.dir / index_name).stat().st_size + (
                self.dir / state_name
            ).stat().st_size
            entry: dict[str, Any] = {
                "index": index_name,
                "index_xxh3": index_out.hexdigest(),
                "state": state_name,
                "state_xxh3": state_out.hexdigest(),
                "kind": layer.kind,
                "n": layer.n,
                "dead": layer.dead,
            }
            columns_name = f"{name}.{generation}.cols.npz"
            old_entry = {} if previous_manifest is None else previous_manifest.layers.get(name, {})
            previous = self.dir / str(old_entry.get("columns") or f"{name}.{generation - 1}.x")
            if columns and name in columns:
                digest = save_columns(self.dir / columns_name, labels, columns[name])
                entry.update(columns=columns_name, columns_xxh3=digest)
                keep_columns.add(columns_name)
            elif (
                old_entry.get("columns_xxh3")
                and previous.exists()
                and columns_fit(previous, labels)
            ):
                # Columns another process built still describe a prefix of these positions
                # (only appends since): they move to this generation, checksum and all; the
                # rest is appended on load.
                os.replace(previous, self.dir / columns_name)
                entry.update(columns=columns_name, columns_xxh3=old_entry["columns_xxh3"])
                keep_columns.add(columns_name)
            entries[name] = entry
        self._write_manifest(
            {
                "format": MANIFEST_FORMAT,
                "generation": generation,
                "watermark": watermark,
                "epoch": epoch,
                "model_id": model_id,
                "dim": dim,
                "layers": entries,
                "db_tip": db_tip,
            }
        )
        keep = {e["index"] for e in entries.values()} | {e["state"] for e in entries.values()}
        keep |= keep_columns
        for path in self.dir.iterdir():
            if path.suffix in (".faiss", ".npz") and path.name not in keep:
                path.unlink(missing_ok=True)
        return written

    def size(self) -> int:
        if not self.dir.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())

    def remove(self) -> None:
        if self.dir.is_dir():
            for path in self.dir.iterdir():
                if path.is_file():
                    os.unlink(path)
