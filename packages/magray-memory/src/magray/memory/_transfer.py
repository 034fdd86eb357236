"""Moving records in and out of a store: backup, re-embedding, copy, JSONL export and import.

Functions over a :class:`~magray.memory.MemoryStore` (its methods of the same
names delegate here), written once for every backend: they only use the
:class:`~magray.memory._backend.StorageBackend` protocol and the store's own
validation and embedding.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from magray.common.errors import InvalidInputError
from magray.memory._backend import NewRecord
from magray.memory._cache import text_hash
from magray.memory._types import Layer, Record
from magray.memory.errors import ModelMismatchError

if TYPE_CHECKING:
    from magray.memory._store import MemoryStore

__all__ = ["backup_store", "copy_records", "export_records", "import_records", "reindex_store"]


def backup_store(store: MemoryStore, dest: str | Path) -> dict[str, Any]:
    """Copy the store (SQLite online backup + index) into a new directory."""
    return store.backend.backup(Path(dest).expanduser())


def reindex_store(
    store: MemoryStore,
    *,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Re-embed every record with the store's embedder and re-pin the store to it
    (resumable); returns the number of records re-embedded."""
    if store.embedder is None:
        raise InvalidInputError(
            "reindex needs an embedder", hint='open the store with embedder="default"'
        )
    embedder = store.embedder

    def embed(texts: list[str]) -> np.ndarray:
        return store._check_embedded(embedder.embed(texts), len(texts))

    return store.backend.reembed(
        embed,
        model_id=embedder.model_id,
        dim=embedder.dim,
        batch_size=batch_size,
        progress=progress,
        now=store.clock(),
    )


def _new_record(r: Record) -> NewRecord:
    """A record of one store as a row for another, vector bit for bit."""
    return NewRecord(
        id=r.id,
        layer=r.layer,
        text=r.text,
        metadata_json=json.dumps(r.metadata, ensure_ascii=False),
        vector=np.asarray(r.vector, dtype=np.float32),
        content_hash=r.content_hash,
        importance=r.importance,
        pinned=r.pinned,
        expires_at=r.expires_at,
        created_at=r.created_at,
        updated_at=r.updated_at,
        last_access=r.last_access,
        access_count=r.access_count,
    )


def copy_records(
    source: MemoryStore,
    dest: MemoryStore,
    *,
    batch_size: int = 500,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Copy every record of ``source`` into ``dest`` (see :meth:`MemoryStore.copy_to`).

    Raises:
        ModelMismatchError: ``dest`` is pinned to another model or dim.
    """
    if dest.pinned != source.pinned:
        raise ModelMismatchError(
            f"the destination holds {dest.pinned[0]!r} vectors of dim {dest.pinned[1]}, "
            f"this store {source.pinned[0]!r} of dim {source.pinned[1]}",
            hint="copy into a new, empty store (or reindex one of them first)",
        )
    source.backend.flush()
    total = source.count()
    done = copied = skipped = 0
    if progress:
        progress(0, total)
    batch: list[Record] = []

    def flush() -> None:
        nonlocal done, copied, skipped
        if not batch:
            return
        existing = {r.id for r in dest.backend.get([r.id for r in batch])}
        rows = [_new_record(r) for r in batch if r.id not in existing]
        if rows:
            dest.backend.insert(rows, dedupe=False, now=dest.clock())
        copied += len(rows)
        skipped += len(batch) - len(rows)
        done += len(batch)
        batch.clear()
        if progress:
            progress(done, total)

    ids: list[str] = []
    for record in source.backend.iter_records(with_vector=True, batch=batch_size):
        batch.append(record)
        ids.append(record.id)
        if len(batch) >= batch_size:
            flush()
    flush()
    found = 0
    for start in range(0, len(ids), 1000):
        found += len(dest.backend.get(ids[start : start + 1000]))
    source_counts = {layer.value: source.count(layer) for layer in Layer}
    dest_counts = {layer.value: dest.count(layer) for layer in Layer}
    return {
        "copied": copied,
        "skipped": skipped,
        "source": source_counts,
        "dest": dest_counts,
        "found_in_dest": found,
        "verified": found == len(ids),
    }


def export_records(
    store: MemoryStore,
    dest: str | Path | IO[str],
    *,
    with_vectors: bool = False,
    layers: Sequence[Layer | str] | None = None,
) -> int:
    """Write every record as one JSON object per line (a path is written atomically);
    returns the count."""
    chosen = [Layer.parse(x) for x in layers] if layers else None
    if isinstance(dest, str | Path):
        from magray.common.fs import atomic_writer

        with atomic_writer(Path(dest).expanduser(), mode=0o600) as raw:
            handle = io.TextIOWrapper(raw, encoding="utf-8")
            n = _export(store, handle, with_vectors, chosen)
            handle.flush()
            handle.detach()
            return n
    return _export(store, dest, with_vectors, chosen)


def _export(
    store: MemoryStore, handle: IO[str], with_vectors: bool, layers: list[Layer] | None
) -> int:
    n = 0
    for record in store.backend.iter_records(layers=layers, with_vector=with_vectors):
        handle.write(json.dumps(record.to_dict(with_vector=with_vectors), ensure_ascii=False))
        handle.write("\n")
        n += 1
    return n


def import_records(
    store: MemoryStore,
    src: str | Path | IO[str],
    *,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Import JSON lines written by :func:`export_records` (see
    :meth:`MemoryStore.import_jsonl`); returns ``{"imported", "skipped", "embedded"}``."""
    if isinstance(src, str | Path):
        with open(Path(src).expanduser(), encoding="utf-8") as handle:
            return _import(store, handle, batch_size, progress)
    return _import(store, src, batch_size, progress)


def _import(
    store: MemoryStore,
    handle: IO[str],
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> dict[str, int]:
    store._check_model()
    counts = {"imported": 0, "skipped": 0, "embedded": 0}
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if not batch:
            return
        existing = {r.id for r in store.backend.get([b["id"] for b in batch if b.get("id")])}
        fresh = [b for b in batch if not b.get("id") or b["id"] not in existing]
        counts["skipped"] += len(batch) - len(fresh)
        reuse = [
            b
            for b in fresh
            if b.get("vector") is not None
            and b.get("model_id") == store.model_id
            and len(b["vector"]) == store.dim
        ]
        need = [b for b in fresh if not any(b is r for r in reuse)]
        vecs: dict[int, np.ndarray] = {}
        if reuse:
            arr = store._vectors([b["vector"] for b in reuse], len(reuse))
            vecs.update({id(b): arr[i] for i, b in enumerate(reuse)})
        if need:
            arr = store._embed(store._texts([b["text"] for b in need]))
            vecs.update({id(b): arr[i] for i, b in enumerate(need)})
            counts["embedded"] += len(need)
        now = store.clock()
        rows = []
        for i, b in enumerate(fresh):
            text = store._texts([b.get("text", "")])[0]
            layer = Layer.parse(b.get("layer", "interact"))
            created = float(b.get("created_at", now))
            rows.append(
                NewRecord(
                    id=b.get("id"),
                    layer=layer,
                    text=text,
                    metadata_json=store._metadata_json(b.get("metadata"), i),
                    vector=vecs[id(b)],
                    content_hash=text_hash(text),
                    importance=store._importance(b.get("importance", 0.5)),
                    pinned=bool(b.get("pinned", False)),
                    expires_at=b["expires_at"]
                    if "expires_at" in b
                    else store._expiry(layer, created),
                    created_at=created,
                    updated_at=float(b.get("updated_at", created)),
                    last_access=float(b.get("last_access", created)),
                    access_count=int(b.get("access_count", 0)),
                )
            )
        if rows:
            store.backend.insert(rows, dedupe=False, now=now)
        counts["imported"] += len(rows)
        batch.clear()
        if progress is not None:
            progress(counts["imported"] + counts["skipped"])

    for lineno, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise InvalidInputError(
                f"line {lineno} is not JSON: {exc}",
                hint="expected JSON lines as written by export (one record per line); "
                "batches before this line were imported",
            ) from None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise InvalidInputError(f"line {lineno} is not a record with a 'text' field")
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    flush()
    return counts
