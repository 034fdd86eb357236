"""magray-memory: an embedded three-layer vector store.

SQLite (WAL) is the source of truth; faiss (exact flat or HNSW per layer) is a
derived index, saved atomically and rebuilt or caught up from SQLite on open.

::

    from magray.memory import MemoryStore

    with MemoryStore.open("./mem", embedder=None, dim=3) as store:
        store.add(["hello"], vectors=[[1, 0, 0]], metadata=[{"project": "x"}])
        store.search([1, 0, 0], k=1, where={"project": "x"})
"""

from __future__ import annotations

from importlib.metadata import version as _version

from magray.memory._cache import EmbeddingCache, text_hash
from magray.memory._chunk import fit_to_window, iter_passages, split_passages
from magray.memory._dsn import redact_dsn
from magray.memory._files import iter_files
from magray.memory._ingest import FileResult, Ingest, IngestReport
from magray.memory._plugins import load_embedder, load_reranker
from magray.memory._scoring import Explanation, PromotionPolicy
from magray.memory._store import MemoryStore
from magray.memory._types import Embedder, Hit, Layer, Record, Reranker
from magray.memory.errors import (
    DatabaseMissingError,
    DatabaseRegressedError,
    DuplicateIdError,
    ModelMismatchError,
    RecordNotFoundError,
    StoreCorruptError,
)

__version__ = _version("magray-memory")

__all__ = [
    "__version__",
    # the store
    "MemoryStore",
    "Layer",
    "Hit",
    "Record",
    # plugins
    "Embedder",
    "Reranker",
    "load_embedder",
    "load_reranker",
    # promotion
    "Explanation",
    "PromotionPolicy",
    # ingest
    "Ingest",
    "IngestReport",
    "FileResult",
    "iter_files",
    "iter_passages",
    "fit_to_window",
    # helpers
    "EmbeddingCache",
    "split_passages",
    "text_hash",
    "redact_dsn",
    # errors
    "DatabaseMissingError",
    "DatabaseRegressedError",
    "DuplicateIdError",
    "ModelMismatchError",
    "RecordNotFoundError",
    "StoreCorruptError",
]
