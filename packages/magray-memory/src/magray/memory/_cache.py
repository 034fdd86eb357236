"""Bounded caches: an LRU of embeddings keyed by (model id, text hash), and search-hit rows."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

import numpy as np

from magray.memory._types import Layer

__all__ = ["BoundedLRU", "EmbeddingCache", "HitRow", "HitRowCache", "text_hash"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

HitRow = tuple[str, str, str, Layer]
"""What a search hit shows of a record: ``(id, text, metadata JSON, layer)``."""


def text_hash(text: str) -> str:
    """SHA-256 of the UTF-8 text (hex); also the record's content hash."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Counted:
    """Byte and hit/miss bookkeeping shared by the caches."""

    max_bytes: int
    _bytes: int
    hits: int
    misses: int

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        return self._bytes

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def stats(self) -> dict[str, float | int | None]:
        return {
            "entries": len(self),
            "bytes": self._bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
        }


class BoundedLRU(_Counted, Generic[K, V]):
    """A thread-safe LRU bounded both in entries and in (estimated) bytes, with hit/miss counts.

    Args:
        max_entries: Most entries kept (0 disables the cache).
        max_bytes: Most bytes kept, as estimated by ``size``.
        size: Estimated bytes of one value.
    """

    def __init__(self, *, max_entries: int, max_bytes: int, size: Callable[[V], int]) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def get_many(self, keys: Iterable[K]) -> tuple[dict[K, V], list[K]]:
        """``(found, missing)`` for ``keys``, in one lock; found entries become most recent."""
        found: dict[K, V] = {}
        missing: list[K] = []
        with self._lock:
            data = self._data
            for key in keys:
                value = data.get(key)
                if value is None:
                    missing.append(key)
                else:
                    data.move_to_end(key)
                    found[key] = value
            self.hits += len(found)
            self.misses += len(missing)
        return found, missing

    def put(self, key: K, value: V) -> None:
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[K, V]]) -> None:
        if self.max_entries <= 0:
            return
        size = self._size
        with self._lock:
            data = self._data
            for key, value in items:
                nbytes = size(value)
                if nbytes > self.max_bytes:
                    continue
                old = data.pop(key, None)
                if old is not None:
                    self._bytes -= size(old)
                data[key] = value
                self._bytes += nbytes
            while len(data) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = data.popitem(last=False)
                self._bytes -= size(evicted)

    def discard(self, keys: Iterable[K]) -> None:
        with self._lock:
            for key in keys:
                old = self._data.pop(key, None)
                if old is not None:
                    self._bytes -= self._size(old)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def stats(self) -> dict[str, float | int | None]:
        return {**super().stats(), "max_entries": self.max_entries}


class EmbeddingCache(BoundedLRU[tuple[str, str], np.ndarray]):
    """Embeddings keyed by (model id, text hash); stored read-only copies.

    Args:
        max_entries: Most vectors kept (0 disables the cache).
        max_bytes: Most vector bytes kept.
    """

    def __init__(self, *, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        super().__init__(max_entries=max_entries, max_bytes=max_bytes, size=_nbytes)

    def get(self, model_id: str, key: str) -> np.ndarray | None:  # type: ignore[override]
        return super().get((model_id, key))

    def put(self, model_id: str, key: str, vector: np.ndarray) -> None:  # type: ignore[override]
        if self.max_entries <= 0 or vector.nbytes > self.max_bytes:
            return
        vector = np.array(vector, dtype=np.float32)
        vector.setflags(write=False)
        super().put((model_id, key), vector)


def _nbytes(vector: np.ndarray) -> int:
    return int(vector.nbytes)


# Python object overhead of one cached row (tuple, three str headers, queue entry), measured
# with sys.getsizeof on CPython 3.11; the character data is added per row.
_ROW_OVERHEAD = 300


def _row_bytes(row: HitRow) -> int:
    return _ROW_OVERHEAD + len(row[0]) + len(row[1]) + len(row[2])


class HitRowCache(_Counted):
    """Search-hit rows by record label, bounded in bytes, evicted first in, first out.

    A label's row never changes (any update gives the record a new label, and labels are
    never reused), so entries never go stale; rows are written through on insert, so
    searches over recently added records need no SQLite read at all.

    Rows live in a list indexed by label rather than in a dict: a search reads ten random
    rows right after faiss has walked its graph, when nothing is in the CPU cache, and a
    list slot is one memory access where a dict probe is three (index, entry, key object):
    7 µs of a 0.13 ms search at 100k. The list covers labels below ``slot_labels`` (8 bytes
    each, grown on demand); rows of higher labels (a store with much churn) go to a dict.
    A hit does not move its row to the back of the queue (an LRU's relinking costs more on
    the hot path than the rare re-read of an evicted popular row).

    Args:
        max_bytes: Estimated bytes of rows kept (0 disables the cache).
        slot_labels: Labels below this are kept in the list (default: 2M, or more with a
            larger budget).
    """

    def __init__(self, *, max_bytes: int, slot_labels: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.slot_labels = slot_labels if slot_labels is not None else max(1 << 21, max_bytes // 32)
        self._slots: list[HitRow | None] = []
        self._overflow: dict[int, HitRow] = {}
        self._order: deque[int] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def lookup(self, labels: list[int]) -> tuple[list[HitRow | None], bool]:
        """The cached row of each label (None where not cached), and whether any is missing."""
        slots = self._slots  # only ever grows while referenced (clear() replaces it)
        if labels and max(labels) < len(slots):
            rows = [slots[label] for label in labels]
        else:
            size, overflow = len(slots), self._overflow
            rows = [slots[lb] if lb < size else overflow.get(lb) for lb in labels]
        missing = rows.count(None)
        with self._lock:
            self.hits += len(rows) - missing
            self.misses += missing
        return rows, missing > 0

    def reserve(self, labels: int) -> None:
        """Make room for labels below ``labels`` now (a store opens with its highest label),
        so no search pays for growing the list: 7 ms for 1M labels."""
        if self.max_bytes <= 0:
            return
        with self._lock:
            size = min(labels, self.slot_labels)
            if size > len(self._slots):
                self._slots.extend([None] * (size - len(self._slots)))

    def put_many(self, items: Iterable[tuple[int, HitRow]]) -> None:
        if self.max_bytes <= 0:
            return
        with self._lock:
            slots, overflow, order = self._slots, self._overflow, self._order
            for label, row in items:
                nbytes = _row_bytes(row)
                if nbytes > self.max_bytes:
                    continue
                if label < self.slot_labels:
                    if label >= len(slots):
                        grow = min(self.slot_labels, max(label + 1, 2 * len(slots), 1024))
                        slots.extend([None] * (grow - len(slots)))
                    if slots[label] is not None:
                        continue
                    slots[label] = row
                else:
                    if label in overflow:
                        continue
                    overflow[label] = row
                order.append(label)
                self._bytes += nbytes
            while self._bytes > self.max_bytes:
                label = order.popleft()
                if label < len(slots):
                    evicted = slots[label]
                    slots[label] = None
                else:
                    evicted = overflow.pop(label)
                assert evicted is not None
                self._bytes -= _row_bytes(evicted)

    def put(self, label: int, row: HitRow) -> None:
        self.put_many([(label, row)])

    def fill(self, items: Iterable[tuple[int, HitRow]]) -> tuple[int, bool]:
        """Add rows while they fit without evicting any: ``(rows added, cache full)``."""
        full, fitting = self.max_bytes <= 0, []
        room = self.max_bytes - self._bytes
        for label, row in items:
            nbytes = _row_bytes(row)
            if nbytes > room:
                full = True
                break
            room -= nbytes
            fitting.append((label, row))
        before = len(self)
        self.put_many(fitting)
        return len(self) - before, full

    def clear(self) -> None:
        with self._lock:
            self._slots = []
            self._overflow = {}
            self._order = deque()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, label: object) -> bool:
        if not isinstance(label, int):
            return False
        if label < len(self._slots):
            return self._slots[label] is not None
        return label in self._overflow
