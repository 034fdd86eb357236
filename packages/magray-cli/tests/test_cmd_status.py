"""``magray status``: routing set-up and per-model/deployment LLM figures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from magray.cli import cli

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*"),
    pytest.mark.filterwarnings("ignore:Accessing the 'model_computed_fields':DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:unclosed:ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

TWO_DEPLOYMENTS = json.dumps(
    [
        {"name": "fast", "model": "openai/a", "api_base": "http://127.0.0.1:1/v1"},
        {"name": "fast", "model": "openai/b", "label": "bee", "api_base": "http://127.0.0.1:2/v1"},
    ]
)


def _persisted_metrics() -> None:
    from magray.common import paths
    from magray.common.metrics import MetricsRegistry, persist

    m = MetricsRegistry()
    for latency in (100.0, 120.0, 140.0):
        m.counter("llm.calls", model="openai/a", outcome="ok").inc()
        m.histogram("llm.latency_ms", model="openai/a").observe(latency)
    m.counter("llm.calls", model="bee", outcome="llm.server").inc(2)
    m.histogram("llm.latency_ms", model="bee").observe(5.0)
    m.counter("llm.cost_usd", model="openai/a").inc(0.25)
    persist(m, paths.data_dir() / "metrics.json")


def _status(*args: str, env: dict[str, str]) -> Any:
    result = CliRunner().invoke(cli, ["status", *args], env=env)
    assert result.exit_code == 0, result.output
    return result


def test_status_json_shows_the_router_and_per_deployment_figures() -> None:
    _persisted_metrics()
    env = {
        "MAGRAY_LLM__MODEL": "fast",
        "MAGRAY_LLM__DEPLOYMENTS": TWO_DEPLOYMENTS,
        "MAGRAY_LLM__ROUTING_STRATEGY": "latency-based-routing",
    }
    data = json.loads(_status("--json", env=env).output)
    llm = data["llm"]
    assert llm["router"] is True
    assert llm["routing_strategy"] == "latency-based-routing"
    assert llm["chain"] == ["fast"]
    by_model = {m["model"]: m for m in llm["models"]}
    assert by_model["openai/a"]["name"] == "fast"
    assert by_model["openai/a"]["calls"] == 3
    assert by_model["openai/a"]["errors"] == 0
    assert by_model["openai/a"]["p50_ms"] == 120.0
    assert by_model["openai/a"]["cost_usd"] == 0.25
    assert by_model["bee"]["calls"] == 2
    assert by_model["bee"]["errors"] == 2


def test_status_table_names_the_strategy() -> None:
    _persisted_metrics()
    env = {"MAGRAY_LLM__MODEL": "fast", "MAGRAY_LLM__DEPLOYMENTS": TWO_DEPLOYMENTS}
    out = _status(env=env).output
    assert "LLM models (litellm Router, simple-shuffle)" in out
    assert "bee" in out
    assert "120.0" in out


def test_one_model_is_called_directly() -> None:
    data = json.loads(_status("--json", env={"MAGRAY_LLM__MODEL": "openai/solo"}).output)
    assert data["llm"]["router"] is False
    assert data["llm"]["routing_strategy"] is None
    assert [m["model"] for m in data["llm"]["models"]] == ["openai/solo"]


def test_no_llm_mode_has_no_models() -> None:
    data = json.loads(_status("--json", env={}).output)
    assert data["llm"] == {"chain": [], "router": False, "routing_strategy": None, "models": []}


def test_a_routed_chat_shows_up_per_deployment() -> None:
    from magray.llm.testing import LoopbackLLM, close_litellm_clients, error

    with LoopbackLLM() as a, LoopbackLLM() as b:
        a.responder = lambda body: error(500)
        deployments = [
            {"name": "fast", "model": "openai/m", "api_base": a.api_base, "api_key": "k"},
            {"name": "fast", "model": "openai/m", "api_base": b.api_base, "api_key": "k"},
        ]
        env = {
            "MAGRAY_LLM__MODEL": "fast",
            "MAGRAY_LLM__DEPLOYMENTS": json.dumps(deployments),
            "MAGRAY_LLM__RETRY_BASE_DELAY": "0",
        }
        runner = CliRunner()
        for _ in range(6):
            chat = runner.invoke(cli, ["chat", "--no-memory", "--json", "hello"], env=env)
            assert chat.exit_code == 0, chat.output
            assert json.loads(chat.output)["model"] == f"openai/m@127.0.0.1:{b.port}"
        close_litellm_clients()
        data = json.loads(_status("--json", env=env).output)
    by_model = {m["model"]: m for m in data["llm"]["models"]}
    good = by_model[f"openai/m@127.0.0.1:{b.port}"]
    bad = by_model[f"openai/m@127.0.0.1:{a.port}"]
    assert good["calls"] == 6
    assert good["errors"] == 0
    assert good["p50_ms"] is not None
    assert bad["calls"] == bad["errors"] == len(a.requests)
    # each in-process `magray chat` builds its own Router, so cooldowns start afresh: a chat
    # may try the failing deployment up to allowed_fails + 1 = 2 times before it cools down
    assert 1 <= len(a.requests) <= 2 * 6
