"""Filter columns of the local index: which values each indexed position has.

Search with a ``where`` filter evaluates it in memory over columns aligned with a
layer's index positions (:class:`~magray.memory._columns.LayerMeta`). Their values come
from a file saved with the index (:class:`_FileBase`) or from SQLite, one metadata key
at a time (:class:`_SqlBase`); :class:`LayerColumns` builds, keeps and saves them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from magray.common.log import get_logger
from magray.memory._columns import MISSING, LayerMeta, MetaRow, SavedColumn
from magray.memory._index import IndexLoadError
from magray.memory._localcore import LocalCore
from magray.memory._savedcols import SavedColumns, save_columns, saved_keys
from magray.memory._sqlite import RecordDB

__all__ = ["LayerColumns"]

log = get_logger("magray.memory")


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


class LayerColumns(LocalCore):
    """The filter columns of each layer's index positions: kept in memory, saved beside the
    index, or read from SQLite on first use."""

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
