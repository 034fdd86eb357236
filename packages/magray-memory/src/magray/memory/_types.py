"""Value types of the public API: layers, records, hits and the plugin protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Embedder", "Hit", "Layer", "Record", "Reranker"]


class Layer(StrEnum):
    """The three memory layers, from most to least volatile."""

    INTERACT = "interact"
    """Raw interactions; expire after ``ttl_interact_hours`` (24 h by default)."""
    INSIGHTS = "insights"
    """Distilled or often-used memories; expire after ``ttl_insights_days`` (90 d)."""
    ASSETS = "assets"
    """Permanent knowledge; never expires."""

    @classmethod
    def parse(cls, value: str | Layer) -> Layer:
        """The layer named ``value``, or :class:`~magray.common.errors.InvalidInputError`."""
        try:
            return cls(value)
        except ValueError:
            from magray.common.errors import InvalidInputError

            names = ", ".join(layer.value for layer in cls)
            raise InvalidInputError(
                f"unknown memory layer {value!r}", hint=f"use one of: {names}"
            ) from None

    @property
    def next(self) -> Layer | None:
        """The layer a promotion moves a record to (``None`` for assets)."""
        order = list(Layer)
        i = order.index(self)
        return order[i + 1] if i + 1 < len(order) else None


@dataclass(slots=True)
class Hit:
    """One search result.

    Attributes:
        id: The record's id.
        score: Cosine similarity (inner product of normalised vectors), higher
            is better; the reranker's score when ``rerank=True`` reranked.
        text: The record's text.
        metadata: The record's metadata.
        layer: The layer the record lives in.
    """

    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    layer: Layer


@dataclass(frozen=True, slots=True)
class Record:
    """A stored memory with its bookkeeping fields (times are Unix seconds)."""

    id: str
    layer: Layer
    text: str
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    last_access: float
    access_count: int
    importance: float
    expires_at: float | None
    pinned: bool
    content_hash: str
    model_id: str
    dim: int
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self, *, with_vector: bool = False) -> dict[str, Any]:
        """A JSON-friendly dict (the vector as a list of floats when asked for)."""
        out: dict[str, Any] = {
            "id": self.id,
            "layer": self.layer.value,
            "text": self.text,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_access": self.last_access,
            "access_count": self.access_count,
            "importance": self.importance,
            "expires_at": self.expires_at,
            "pinned": self.pinned,
            "content_hash": self.content_hash,
            "model_id": self.model_id,
            "dim": self.dim,
        }
        if with_vector and self.vector is not None:
            out["vector"] = [float(v) for v in self.vector]
        return out


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. ``magray-ai`` registers one as entry point ``default``.

    ``embed`` returns float32 of shape ``(len(texts), dim)``, each row L2-normalised.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, text) pairs; higher is more relevant (a cross-encoder)."""

    def rerank(self, query: str, texts: Sequence[str]) -> np.ndarray: ...
