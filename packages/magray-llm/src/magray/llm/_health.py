"""Health check for ``magray health`` (entry-point group ``magray.health``).

``llm.config`` reports the configured models and whether their API keys are
present. It makes no request (``magray llm test`` does a real round trip), so
it is instant and costs nothing.
"""

from __future__ import annotations

from typing import Any

from magray.common.health import HealthRegistry, HealthResult

__all__ = ["check_config", "register"]


def register(registry: HealthRegistry, settings: Any) -> None:
    """Add ``llm.config``."""
    section = getattr(settings, "llm", None)
    registry.register("llm.config", lambda: check_config(section))


def check_config(section: Any) -> HealthResult:
    """OK without a model (rule-based mode) or with keys present; degraded if a key is missing."""
    from magray.llm._models import describe_models

    if section is None or not section.model:
        return HealthResult.ok("no model configured: rule-based agents only")
    infos = describe_models(section)
    missing = [
        i for i in infos if i.key == "missing" and i.role.split(" ")[0] in ("primary", "fallback")
    ]
    counts: dict[str, int] = {}
    for i in infos:
        counts[i.model] = counts.get(i.model, 0) + 1
    details = {
        (i.model if counts[i.model] == 1 else f"{i.model}@{i.api_base}"): {
            "role": i.role,
            "key": i.key,
        }
        for i in infos
    }
    if missing:
        names = ", ".join(f"{i.model} ({i.key_source})" for i in missing)
        return HealthResult.degraded(f"API key missing for {names}", **details)
    summary = f"{section.model} (+{len(section.fallbacks)} fallbacks)"
    if section.deployments:
        strategy = section.routing_strategy or "simple-shuffle"
        summary += f"; {len(section.deployments)} deployments, litellm Router ({strategy})"
    return HealthResult.ok(summary, **details)
