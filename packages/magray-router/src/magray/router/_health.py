"""Health checks for ``magray health`` (entry-point group ``magray.health``)."""

from __future__ import annotations

from typing import Any

from magray.common.health import HealthRegistry, HealthResult

__all__ = ["register"]


def register(registry: HealthRegistry, settings: Any) -> None:
    """Add ``router.mode`` (LLM or no-LLM), ``router.tools`` and ``router.mcp``."""
    registry.register("router.mode", lambda: check_mode(settings))
    registry.register("router.tools", check_tools)
    registry.register("router.mcp", check_mcp)


def check_mode(settings: Any) -> HealthResult:
    """Which mode chat runs in; no-LLM mode is a working mode, so it is ok too."""
    llm = getattr(settings, "llm", None)
    model = getattr(llm, "model", None)
    if model:
        chain = [model, *getattr(llm, "fallbacks", [])]
        return HealthResult.ok(f"LLM mode: {' → '.join(chain)}", models=chain)
    from magray.router._replies import CONFIGURE_LLM_COMMAND

    return HealthResult.ok(
        f"no-LLM mode (rules, tools and memory); add a model with `{CONFIGURE_LLM_COMMAND}`",
        models=[],
    )


def check_tools() -> HealthResult:
    """The tool registry loads; broken tool plugins degrade it."""
    from magray.router import _wiring

    registry = _wiring.tool_registry()
    names = registry.names()
    if registry.load_errors:
        broken = [f"{e.origin}: {e.message}" for e in registry.load_errors]
        return HealthResult.degraded(
            f"{len(names)} tools; {len(broken)} plugin(s) failed to load", broken=broken
        )
    return HealthResult.ok(f"{len(names)} tools (+ memory and todo tools)", tools=names)


def check_mcp() -> HealthResult:
    """The MCP SDK `magray mcp serve` needs is installed, major version 2."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("mcp")
    except PackageNotFoundError:
        return HealthResult.failed('the MCP SDK is missing: pip install "mcp>=2.3,<3"')
    if not found.startswith("2."):
        return HealthResult.failed(f"mcp {found} is installed; magray needs 2.x", version=found)
    return HealthResult.ok(f"mcp {found}", version=found)
