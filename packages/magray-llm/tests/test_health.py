"""``llm.config`` health check (no request is made)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from magray.common.health import HealthRegistry, Status
from magray.common.settings import Settings
from magray.llm._health import register


def _run(settings: Settings) -> tuple[Status, str]:
    registry = HealthRegistry()
    register(registry, settings)
    (outcome,) = registry.run(["llm.config"]).checks
    return outcome.status, outcome.message


def test_entry_point_is_registered() -> None:
    (ep,) = [e for e in entry_points(group="magray.health") if e.name == "llm"]
    assert ep.load() is register


def test_rule_based_mode_is_healthy() -> None:
    assert _run(Settings()) == (Status.OK, "no model configured: rule-based agents only")


def test_missing_key_is_degraded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    status, message = _run(Settings.model_validate({"llm": {"model": "anthropic/claude-x"}}))
    assert status is Status.DEGRADED
    assert "ANTHROPIC_API_KEY" in message


def test_present_key_is_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    status, message = _run(Settings.model_validate({"llm": {"model": "openai/gpt-4o-mini"}}))
    assert status is Status.OK
    assert "sk-test" not in message


def test_deployments_are_checked_and_summarised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAGRAY_TEST_DEPLOY_KEY", raising=False)
    llm = {
        "model": "fast",
        "routing_strategy": "latency-based-routing",
        "deployments": [
            {"name": "fast", "model": "openai/m", "api_base": "http://127.0.0.1:1/v1"},
            {"name": "fast", "model": "groq/m", "api_key_env": "MAGRAY_TEST_DEPLOY_KEY"},
        ],
    }
    status, message = _run(Settings.model_validate({"llm": llm}))
    assert status is Status.DEGRADED
    assert "MAGRAY_TEST_DEPLOY_KEY" in message
    monkeypatch.setenv("MAGRAY_TEST_DEPLOY_KEY", "gsk-test")
    status, message = _run(Settings.model_validate({"llm": llm}))
    assert status is Status.OK
    assert message == "fast (+0 fallbacks); 2 deployments, litellm Router (latency-based-routing)"
