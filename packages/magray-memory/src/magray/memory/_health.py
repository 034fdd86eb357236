"""magray-memory's health checks (entry-point group ``magray.health``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from magray.common.health import HealthRegistry, HealthResult

__all__ = ["register"]

DAMAGE_WINDOW = 7 * 86400.0
"""Damage events younger than this (seconds) make ``memory.store`` degraded."""


def _store_path(settings: Any) -> Path:
    from magray.common import paths

    configured = getattr(getattr(settings, "memory", None), "path", None)
    return Path(configured) if configured else paths.data_dir() / "memory"


def register(registry: HealthRegistry, settings: Any) -> None:
    """Add ``memory.embedder`` and ``memory.store``."""
    registry.register("memory.embedder", lambda: _embedder(settings))
    registry.register("memory.store", lambda: _store(settings), timeout=120.0)


def _embedder(settings: Any) -> HealthResult:
    from magray.memory._plugins import EMBEDDERS_GROUP, installed

    name = getattr(getattr(settings, "memory", None), "embedder", "default")
    names = installed(EMBEDDERS_GROUP)
    if name in names:
        return HealthResult.ok(f"embedder {name!r} is installed", installed=names)
    return HealthResult.degraded(
        f"no embedder {name!r} installed: text memories need vectors from the caller",
        hint='pip install "magray-memory[ai]"',
        installed=names,
    )


def _store(settings: Any) -> HealthResult:
    """Open the store without an embedder and compare the index with SQLite."""
    from magray.common.errors import MagrayError
    from magray.memory._store import MemoryStore

    memory = getattr(settings, "memory", None)
    if memory is not None and memory.backend == "postgres":
        return _postgres_store(memory)
    path = _store_path(settings)
    if not (path / "memory.db").exists():
        return HealthResult.ok("no memory store yet", path=str(path))
    try:
        with MemoryStore.open(path, embedder=None) as store:
            status = store.stats()["index_status"]
            check = store.consistency()
            pinned = store.pinned
            backend: Any = store.backend
            damage = backend.damage_events(time.time() - DAMAGE_WINDOW)
    except MagrayError as exc:
        return HealthResult.failed(exc.message, path=str(path), hint=exc.hint, code=exc.code)
    bad = [layer for layer, c in check.items() if not c["ok"]]
    details = {"path": str(path), "model_id": pinned[0], "dim": pinned[1], "layers": check}
    if bad:
        return HealthResult.failed(f"index disagrees with SQLite in {', '.join(bad)}", **details)
    if status.get("index") == "rebuilt":
        return HealthResult.degraded(
            f"index was rebuilt from SQLite on open ({status.get('reason')})", **details
        )
    if damage:
        last = damage[0]
        when = datetime.fromtimestamp(last["at"], tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        what = last["details"].get("reason", last["event"])
        return HealthResult.degraded(
            f"{len(damage)} damage event(s) in the last 7 days; last at {when}: {what} "
            "(repaired from SQLite)",
            hint="`magray memory check` verifies the store; check the disk if this recurs",
            damage_events=damage,
            **details,
        )
    return HealthResult.ok("index consistent with SQLite", **details)


def _postgres_store(memory: Any) -> HealthResult:
    """Connect to the configured PostgreSQL store and count its records."""
    from magray.common.errors import MagrayError
    from magray.memory._dsn import redact_dsn as redact
    from magray.memory._store import MemoryStore

    if not memory.dsn:
        return HealthResult.failed(
            "memory.backend is 'postgres' but memory.dsn is not set",
            hint="set MAGRAY_MEMORY__DSN=postgresql://user@host/db (or memory.dsn in the config)",
        )
    where = redact(memory.dsn)
    try:
        with MemoryStore.open(memory.dsn, embedder=None, settings=memory) as store:
            check = store.consistency()
            pinned = store.pinned
    except MagrayError as exc:
        if "dimension is unknown" in exc.message:
            return HealthResult.ok("postgres reachable; no memory store yet", dsn=where)
        return HealthResult.failed(exc.message, dsn=where, hint=exc.hint)
    records = sum(int(c["records"]) for c in check.values())
    details = {"dsn": where, "model_id": pinned[0], "dim": pinned[1], "layers": check}
    bad = [layer for layer, c in check.items() if not c["ok"]]
    if bad:
        return HealthResult.failed(
            f"records without a vector of the store's dim in {', '.join(bad)}",
            hint="finish the interrupted reindex: magray memory reindex",
            **details,
        )
    return HealthResult.ok(f"postgres store reachable ({records} records)", **details)
