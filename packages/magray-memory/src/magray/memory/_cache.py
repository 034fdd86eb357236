"""A bounded LRU cache of embeddings keyed by (model id, text hash)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

__all__ = ["EmbeddingCache", "text_hash"]


def text_hash(text: str) -> str:
    """SHA-256 of the UTF-8 text (hex); also the record's content hash."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """LRU bounded both in entries and in bytes, with hit/miss counts.

    Args:
        max_entries: Most vectors kept (0 disables the cache).
        max_bytes: Most vector bytes kept.
    """

    def __init__(self, *, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, model_id: str, key: str) -> np.ndarray | None:
        with self._lock:
            vector = self._data.get((model_id, key))
            if vector is None:
                self.misses += 1
                return None
            self._data.move_to_end((model_id, key))
            self.hits += 1
            return vector

    def put(self, model_id: str, key: str, vector: np.ndarray) -> None:
        if self.max_entries <= 0 or vector.nbytes > self.max_bytes:
            return
        vector = np.array(vector, dtype=np.float32)
        vector.setflags(write=False)
        with self._lock:
            old = self._data.pop((model_id, key), None)
            if old is not None:
                self._bytes -= old.nbytes
            self._data[(model_id, key)] = vector
            self._bytes += vector.nbytes
            while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._data.popitem(last=False)
                self._bytes -= evicted.nbytes

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        return self._bytes

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def stats(self) -> dict[str, float | int | None]:
        return {
            "entries": len(self._data),
            "bytes": self._bytes,
            "max_entries": self.max_entries,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
        }
