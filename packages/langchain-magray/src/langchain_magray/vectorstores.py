"""``MagrayVectorStore``: a LangChain ``VectorStore`` over a magray ``MemoryStore``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

if TYPE_CHECKING:
    from magray.common.settings import MemorySettings
    from magray.memory import Hit, MemoryStore, Record

__all__ = ["MagrayVectorStore"]


def _model_id(embedding: Embeddings) -> str:
    """A stable name for an embeddings object (what the store is pinned to)."""
    own = getattr(embedding, "model_id", None)
    if isinstance(own, str) and own:
        return own
    for attr in ("model", "model_name"):
        value = getattr(embedding, attr, None)
        if isinstance(value, str) and value:
            return f"langchain:{type(embedding).__name__}:{value}"
    return f"langchain:{type(embedding).__name__}"


class MagrayVectorStore(VectorStore):
    """LangChain vector store backed by magray memory.

    Give exactly one of ``path`` (a local store directory: SQLite + faiss), ``dsn``
    (``postgresql://...``: PostgreSQL + pgvector, ``pip install
    "langchain-magray[postgres]"``) or ``store`` (an open ``MemoryStore``).

    Args:
        embedding: The LangChain embeddings used for documents and queries.
        path: Local store directory (created if missing).
        dsn: PostgreSQL DSN; ``?schema=NAME`` selects the store's schema.
        store: An open magray ``MemoryStore`` (not closed by :meth:`close`).
        layer: magray layer new documents go to. ``"assets"`` (the default) never
            expires; ``"interact"`` expires after the store's TTL (24 h by default).
        settings: magray ``MemorySettings`` for a store opened from ``path``/``dsn``.
            Text dedupe is off unless these settings turn it on: LangChain expects
            every added document to be kept under its own id.

    Scores from ``similarity_search_with_score`` are cosine similarities (higher
    is better); relevance scores map them to ``[0, 1]`` as ``(1 + cos) / 2``.
    ``filter`` takes magray's filter grammar, e.g. ``{"source": "a.md"}`` or
    ``{"year": {"$gte": 2020}}``.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> vs = MagrayVectorStore(embedding=DeterministicFakeEmbedding(size=8), path="mem")
        >>> vs.add_texts(["cats sleep a lot"], metadatas=[{"k": "pets"}])  # doctest: +SKIP
    """

    def __init__(
        self,
        embedding: Embeddings,
        *,
        path: str | Path | None = None,
        dsn: str | None = None,
        store: MemoryStore | None = None,
        layer: str = "assets",
        settings: MemorySettings | None = None,
    ) -> None:
        from magray.common.errors import InvalidInputError
        from magray.memory import Layer

        given = [name for name, v in (("path", path), ("dsn", dsn), ("store", store)) if v]
        if len(given) != 1:
            raise InvalidInputError(
                f"give exactly one of path, dsn or store (got {', '.join(given) or 'none'})",
                hint="MagrayVectorStore(embedding=..., path='./memory') for a local store, "
                "dsn='postgresql://...' for PostgreSQL, or store=an_open_MemoryStore",
            )
        self.embedding = embedding
        self.layer = Layer.parse(layer)
        self._owns_store = store is None
        if store is None:
            store = self._open(embedding, path or dsn, settings)
        self.store: MemoryStore = store

    @staticmethod
    def _open(
        embedding: Embeddings, location: str | Path | None, settings: MemorySettings | None
    ) -> MemoryStore:
        from magray.common.errors import InvalidInputError
        from magray.common.settings import MemorySettings
        from magray.memory import MemoryStore

        settings = settings or MemorySettings(dedupe=False)
        model_id = _model_id(embedding)
        try:  # an existing store knows its dim
            return MemoryStore.open(location, None, model_id=model_id, settings=settings)
        except InvalidInputError as exc:
            if "dimension is unknown" not in str(exc):
                raise
        dim = len(embedding.embed_query("dimension probe"))
        return MemoryStore.open(location, None, dim=dim, model_id=model_id, settings=settings)

    # ------------------------------------------------------------ properties
    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    def close(self) -> None:
        """Close the underlying store (unless it was passed in)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> MagrayVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ conversions
    @staticmethod
    def _metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
        meta = dict(metadata or {})
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            from magray.common.errors import InvalidInputError

            raise InvalidInputError(
                f"document metadata must be JSON-serialisable: {exc}",
                hint="use str, int, float, bool, None, lists and dicts as metadata values",
            ) from None
        return meta

    @staticmethod
    def _doc(item: Hit | Record) -> Document:
        return Document(id=item.id, page_content=item.text, metadata=dict(item.metadata))

    # ------------------------------------------------------------ writes
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store texts; an id that exists is overwritten (upsert).

        ``ids`` may hold ``None`` for documents without an id (a new id is made).
        """
        items = list(texts)
        if not items:
            return []
        metas = [self._metadata(m) for m in (metadatas or [{}] * len(items))]
        given: list[str | None] = list(ids) if ids is not None else [None] * len(items)
        if len(metas) != len(items) or len(given) != len(items):
            from magray.common.errors import InvalidInputError

            raise InvalidInputError(
                f"{len(items)} texts but {len(metas)} metadatas and {len(given)} ids",
                hint="pass one metadata dict and one id (or None) per text",
            )
        vectors = np.asarray(self.embedding.embed_documents(items), dtype=np.float32)
        out: list[str] = [""] * len(items)
        # The last occurrence of a repeated id wins, as with repeated upserts.
        last: dict[str, int] = {}
        for i, record_id in enumerate(given):
            if record_id is not None:
                last[record_id] = i
        existing = {r.id for r in self.store.get(list(last))} if last else set()
        for record_id, i in last.items():
            if record_id in existing:
                self.store.update(record_id, text=items[i], metadata=metas[i], vector=vectors[i])
                out[i] = record_id
        fresh = [
            i
            for i, record_id in enumerate(given)
            if record_id is None or (record_id not in existing and last[record_id] == i)
        ]
        if fresh:
            new_ids = self.store.add(
                [items[i] for i in fresh],
                metadata=[metas[i] for i in fresh],
                ids=[given[i] for i in fresh] if any(given[i] for i in fresh) else None,
                vectors=vectors[fresh],
                layer=self.layer,
            )
            for i, record_id in zip(fresh, new_ids, strict=True):
                out[i] = record_id
        for i, record_id in enumerate(given):
            if record_id is not None and not out[i]:
                out[i] = record_id  # an earlier duplicate of an id written later in the batch
        return out

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id (missing ids are ignored). ``ids=None`` deletes nothing."""
        if not ids:
            return False
        self.store.delete(list(ids))
        return True

    # ------------------------------------------------------------ reads
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents with these ids (missing ids are left out)."""
        return [self._doc(r) for r in self.store.get(list(ids))]

    def _search(
        self, vector: list[float], k: int, filter: dict[str, Any] | None, **kwargs: Any
    ) -> list[Hit]:
        if k <= 0:
            return []
        return self.store.search(
            np.asarray(vector, dtype=np.float32), k=k, where=filter, layers=kwargs.get("layers")
        )

    def similarity_search(
        self, query: str, k: int = 4, *, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """Documents most similar to ``query``."""
        return [d for d, _ in self.similarity_search_with_score(query, k, filter=filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, *, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """``(document, cosine similarity)`` pairs, best first."""
        vector = self.embedding.embed_query(query)
        return [(self._doc(h), h.score) for h in self._search(vector, k, filter, **kwargs)]

    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        *,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Documents most similar to a vector."""
        return [self._doc(h) for h in self._search(embedding, k, filter, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return lambda score: (1.0 + score) / 2.0

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Diverse results: MMR over the ``fetch_k`` nearest documents."""
        return self.max_marginal_relevance_search_by_vector(
            self.embedding.embed_query(query), k, fetch_k, lambda_mult, filter=filter, **kwargs
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR by vector (the candidates' vectors are read from the store)."""
        from langchain_core.vectorstores.utils import maximal_marginal_relevance

        hits = self._search(embedding, max(fetch_k, k), filter, **kwargs)
        if not hits:
            return []
        records = {r.id: r for r in self.store.get([h.id for h in hits], with_vector=True)}
        hits = [h for h in hits if h.id in records]
        vectors = np.stack([np.asarray(records[h.id].vector) for h in hits])
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), vectors.tolist(), lambda_mult=lambda_mult, k=k
        )
        return [self._doc(hits[i]) for i in chosen]

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> MagrayVectorStore:
        """Create a store (``path=``, ``dsn=`` or ``store=`` in ``kwargs``) and add texts."""
        store = cls(embedding=embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=list(ids) if ids is not None else None)
        return store
