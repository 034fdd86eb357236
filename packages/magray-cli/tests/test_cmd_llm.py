"""``magray llm models|test|ask`` against a loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from magray.cli import cli
from magray.llm.testing import LoopbackLLM, Reply, stream, text

# litellm (not magray) trips `filterwarnings = error`: a deprecated pydantic attribute while
# streaming and an event loop its sync service logger leaves to the garbage collector.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*"),
    pytest.mark.filterwarnings("ignore:Accessing the 'model_computed_fields':DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:unclosed:ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _reply(body: dict[str, Any]) -> Reply:
    """Streamed "streamed reply" for stream requests; "pong" for `llm test`; else "the answer"."""
    if body.get("stream"):
        return stream([{"content": "streamed "}, {"content": "reply"}])
    if "pong" in json.dumps(body["messages"]):
        return text("pong", usage=(4, 1))
    return text("the answer", usage=(4, 1))


@pytest.fixture
def llm_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackLLM]:
    with LoopbackLLM() as server:
        server.responder = _reply
        monkeypatch.setenv("MAGRAY_LLM__MODEL", "openai/loopback")
        monkeypatch.setenv("MAGRAY_LLM__API_BASE", server.api_base)
        monkeypatch.setenv("MAGRAY_LLM__API_KEY", "sk-cli-test")
        monkeypatch.setenv("MAGRAY_LLM__MAX_RETRIES", "0")
        yield server


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_models_without_configuration() -> None:
    result = invoke("llm", "models")
    assert result.exit_code == 0
    assert "rule-based" in result.output
    data = json.loads(invoke("llm", "models", "--json").output)
    assert data == {"models": [], "rule_based_only": True}


def test_models_report_keys_without_showing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGRAY_LLM__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv(
        "MAGRAY_LLM__FALLBACKS", '["anthropic/claude-3-5-haiku-latest", "ollama/llama3"]'
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = invoke("llm", "models", "--json")
    assert "sk-secret-value" not in result.output
    rows = {m["model"]: m for m in json.loads(result.output)["models"]}
    assert rows["openai/gpt-4o-mini"]["role"] == "primary"
    assert (rows["openai/gpt-4o-mini"]["key"], rows["openai/gpt-4o-mini"]["key_source"]) == (
        "present",
        "env OPENAI_API_KEY",
    )
    assert rows["anthropic/claude-3-5-haiku-latest"]["key"] == "missing"
    assert "ANTHROPIC_API_KEY" in rows["anthropic/claude-3-5-haiku-latest"]["key_source"]
    assert rows["ollama/llama3"]["key"] == "not needed"
    table = invoke("llm", "models").output
    assert "primary" in table
    assert "sk-secret-value" not in table


@pytest.mark.network_stub
def test_ask_prints_the_reply_and_json(llm_server: Any) -> None:
    result = invoke("llm", "ask", "what", "is", "it?", "--system", "be brief")
    assert result.exit_code == 0
    assert result.output.strip() == "the answer"
    sent = llm_server.requests[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is it?"},
    ]
    data = json.loads(invoke("llm", "ask", "again", "--json", "--max-tokens", "9").output)
    assert data["text"] == "the answer"
    assert data["usage"]["total_tokens"] == 5
    assert data["model"] == "openai/loopback"
    assert llm_server.requests[-1]["max_tokens"] == 9


@pytest.mark.network_stub
def test_ask_streams_and_reads_stdin(llm_server: Any) -> None:
    result = invoke("llm", "ask", "--stream", input="from stdin\n")
    assert result.exit_code == 0
    assert result.output.strip() == "streamed reply"
    assert llm_server.requests[-1]["messages"][-1]["content"] == "from stdin"
    assert llm_server.requests[-1]["stream"] is True


@pytest.mark.network_stub
def test_llm_test_reports_timing(llm_server: Any) -> None:
    result = invoke("llm", "test")
    assert result.exit_code == 0
    assert "openai/loopback: ok in" in result.output
    assert "'pong'" in result.output
    data = json.loads(invoke("llm", "test", "--json").output)
    assert data["ok"] is True
    assert data["reply"] == "pong"
    assert data["latency_ms"] >= 0


def test_errors_end_to_end(run_magray: Any) -> None:
    result = run_magray("llm", "ask", "hello")
    assert result.returncode == 2
    assert result.stderr.startswith("error[llm.not_configured]")
    assert "hint: " in result.stderr
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "MAGRAY_LLM__MODEL": "openai/nowhere",
        "MAGRAY_LLM__API_BASE": f"http://127.0.0.1:{port}/v1",
        "MAGRAY_LLM__API_KEY": "k",
        "MAGRAY_LLM__MAX_RETRIES": "0",
    }
    result = run_magray("llm", "test", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error[llm.network]")
    assert "Traceback" not in result.stderr


def _no_network_env() -> dict[str, str]:
    """Proxies pointing at a closed loopback port: a request that left would fail as
    ``llm.network``, never as ``llm.auth``; a retry would wait 5 s."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    return {
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "ALL_PROXY": closed,
        "NO_PROXY": "",
        "MAGRAY_LLM__RETRY_BASE_DELAY": "5",
    }


@pytest.mark.parametrize("command", [["chat", "--no-memory", "hi"], ["llm", "ask", "hi"]])
def test_a_missing_key_names_the_variable_at_once(
    run_magray: Any, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    import time

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    env = {**_no_network_env(), "MAGRAY_LLM__MODEL": "openai/gpt-4o-mini"}
    started = time.perf_counter()
    result = run_magray(*command, env=env)
    elapsed = time.perf_counter() - started
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error[llm.auth]: openai/gpt-4o-mini: no API key")
    assert "OPENAI_API_KEY" in result.stderr.splitlines()[0]
    assert "hint: set it (`export OPENAI_API_KEY=...`)" in result.stderr
    assert elapsed < 5.0  # no retry (it would wait 5 s), no request


def test_a_refused_key_is_an_auth_error_without_retries(
    run_magray: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with LoopbackLLM() as server:
        server.responder = lambda body: Reply(status=401, error="Incorrect API key provided")
        env = {
            "MAGRAY_LLM__MODEL": "openai/loopback",
            "MAGRAY_LLM__API_BASE": server.api_base,
            "MAGRAY_LLM__MODELS": json.dumps({"openai/loopback": {"api_key_env": "TEAM_KEY"}}),
            "TEAM_KEY": "sk-wrong",
            "MAGRAY_LLM__RETRY_BASE_DELAY": "5",
        }
        result = run_magray("chat", "--no-memory", "hi", env=env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error[llm.auth]")
    assert "TEAM_KEY" in result.stderr
    assert "sk-wrong" not in result.stderr
    assert len(server.requests) == 1  # not retried
    assert server.headers[0]["authorization"] == "Bearer sk-wrong"


@pytest.mark.parametrize(
    ("transport", "imported"),
    [("auto", False), pytest.param("litellm", True, marks=pytest.mark.slow)],
)
def test_chat_on_the_direct_transport_never_imports_litellm(
    run_magray: Any, transport: str, imported: bool
) -> None:
    """The installed `magray chat` with an openai/ model: litellm shows up in the
    interpreter's import log (PYTHONPROFILEIMPORTTIME) only when llm.transport forces it."""
    with LoopbackLLM() as server:
        server.responder = _reply
        env = {
            "MAGRAY_LLM__MODEL": "openai/loopback",
            "MAGRAY_LLM__API_BASE": server.api_base,
            "MAGRAY_LLM__API_KEY": "sk-cli-test",
            "MAGRAY_LLM__TRANSPORT": transport,
            "PYTHONPROFILEIMPORTTIME": "1",
        }
        result = run_magray("chat", "--plain", "--no-memory", "hello there", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "streamed reply" in result.stdout
    imports = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert ("litellm" in imports) is imported
    assert "httpx" in imports
