"""Index upkeep of the local backend: the faiss index follows SQLite.

Every write appends to ``changes``; :meth:`IndexUpkeep.sync` replays the new rows into
the in-memory index, :meth:`IndexUpkeep.refresh` does so when another connection
committed. Layers switch from flat to HNSW past a size threshold and are compacted
(in a background thread for HNSW) when tombstones pass a ratio. The index is saved
with its watermark under ``index.lock``.
"""

from __future__ import annotations

import threading

import numpy as np

from magray.common.log import get_logger
from magray.memory._columns import LayerMeta, MetaRow
from magray.memory._index import IndexLoadError
from magray.memory._layercols import LayerColumns
from magray.memory._layerindex import FLAT, HNSW, LayerIndex

__all__ = ["IndexUpkeep"]

log = get_logger("magray.memory")


class IndexUpkeep(LayerColumns):
    """Keeps the in-memory index equal to SQLite: replay, rebuild, save, compaction, warm-up."""

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
