"""Entry-point factories: ``magray.embedders`` / ``magray.rerankers`` ``default``."""

from __future__ import annotations

from typing import Any

from magray.ai._embedder import Embedder
from magray.ai._reranker import Reranker

__all__ = ["create_embedder", "create_reranker"]


def create_embedder(**options: Any) -> Embedder:
    """The configured embedder (``[ai]`` settings), with ``options`` overriding them.

    Options are :class:`~magray.ai.Embedder` keyword arguments plus ``model``
    (a registry name) and ``settings`` (an ``AISettings``).
    """
    settings = options.pop("settings", None)
    model = options.pop("model", None)
    return Embedder.from_settings(settings, model=model, **options)


def create_reranker(**options: Any) -> Reranker:
    """The configured cross-encoder reranker.

    Raises:
        ModelNotFoundError: no ``rerank`` model is registered; magray never
            substitutes a fake reranker.
    """
    settings = options.pop("settings", None)
    model = options.pop("model", None)
    return Reranker.from_settings(settings, model=model, **options)
