"""The router's health checks."""

from __future__ import annotations

from magray.common.health import HealthRegistry, Status
from magray.common.settings import Settings
from magray.router._health import register


def test_checks_report_mode_tools_and_mcp() -> None:
    registry = HealthRegistry()
    register(registry, Settings())
    report = registry.run()
    by_name = {c.name: c for c in report.checks}
    assert by_name["router.mode"].status is Status.OK
    assert "no-LLM mode" in by_name["router.mode"].message
    assert by_name["router.tools"].status is Status.OK
    assert "file_read" in by_name["router.tools"].details["tools"]
    assert by_name["router.mcp"].message.startswith("mcp 2.")


def test_mode_names_the_model_chain() -> None:
    from magray.router._health import check_mode

    settings = Settings(llm={"model": "openai/a", "fallbacks": ["openai/b"]})
    assert check_mode(settings).message == "LLM mode: openai/a → openai/b"
