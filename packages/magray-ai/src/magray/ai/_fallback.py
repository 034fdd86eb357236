"""Send work to the preferred execution provider, fall back on errors, with a circuit breaker.

:class:`FallbackManager` holds backends best first (e.g. CUDA, then CPU). A
call goes to the first backend whose :class:`CircuitBreaker` allows it; an
exception or a timeout counts as a failure and the next backend is tried. The
last backend (CPU) has no breaker: it is the floor. Breakers move
``closed → open`` after ``failure_threshold`` consecutive failures, ``open →
half_open`` once ``cooldown_s`` has passed on the injected clock (one probe call
is let through), and ``half_open → closed`` on the probe's success (or back to
``open`` on its failure).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from magray.ai.errors import InferenceError
from magray.common.metrics import Histogram, MetricsRegistry, default_registry

__all__ = ["Backend", "BreakerState", "CircuitBreaker", "FallbackManager", "ProviderStats"]

Clock = Callable[[], float]


class Backend(Protocol):
    """Something that runs a model graph: ``run(feeds) -> outputs``."""

    @property
    def name(self) -> str: ...

    def run(self, feeds: Mapping[str, Any]) -> list[Any]: ...


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker with a half-open probe.

    Args:
        failure_threshold: Consecutive failures that open the circuit.
        cooldown_s: Seconds the circuit stays open before one probe is allowed.
        clock: Monotonic clock in seconds (injected in tests).
    """

    def __init__(
        self, *, failure_threshold: int = 3, cooldown_s: float = 30.0, clock: Clock = time.monotonic
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._lock = threading.Lock()
        self.transitions: list[tuple[BreakerState, BreakerState]] = []

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._maybe_half_open()
            return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """Whether a call may go to the guarded backend now (claims the probe when half-open)."""
        with self._lock:
            self._maybe_half_open()
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._probe_in_flight = False
            if self._state is not BreakerState.CLOSED:
                self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._probe_in_flight = False
            if self._state is BreakerState.HALF_OPEN or (
                self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
            ):
                self._opened_at = self._clock()
                self._move(BreakerState.OPEN)

    def _maybe_half_open(self) -> None:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown_s:
            self._move(BreakerState.HALF_OPEN)

    def _move(self, new: BreakerState) -> None:
        self.transitions.append((self._state, new))
        self._state = new


@dataclass
class ProviderStats:
    """Counts and latency of one backend."""

    name: str
    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    skipped: int = 0
    fallbacks: int = 0
    latency: Histogram | None = None

    def to_dict(self) -> dict[str, Any]:
        summary = self.latency.summary() if self.latency is not None else {}
        return {
            "calls": self.calls,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "skipped_open_circuit": self.skipped,
            "fallbacks": self.fallbacks,
            "latency_ms_p50": summary.get("p50"),
            "latency_ms_p95": summary.get("p95"),
        }


class FallbackManager:
    """Runs each call on the best healthy backend; the last backend is the fallback floor.

    Args:
        backends: Best first; the last one (normally CPU) is always tried.
        failure_threshold: Consecutive failures that open a backend's circuit.
        cooldown_s: Open-circuit cooldown before a half-open probe.
        timeout_s: Per-call deadline for the non-final backends (``None`` = none).
            A call that overruns counts as a failure and the work is redone on
            the next backend.
        clock: Monotonic clock for the breakers (injected in tests).
        metrics: Where ``ai.provider.*`` counters and latencies go.
    """

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        timeout_s: float | None = None,
        clock: Clock = time.monotonic,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        if not backends:
            raise ValueError("at least one backend is needed")
        self.backends = list(backends)
        self.timeout_s = timeout_s
        self._metrics = metrics or default_registry()
        self.breakers = {
            b.name: CircuitBreaker(
                failure_threshold=failure_threshold, cooldown_s=cooldown_s, clock=clock
            )
            for b in self.backends[:-1]
        }
        self._stats = {
            b.name: ProviderStats(b.name, latency=Histogram(reservoir=1024)) for b in self.backends
        }
        self._stats_lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @property
    def provider_names(self) -> list[str]:
        return [b.name for b in self.backends]

    def run(self, feeds: Mapping[str, Any]) -> tuple[list[Any], str]:
        """Run ``feeds`` and return ``(outputs, name of the backend that answered)``.

        Raises:
            InferenceError: every backend failed (the last error is chained).
        """
        last_error: BaseException | None = None
        for index, backend in enumerate(self.backends):
            final = index == len(self.backends) - 1
            breaker = self.breakers.get(backend.name)
            if breaker is not None and not breaker.allow():
                self._count(backend.name, "skipped")
                continue
            start = time.perf_counter()
            try:
                if final or self.timeout_s is None:
                    outputs = backend.run(feeds)
                else:
                    outputs = self._run_with_timeout(backend, feeds, self.timeout_s)
            except Exception as exc:
                last_error = exc
                timed_out = isinstance(exc, concurrent.futures.TimeoutError)
                self._count(backend.name, "calls", "failures", *(["timeouts"] if timed_out else []))
                if breaker is not None:
                    breaker.record_failure()
                if not final:
                    self._count(backend.name, "fallbacks")
                continue
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            self._count(backend.name, "calls")
            stats = self._stats[backend.name]
            if stats.latency is not None:
                stats.latency.observe(elapsed_ms)
            self._metrics.histogram("ai.provider.latency_ms", provider=backend.name).observe(
                elapsed_ms
            )
            if breaker is not None:
                breaker.record_success()
            return outputs, backend.name
        raise InferenceError(
            f"inference failed on every execution provider ({', '.join(self.provider_names)}): "
            f"{last_error}",
            hint="check the model with `magray models verify NAME`; "
            "set ai.force_cpu = true (MAGRAY_AI__FORCE_CPU=1) to rule out the GPU",
        ) from last_error

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per backend: counts, latency percentiles and circuit state."""
        result = {}
        for name, stats in self._stats.items():
            entry = stats.to_dict()
            breaker = self.breakers.get(name)
            entry["circuit"] = str(breaker.state) if breaker is not None else "n/a (fallback floor)"
            result[name] = entry
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _run_with_timeout(
        self, backend: Backend, feeds: Mapping[str, Any], timeout: float
    ) -> list[Any]:
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=4, thread_name_prefix="magray-ai-provider"
                )
            pool = self._pool
        future = pool.submit(backend.run, feeds)
        return future.result(timeout=timeout)

    def _count(self, name: str, *fields: str) -> None:
        with self._stats_lock:
            stats = self._stats[name]
            for item in fields:
                setattr(stats, item, getattr(stats, item) + 1)
        for item in fields:
            self._metrics.counter(f"ai.provider.{item}", provider=name).inc()
