"""magray-memory.

magray's embedded vector store: three memory layers with TTL and promotion, SQLite source of
truth, faiss HNSW search.
"""

from __future__ import annotations

from importlib.metadata import version as _version

__version__ = _version("magray-memory")

__all__ = ["__version__"]
