"""``[ai]`` section: embedding/rerank models and ONNX Runtime execution."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AISettings"]


class AISettings(BaseModel):
    """Settings of magray-ai."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    embedding_model: str = Field(
        default="default",
        description="Registry name of the embedding model ('default' = built-in).",
    )
    reranker: str | None = Field(
        default=None,
        description="Registry name of a cross-encoder reranking model (unset = no reranker).",
    )
    models_dir: Path | None = Field(
        default=None, description="Folder of user models (default: <data>/models)."
    )
    force_cpu: bool = Field(default=False, description="Never use a GPU execution provider.")
    providers: list[str] = Field(
        default_factory=list,
        description="Preferred ONNX Runtime execution providers, best first (empty = auto).",
    )
    intra_op_threads: int = Field(
        default=0, ge=0, description="ONNX Runtime intra-op threads (0 = ONNX Runtime's choice)."
    )
    batch_size: int = Field(default=32, ge=1, le=4096)
    max_tokens: int | None = Field(
        default=None, ge=8, description="Truncate inputs to this many tokens (default: model card)."
    )
    cache_entries: int = Field(default=10_000, ge=0, description="Embedding LRU cache size.")
    graph_optimization: Literal["disable", "basic", "extended", "all"] = Field(
        default="all", description="ONNX Runtime graph optimisation level."
    )
    memory_arena: bool = Field(default=True, description="Keep ONNX Runtime's CPU memory arena.")
    breaker_failure_threshold: int = Field(
        default=3, ge=1, description="Consecutive provider failures that open its circuit."
    )
    breaker_cooldown_s: float = Field(
        default=30.0, ge=0, description="Seconds an open circuit waits before a probe call."
    )
    provider_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Deadline of one call on a GPU provider before falling back (unset = none).",
    )
