"""``MagrayEmbeddings``: LangChain embeddings over a magray embedder (magray-ai's by default)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from magray.memory import Embedder

__all__ = ["MagrayEmbeddings"]


class MagrayEmbeddings(Embeddings):
    """Embeddings from a magray embedder, run locally (no API key, no network).

    Args:
        model: Name of an embedder in the ``magray.embedders`` entry points;
            ``"default"`` is magray-ai's local ONNX model (``pip install
            "langchain-magray[ai]"``).
        embedder: An embedder object instead of a name (anything with
            ``model_id``, ``dim`` and ``embed(texts) -> float32 (n, dim)``).

    The model loads on first use. Vectors are L2-normalised.

    Example:
        >>> from langchain_magray import MagrayEmbeddings
        >>> emb = MagrayEmbeddings()
        >>> len(emb.embed_query("hello"))  # doctest: +SKIP
        384
    """

    def __init__(self, model: str = "default", *, embedder: Embedder | None = None) -> None:
        self.model = model
        self._embedder = embedder
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        """The magray embedder (loaded on first access)."""
        with self._lock:
            if self._embedder is None:
                from magray.memory import load_embedder

                self._embedder = load_embedder(self.model)
            return self._embedder

    @property
    def model_id(self) -> str:
        """The embedder's model id (what a magray store is pinned to)."""
        return self.embedder.model_id

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self.embedder.dim

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents; one list of floats per text."""
        if not texts:
            return []
        return [[float(x) for x in row] for row in self.embedder.embed(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        """Embed one query text."""
        return self.embed_documents([text])[0]

    def __repr__(self) -> str:
        return f"MagrayEmbeddings(model={self.model!r})"
