"""Health checks: named probes that report ok / degraded / failed.

Packages contribute checks through the entry-point group ``magray.health``:
each entry point is a callable ``register(registry, settings)`` that adds its
checks. The CLI (a composition root) builds a :class:`HealthRegistry`, loads
those entry points and runs everything with :meth:`HealthRegistry.run`.

::

    registry = HealthRegistry()
    registry.register("disk", lambda: HealthResult.ok("writable"))
    report = registry.run()
    report.status                # Status.OK
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["HealthCheck", "HealthReport", "HealthRegistry", "HealthResult", "Status"]


class Status(StrEnum):
    """Outcome of a check, ordered from best to worst."""

    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return (Status.OK, Status.DEGRADED, Status.FAILED).index(self)


@dataclass(frozen=True)
class HealthResult:
    """What one check found."""

    status: Status
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, message: str = "ok", **details: Any) -> HealthResult:
        return cls(Status.OK, message, details)

    @classmethod
    def degraded(cls, message: str, **details: Any) -> HealthResult:
        return cls(Status.DEGRADED, message, details)

    @classmethod
    def failed(cls, message: str, **details: Any) -> HealthResult:
        return cls(Status.FAILED, message, details)


HealthCheck = Callable[[], HealthResult]


@dataclass(frozen=True)
class CheckOutcome:
    """A check's result with its name and duration."""

    name: str
    status: Status
    message: str
    details: dict[str, Any]
    duration_ms: float


@dataclass(frozen=True)
class HealthReport:
    """All check outcomes; ``status`` is the worst of them (ok when there are none)."""

    checks: list[CheckOutcome]

    @property
    def status(self) -> Status:
        worst = Status.OK
        for check in self.checks:
            if check.status.rank > worst.rank:
                worst = check.status
        return worst

    def to_dict(self) -> dict[str, Any]:
        return {"status": str(self.status), "checks": [asdict(c) for c in self.checks]}


class HealthRegistry:
    """Named health checks, each run with a timeout."""

    def __init__(self, *, default_timeout: float = 5.0) -> None:
        self._checks: dict[str, tuple[HealthCheck, float]] = {}
        self._default_timeout = default_timeout

    def register(self, name: str, check: HealthCheck, *, timeout: float | None = None) -> None:
        """Add a check; a second check under the same name replaces the first."""
        self._checks[name] = (check, self._default_timeout if timeout is None else timeout)

    def names(self) -> list[str]:
        return sorted(self._checks)

    def run(self, names: list[str] | None = None) -> HealthReport:
        """Run checks (all by default) concurrently; a raising or slow check is ``failed``."""
        selected = self.names() if names is None else names
        outcomes: list[CheckOutcome] = []
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, min(8, len(selected))), thread_name_prefix="magray-health"
        )
        try:
            started = {
                name: (pool.submit(self._checks[name][0]), time.perf_counter()) for name in selected
            }
            for name, (future, start) in started.items():
                timeout = self._checks[name][1]
                remaining = max(0.0, timeout - (time.perf_counter() - start))
                try:
                    result = future.result(timeout=remaining)
                    if not isinstance(result, HealthResult):
                        result = HealthResult.failed(f"check returned {type(result).__name__}")
                except concurrent.futures.TimeoutError:
                    result = HealthResult.failed(f"timed out after {timeout:g}s")
                except Exception as exc:
                    result = HealthResult.failed(f"{type(exc).__name__}: {exc}")
                outcomes.append(
                    CheckOutcome(
                        name,
                        result.status,
                        result.message,
                        result.details,
                        round((time.perf_counter() - start) * 1000, 3),
                    )
                )
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return HealthReport(outcomes)

    def load_entry_points(self, settings: Any, *, group: str = "magray.health") -> list[str]:
        """Let every installed package register its checks; returns loader errors.

        A plugin that fails to load becomes a ``failed`` check named after it,
        so a broken package shows up in ``magray health`` instead of crashing it.
        """
        from importlib.metadata import entry_points

        errors = []
        for ep in entry_points(group=group):
            try:
                ep.load()(self, settings)
            except Exception as exc:
                message = f"could not load health checks from {ep.value}: {exc}"
                errors.append(message)
                self.register(f"plugin:{ep.name}", _failing(message))
        return errors


def _failing(message: str) -> HealthCheck:
    return lambda: HealthResult.failed(message)
