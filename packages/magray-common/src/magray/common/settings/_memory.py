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
    dsn: str | None = Field(default=None, description="postgresql://... for the postgres backend.")
    embedder: str = Field(
        default="default", description="Embedder name from the magray.embedders entry points."
    )
    ttl_interact_hours: float = Field(default=24.0, gt=0)
    ttl_insights_days: float = Field(default=90.0, gt=0)
    dedupe: bool = Field(default=True, description="Skip identical text within a layer.")
    flat_threshold: int = Field(
        default=20_000, ge=0, description="Below this many vectors a layer uses exact search."
    )
    hnsw_m: int = Field(default=32, ge=4, le=256)
    hnsw_ef_construction: int = Field(default=200, ge=8)
    hnsw_ef_search: int = Field(default=64, ge=1)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        known = set(BUILTIN_BACKENDS)
        from importlib.metadata import entry_points

        known.update(ep.name for ep in entry_points(group="magray.memory.backends"))
        if value not in known:
            raise ValueError(f"unknown backend {value!r}; choose one of {', '.join(sorted(known))}")
        return value
