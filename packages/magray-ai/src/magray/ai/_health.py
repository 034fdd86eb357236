"""magray-ai's health checks (registered through the ``magray.health`` entry point)."""

from __future__ import annotations

from typing import Any

from magray.common.health import HealthRegistry, HealthResult

__all__ = ["register"]


def register(registry: HealthRegistry, settings: Any) -> None:
    """Add ``ai.embedding_model``, ``ai.reranker`` and ``ai.providers``."""
    ai = getattr(settings, "ai", None)
    registry.register("ai.embedding_model", lambda: _embedding_model(ai))
    registry.register("ai.reranker", lambda: _reranker(ai))
    registry.register("ai.providers", lambda: _providers(ai))


def _registry(ai: Any) -> Any:
    from magray.ai._registry import ModelRegistry

    return ModelRegistry(models_dir=getattr(ai, "models_dir", None))


def _embedding_model(ai: Any) -> HealthResult:
    from magray.common.errors import MagrayError

    name = getattr(ai, "embedding_model", "default")
    try:
        registry = _registry(ai)
        resolved = registry.resolve(name)
        actual, expected = registry.check_hash(name)
    except MagrayError as exc:
        return HealthResult.failed(exc.message, hint=exc.hint)
    return HealthResult.ok(
        f"{resolved.card.name} ({resolved.card.variant}, {resolved.card.dim}-d) installed",
        location=resolved.location,
        sha256_pinned=expected is not None,
        sha256=actual,
    )


def _reranker(ai: Any) -> HealthResult:
    from magray.common.errors import MagrayError

    name = getattr(ai, "reranker", None)
    if not name:
        return HealthResult.ok("no reranker configured (ai.reranker unset)")
    try:
        resolved = _registry(ai).resolve(name)
    except MagrayError as exc:
        return HealthResult.failed(exc.message, hint=exc.hint)
    return HealthResult.ok(f"{resolved.card.name} installed", location=resolved.location)


def _providers(ai: Any) -> HealthResult:
    from magray.ai._providers import available_providers, select_providers

    chosen = select_providers(
        force_cpu=bool(getattr(ai, "force_cpu", False)),
        preferred=list(getattr(ai, "providers", []) or []),
    )
    from magray.common.metrics import default_registry

    available = available_providers()
    counters = default_registry().snapshot()["counters"]
    stats = {k: v for k, v in counters.items() if k.startswith("ai.provider.")}
    message = f"using {chosen[0]}" + (
        " with CPU fallback" if len(chosen) > 1 else " (no GPU provider)"
    )
    fallbacks = sum(v for k, v in stats.items() if k.startswith("ai.provider.fallbacks"))
    if fallbacks:
        return HealthResult.degraded(
            f"{message}; {fallbacks:g} call(s) fell back to another provider in this process",
            available=available,
            selected=chosen,
            stats=stats,
        )
    return HealthResult.ok(message, available=available, selected=chosen, stats=stats)
