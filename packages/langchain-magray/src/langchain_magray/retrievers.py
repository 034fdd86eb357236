"""``MagrayRetriever``: a LangChain retriever over magray memory."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from langchain_magray.vectorstores import MagrayVectorStore

__all__ = ["MagrayRetriever"]


class MagrayRetriever(BaseRetriever):
    """Top-``k`` documents of a :class:`MagrayVectorStore` for a query.

    Args:
        vectorstore: The store to search.
        k: Documents to return (``invoke(query, k=3)`` overrides it per call).
        filter: magray filter applied to every search, e.g. ``{"project": "infra"}``.
        layers: magray layers to search (default: all).

    Example:
        >>> retriever = MagrayRetriever(vectorstore=vs, k=3)  # doctest: +SKIP
        >>> retriever.invoke("where is the deploy key")  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: MagrayVectorStore
    k: int = Field(default=4, ge=1)
    filter: dict[str, Any] | None = None
    layers: list[str] | None = None

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        **kwargs: Any,
    ) -> list[Document]:
        k = int(kwargs.pop("k", self.k))
        where = kwargs.pop("filter", self.filter)
        layers = kwargs.pop("layers", self.layers)
        return self.vectorstore.similarity_search(query, k, filter=where, layers=layers)
