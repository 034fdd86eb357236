"""A thread-safe LRU cache of embedding vectors keyed by ``(model_id, text)``."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from magray.common.metrics import MetricsRegistry, default_registry

__all__ = ["EmbeddingCache"]


class EmbeddingCache:
    """Least-recently-used vectors with hit/miss counts.

    Args:
        max_entries: Capacity (0 disables the cache).
        metrics: Where ``ai.cache.hits`` / ``ai.cache.misses`` go.
    """

    def __init__(self, max_entries: int, *, metrics: MetricsRegistry | None = None) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._metrics = metrics or default_registry()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, model_id: str, text: str) -> np.ndarray | None:
        if self.max_entries == 0:
            return None
        key = (model_id, text)
        with self._lock:
            vector = self._data.get(key)
            if vector is None:
                self.misses += 1
            else:
                self._data.move_to_end(key)
                self.hits += 1
        self._metrics.counter("ai.cache.misses" if vector is None else "ai.cache.hits").inc()
        return vector

    def put(self, model_id: str, text: str, vector: np.ndarray) -> None:
        if self.max_entries == 0:
            return
        stored = np.array(vector, dtype=np.float32, copy=True)
        stored.setflags(write=False)
        with self._lock:
            self._data[(model_id, text)] = stored
            self._data.move_to_end((model_id, text))
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def stats(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "entries": len(self._data),
            "max_entries": self.max_entries,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": (self.hits / total) if total else None,
        }
