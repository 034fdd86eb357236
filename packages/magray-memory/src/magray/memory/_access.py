"""Buffered access counting for search hits, shared by the backends.

A search appends its hit ids to a log (one list append, no per-id work on the hot path);
the log is folded into ``(count, last_access, id)`` rows only when the backend writes them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

__all__ = ["TOUCH_FLUSH_SECONDS", "TOUCH_FLUSH_HITS", "AccessLog"]

# Search hits are counted in memory and written with the next write, on close, when this
# many hits are pending, or after this many seconds (whichever comes first).
TOUCH_FLUSH_SECONDS = 30.0
TOUCH_FLUSH_HITS = 8192


class AccessLog:
    """Pending search hits; not thread-safe (the backend holds its lock around it)."""

    def __init__(self) -> None:
        self._log: list[tuple[Sequence[str], float]] = []
        self._pending = 0
        self._since = time.monotonic()

    def add(self, ids: Sequence[str], now: float) -> bool:
        """Log one search's hits; True when the buffer is due to be written."""
        self._log.append((ids, now))
        self._pending += len(ids)
        return (
            self._pending >= TOUCH_FLUSH_HITS
            or time.monotonic() - self._since > TOUCH_FLUSH_SECONDS
        )

    def __len__(self) -> int:
        """Hits pending (an id hit twice counts twice)."""
        return self._pending

    def drain(self) -> list[tuple[int, float, str]]:
        """``(count, last access, id)`` per id hit since the last drain, sorted by id
        (a fixed lock order for the UPDATEs), and an empty log."""
        folded: dict[str, tuple[int, float]] = {}
        for ids, now in self._log:
            for record_id in ids:
                count, last = folded.get(record_id, (0, now))
                folded[record_id] = (count + 1, max(last, now))
        self._log = []
        self._pending = 0
        self._since = time.monotonic()
        return [(count, last, record_id) for record_id, (count, last) in sorted(folded.items())]
