"""``[memory]`` section: the vector store."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["MemorySettings"]

BUILTIN_BACKENDS = ("local", "postgres")


class MemorySettings(BaseModel):
    """Settings of magray-memory."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    backend: str = Field(
        default="local",
        description="Storage backend: 'local' (SQLite + faiss), 'postgres', or a plugin's name.",
    )
    path: Path | None = Field(
        default=None, description="Store directory for the local backend (default: <data>/memory)."
    )
    dsn: str | None = Field(
        default=None,
        description="postgresql://user:password@host/db for the postgres backend "
        "(?schema=NAME picks the store's schema).",
    )
    pg_schema: str = Field(
        default="magray",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema holding the store (one schema per store).",
    )
    pg_pool_size: int = Field(
        default=8, ge=1, le=1000, description="Most connections one process opens to PostgreSQL."
    )
    pg_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for a pooled PostgreSQL connection."
    )
    pg_retries: int = Field(
        default=3, ge=0, le=20, description="Retries of a transaction on transient errors."
    )
    embedder: str = Field(
        default="default", description="Embedder name from the magray.embedders entry points."
    )
    ttl_interact_hours: float = Field(default=24.0, gt=0)
    ttl_insights_days: float = Field(default=90.0, gt=0)
    dedupe: bool = Field(default=True, description="Skip identical text within a layer.")
    flat_threshold: int = Field(
        default=5_000,
        ge=0,
        description="Up to this many vectors a layer uses exact flat search, above it HNSW "
        "(measured crossover: docs/benchmarks.md).",
    )
    hnsw_m: int = Field(default=32, ge=4, le=256)
    hnsw_ef_construction: int = Field(default=200, ge=8)
    hnsw_ef_search: int | None = Field(
        default=None,
        ge=1,
        description="HNSW search breadth; unset = by layer size: 64 up to 100k vectors, "
        "doubling per tenfold growth (128 at 1M), so recall@10 stays >= 0.95.",
    )
    tombstone_ratio: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Compact a layer's index when this share of its vectors is deleted.",
    )
    background_compaction: bool = Field(
        default=True,
        description="Compact HNSW layers (drop tombstones) in a background thread instead of "
        "inside the write that crossed tombstone_ratio; searches stay exact meanwhile.",
    )
    exact_filter_limit: int = Field(
        default=5_000,
        ge=0,
        description="Filtered searches matching at most this many records are exact (brute "
        "force); more go through HNSW with a selector.",
    )
    index_autosave_changes: int = Field(
        default=50_000,
        ge=1,
        description="Save the index after this many unsaved changes (it is also saved on close).",
    )
    promote_insights_score: float = Field(
        default=0.55, ge=0, le=1, description="Score at which interact records move to insights."
    )
    promote_assets_score: float = Field(
        default=0.8, ge=0, le=1, description="Score at which insights records move to assets."
    )
    rerank_candidates: int = Field(
        default=4, ge=1, le=100, description="rerank=True fetches k x this many candidates."
    )
    cache_entries: int = Field(default=10_000, ge=0, description="Embedding LRU cache entries.")
    cache_bytes: int = Field(
        default=64 * 1024 * 1024, ge=0, description="Embedding LRU cache size limit in bytes."
    )
    hit_cache_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="Memory for search-hit rows (id, text, metadata) kept in process: rows of "
        "added and recently returned records, so hits need no SQLite read (0 = off).",
    )
    cache_persist: bool = Field(
        default=False, description="Also keep embeddings of added texts in the store's SQLite."
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        known = set(BUILTIN_BACKENDS)
        from importlib.metadata import entry_points

        known.update(ep.name for ep in entry_points(group="magray.memory.backends"))
        if value not in known:
            raise ValueError(f"unknown backend {value!r}; choose one of {', '.join(sorted(known))}")
        return value
