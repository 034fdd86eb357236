"""In-process metrics: counters, gauges and latency histograms.

Every package reports into a :class:`MetricsRegistry`. Components take one as
an optional argument and fall back to the process-wide :func:`default_registry`
(the one deliberate module-level object, like the stdlib's root logger).
Histograms keep exact count/sum/min/max and a bounded uniform reservoir of
samples, so p50/p95/p99 stay cheap however many observations arrive.

::

    metrics = default_registry()
    metrics.counter("memory.search.calls").inc()
    with metrics.histogram("memory.search.latency_ms").time():
        ...
    metrics.snapshot()["histograms"]["memory.search.latency_ms"]["p95"]
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "Counter",
    "Gauge",
    "Histogram",
    "MetricsRegistry",
    "default_registry",
    "load_state",
    "persist",
]


def _key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{name}{{{inner}}}"


class Counter:
    """A monotonically increasing count."""

    def __init__(self) -> None:
        self._value = 0.0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up; use a Gauge")
        with self._lock:
            self._value += amount

    @property
    def value(self) -> float:
        return self._value


class Gauge:
    """A value that goes up and down."""

    def __init__(self) -> None:
        self._value = 0.0
        self._lock = threading.Lock()

    def set(self, value: float) -> None:
        with self._lock:
            self._value = float(value)

    def add(self, amount: float) -> None:
        with self._lock:
            self._value += amount

    @property
    def value(self) -> float:
        return self._value


class Histogram:
    """Distribution of observations (e.g. latencies in ms) with percentiles.

    Args:
        reservoir: Maximum samples kept for percentiles (uniform reservoir
            sampling, Vitter's algorithm R, so old and new samples are equally
            represented).
        seed: Seed of the sampling RNG (for reproducible tests).
    """

    def __init__(self, *, reservoir: int = 4096, seed: int | None = None) -> None:
        self._size = reservoir
        self._samples: list[float] = []
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        value = float(value)
        with self._lock:
            self._count += 1
            self._sum += value
            self._min = min(self._min, value)
            self._max = max(self._max, value)
            if len(self._samples) < self._size:
                self._samples.append(value)
            else:  # keep it with probability size/count (random() is 5x cheaper than randrange)
                slot = int(self._rng.random() * self._count)
                if slot < self._size:
                    self._samples[slot] = value

    @contextlib.contextmanager
    def time(self) -> Iterator[None]:
        """Observe the block's wall time in milliseconds."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe((time.perf_counter() - start) * 1000.0)

    @property
    def count(self) -> int:
        return self._count

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0–100) of the sampled values, linear interpolation."""
        with self._lock:
            data = sorted(self._samples)
        if not data:
            return None
        if len(data) == 1:
            return data[0]
        pos = (len(data) - 1) * (q / 100.0)
        lo = math.floor(pos)
        hi = min(lo + 1, len(data) - 1)
        return data[lo] + (data[hi] - data[lo]) * (pos - lo)

    def state(self) -> dict[str, Any]:
        """Everything needed to merge this histogram elsewhere (JSON-serialisable)."""
        with self._lock:
            return {
                "count": self._count,
                "sum": self._sum,
                "min": self._min if self._count else None,
                "max": self._max if self._count else None,
                "samples": list(self._samples),
            }

    def merge_state(self, state: dict[str, Any]) -> None:
        """Fold another histogram's :meth:`state` into this one.

        Counts, sums and extremes merge exactly; the reservoirs merge by
        sampling each side in proportion to the observations it stands for.
        """
        count = int(state.get("count") or 0)
        if count <= 0:
            return
        other = [float(v) for v in state.get("samples", [])]
        with self._lock:
            total = self._count + count
            mine = self._samples
            if len(mine) + len(other) > self._size:
                keep_mine = round(self._size * self._count / total)
                keep_other = self._size - keep_mine
                mine = self._rng.sample(mine, min(keep_mine, len(mine)))
                other = self._rng.sample(other, min(keep_other, len(other)))
            self._samples = mine + other
            self._count = total
            self._sum += float(state.get("sum") or 0.0)
            if state.get("min") is not None:
                self._min = min(self._min, float(state["min"]))
            if state.get("max") is not None:
                self._max = max(self._max, float(state["max"]))

    def summary(self) -> dict[str, float | int | None]:
        count = self._count
        return {
            "count": count,
            "sum": self._sum,
            "mean": self._sum / count if count else None,
            "min": self._min if count else None,
            "max": self._max if count else None,
            "p50": self.percentile(50),
            "p95": self.percentile(95),
            "p99": self.percentile(99),
        }


class MetricsRegistry:
    """Named metrics with optional labels; get-or-create, thread-safe."""

    def __init__(self) -> None:
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._histograms: dict[str, Histogram] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, **labels: str) -> Counter:
        key = _key(name, labels)
        with self._lock:
            return self._counters.setdefault(key, Counter())

    def gauge(self, name: str, **labels: str) -> Gauge:
        key = _key(name, labels)
        with self._lock:
            return self._gauges.setdefault(key, Gauge())

    def histogram(self, name: str, **labels: str) -> Histogram:
        key = _key(name, labels)
        with self._lock:
            return self._histograms.setdefault(key, Histogram())

    def snapshot(self) -> dict[str, Any]:
        """``{"counters": {...}, "gauges": {...}, "histograms": {name: summary}}``."""
        with self._lock:
            counters = dict(self._counters)
            gauges = dict(self._gauges)
            histograms = dict(self._histograms)
        return {
            "counters": {k: c.value for k, c in sorted(counters.items())},
            "gauges": {k: g.value for k, g in sorted(gauges.items())},
            "histograms": {k: h.summary() for k, h in sorted(histograms.items())},
        }

    def state(self) -> dict[str, Any]:
        """A JSON-serialisable state that :meth:`merge_state` can fold back in."""
        with self._lock:
            counters = dict(self._counters)
            gauges = dict(self._gauges)
            histograms = dict(self._histograms)
        return {
            "counters": {k: c.value for k, c in counters.items()},
            "gauges": {k: g.value for k, g in gauges.items()},
            "histograms": {k: h.state() for k, h in histograms.items()},
        }

    def merge_state(self, state: dict[str, Any]) -> None:
        """Add another registry's :meth:`state`: counters sum, gauges take the
        other's value, histograms merge (see :meth:`Histogram.merge_state`)."""
        for key, value in state.get("counters", {}).items():
            with self._lock:
                counter = self._counters.setdefault(key, Counter())
            counter.inc(float(value))
        for key, value in state.get("gauges", {}).items():
            with self._lock:
                gauge = self._gauges.setdefault(key, Gauge())
            gauge.set(float(value))
        for key, hstate in state.get("histograms", {}).items():
            with self._lock:
                hist = self._histograms.setdefault(key, Histogram())
            hist.merge_state(hstate)

    def is_empty(self) -> bool:
        with self._lock:
            return not (self._counters or self._gauges or self._histograms)

    def reset(self) -> None:
        with self._lock:
            self._counters.clear()
            self._gauges.clear()
            self._histograms.clear()


_DEFAULT = MetricsRegistry()


def default_registry() -> MetricsRegistry:
    """The process-wide registry used when a component is given none."""
    return _DEFAULT


def load_state(path: Path) -> dict[str, Any]:
    """Read a state file written by :func:`persist`; missing or corrupt gives ``{}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def persist(registry: MetricsRegistry, path: Path) -> None:
    """Merge ``registry`` into the state file at ``path`` (locked, atomic).

    This is how metrics outlive one CLI run: each run folds its own
    observations into ``<data>/metrics.json`` and ``magray status`` reads it.
    """
    from filelock import FileLock

    from magray.common.fs import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=10):
        merged = MetricsRegistry()
        merged.merge_state(load_state(path))
        merged.merge_state(registry.state())
        state = merged.state()
        state["updated_at"] = time.time()
        atomic_write_text(path, json.dumps(state))
