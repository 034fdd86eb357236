"""The storage interface a memory backend implements (see issue #10: pluggable backends).

:class:`~magray.memory.MemoryStore` does validation, embedding, caching,
reranking, TTL arithmetic and promotion scoring; everything that stores or
searches records goes through this protocol. ``LocalBackend`` (SQLite + faiss)
is the built-in implementation; ``PostgresBackend`` (``_postgres.py``, PostgreSQL +
pgvector) is registered as ``postgres``. Any backend registers a factory under the
entry-point group ``magray.memory.backends``:
``factory(path_or_dsn: str, settings: MemorySettings) -> StorageBackend``, and
must keep the same semantics, which the test-suite states precisely:

- ``insert`` is atomic and durable when it returns; dedupe is per layer by
  content hash; an explicit id that exists raises ``DuplicateIdError``.
- any change to a record is visible to ``search`` of every process afterwards;
- ``search`` returns the top-k among live, unexpired records of the given
  layers matching ``where`` (grammar in ``_filters.py``), best first;
- ``history`` keeps every event of a record, also after it is deleted;
- the store is pinned to one ``(model_id, dim)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Protocol

from magray.memory._layerindex import HNSWParams

if TYPE_CHECKING:
    import numpy as np

    from magray.memory._types import Hit, Layer, Record

__all__ = ["BACKENDS_GROUP", "BackendConfig", "NewRecord", "StorageBackend"]

BACKENDS_GROUP = "magray.memory.backends"


@dataclass(frozen=True)
class BackendConfig:
    """Tuning of the local backend (see :class:`~magray.common.settings.MemorySettings`)."""

    flat_threshold: int = 5_000
    hnsw: HNSWParams = field(default_factory=HNSWParams)
    tombstone_ratio: float = 0.2
    exact_filter_limit: int = 5_000
    busy_timeout: float = 60.0
    autosave_changes: int = 50_000
    min_compact: int = 64
    hit_cache_bytes: int = 64 * 1024 * 1024
    background_compaction: bool = True


@dataclass(frozen=True)
class NewRecord:
    """A validated record to insert (the vector already normalised)."""

    id: str | None
    layer: Layer
    text: str
    metadata_json: str
    vector: np.ndarray
    content_hash: str
    importance: float
    pinned: bool
    expires_at: float | None
    created_at: float | None = None
    updated_at: float | None = None
    last_access: float | None = None
    access_count: int = 0


class StorageBackend(Protocol):
    """What MemoryStore needs from a backend."""

    name: str
    path: Path

    # model pinning
    def pinned(self) -> tuple[str, int] | None: ...
    def pin(self, model_id: str, dim: int) -> tuple[str, int]: ...

    # writes
    def insert(self, rows: Sequence[NewRecord], *, dedupe: bool, now: float) -> list[str]: ...
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
    ) -> Record: ...
    def move(
        self, moves: Sequence[tuple[str, Layer, float | None, str, dict[str, Any]]], *, now: float
    ) -> int: ...
    def delete(
        self,
        ids: Sequence[str],
        *,
        now: float,
        event: str = "delete",
        details: dict[str, dict[str, Any]] | None = None,
    ) -> list[str]: ...
    def touch(self, ids: Sequence[str], now: float) -> None: ...
    def flush(self) -> None: ...

    # reads
    def get(self, ids: Sequence[str], *, with_vector: bool = False) -> list[Record]: ...
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
    ) -> list[Record]: ...
    def iter_records(
        self, *, layers: Sequence[Layer] | None = None, with_vector: bool = False, batch: int = 1000
    ) -> Iterator[Record]: ...
    def counts(self) -> dict[str, int]: ...
    def expired_ids(self, now: float) -> list[tuple[str, str, bool]]: ...
    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        layers: Sequence[Layer],
        where: dict[str, Any] | None,
        now: float,
        ef_search: int | None = None,
    ) -> list[Hit]: ...
    def search_many(
        self,
        queries: np.ndarray,
        k: int,
        *,
        layers: Sequence[Layer],
        where: dict[str, Any] | None,
        now: float,
        ef_search: int | None = None,
    ) -> list[list[Hit]]: ...
    def history(self, record_id: str) -> list[dict[str, Any]]: ...

    # embedding cache
    def cached_vectors(self, model_id: str, keys: Sequence[str]) -> dict[str, bytes]: ...
    def cache_vectors(self, model_id: str, items: Sequence[tuple[str, np.ndarray]]) -> None: ...

    # operations
    def stats(self) -> dict[str, Any]: ...
    def consistency(self) -> dict[str, dict[str, int | bool]]: ...
    def save_index(self, *, force: bool = False) -> bool: ...
    def rebuild(self) -> None: ...
    def warm_up(self) -> int: ...
    def backup(self, dest: Path) -> dict[str, Any]: ...
    def vacuum(self) -> dict[str, Any]: ...
    def reembed(
        self,
        embed: Callable[[list[str]], np.ndarray],
        *,
        model_id: str,
        dim: int,
        batch_size: int = 64,
        progress: Callable[[int, int], None] | None = None,
        now: float,
    ) -> int: ...
    def close(self) -> None: ...
