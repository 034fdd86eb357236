"""LangChain integration for magray memory.

``MagrayVectorStore`` is a LangChain ``VectorStore`` over a magray ``MemoryStore``
(local SQLite + faiss, or PostgreSQL + pgvector), ``MagrayRetriever`` a retriever
over it, and ``MagrayEmbeddings`` LangChain ``Embeddings`` over magray-ai's local
ONNX embedder.
"""

from __future__ import annotations

from importlib.metadata import version as _version

from langchain_magray.embeddings import MagrayEmbeddings
from langchain_magray.retrievers import MagrayRetriever
from langchain_magray.vectorstores import MagrayVectorStore

__version__ = _version("langchain-magray")

__all__ = [
    "__version__",
    # vector store and retriever
    "MagrayVectorStore",
    "MagrayRetriever",
    # embeddings
    "MagrayEmbeddings",
]
