"""LLMClient end to end against the loopback OpenAI-compatible server.

Every test runs twice: on the direct transport (httpx, no litellm) and with
``llm.transport = "litellm"``; both must behave the same.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import magray.llm.testing as lb
from magray.common.metrics import MetricsRegistry
from magray.common.settings import LLMSettings as BaseLLMSettings
from magray.llm import (
    LLMAuthError,
    LLMClient,
    LLMConnectionError,
    LLMContextWindowError,
    LLMModelNotFoundError,
    LLMRateLimitError,
    LLMServerError,
    LLMTimeoutError,
    RetryPolicy,
    StructuredOutputError,
)

pytestmark = pytest.mark.network_stub

_TRANSPORT = ["auto"]


@pytest.fixture(autouse=True, params=["direct", "litellm"])
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """The transport under test: every LLMSettings of this module is built with it."""
    _TRANSPORT[0] = "auto" if request.param == "direct" else "litellm"
    yield request.param
    _TRANSPORT[0] = "auto"


def LLMSettings(**kw: Any) -> BaseLLMSettings:  # stands in for the class
    return BaseLLMSettings(**{"transport": _TRANSPORT[0], **kw})


def make_client(
    server: Any,
    sleeps: list[float],
    model: str = "openai/main",
    *,
    fallbacks: list[str] | None = None,
    retries: int = 2,
    timeout: float = 5.0,
    metrics: MetricsRegistry | None = None,
    **settings: Any,
) -> LLMClient:
    models = {
        m: {"api_base": server.api_base, "api_key": "sk-test-secret"} for m in fallbacks or []
    }
    section = LLMSettings(
        model=model,
        api_base=server.api_base,
        api_key="sk-test-secret",
        timeout=timeout,
        fallbacks=fallbacks or [],
        models=models,
        **settings,
    )
    return LLMClient(
        settings=section,
        metrics=metrics or MetricsRegistry(),
        retry=RetryPolicy(max_retries=retries, base_delay=0.5, max_delay=4.0, jitter=False),
        sleep=sleeps.append,
    )


class Weather(BaseModel):
    city: str
    celsius: float


# ------------------------------------------------------------------ plain calls


def test_completion_text_usage_and_key_sent(
    server: Any, sleeps: list[float], transport: str
) -> None:
    server.script("main", lb.chat("hello there", prompt_tokens=11, completion_tokens=2))
    metrics = MetricsRegistry()
    reply = make_client(server, sleeps, metrics=metrics).complete("hi")
    assert reply.text == "hello there"
    assert reply.model == "openai/main"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (11, 2)
    assert reply.usage.cost_usd is None  # a custom server has no price
    assert server.headers[0]["authorization"] == "Bearer sk-test-secret"
    assert ("python-httpx" in server.headers[0]["user-agent"]) == (transport == "direct")
    assert server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]
    counters = metrics.snapshot()["counters"]
    assert counters["llm.calls{model=openai/main,outcome=ok}"] == 1
    assert counters["llm.tokens.prompt{model=openai/main}"] == 11
    assert metrics.snapshot()["histograms"]["llm.latency_ms{model=openai/main}"]["count"] == 1


def test_tool_calls_are_parsed(server: Any, sleeps: list[float]) -> None:
    server.script(
        "main",
        lb.chat(
            None,
            tool_calls=[("call_1", "read_file", '{"path": "a.txt"}'), ("call_2", "git_status", "")],
        ),
    )
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": {}}}]
    reply = make_client(server, sleeps).complete("read a.txt", tools=tools)
    assert reply.text is None
    assert reply.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("call_1", "read_file", {"path": "a.txt"}),
        ("call_2", "git_status", {}),
    ]
    assert server.requests[0]["tools"] == tools
    assert reply.message()["tool_calls"][0]["function"]["name"] == "read_file"


def test_invalid_tool_arguments_are_kept_with_an_error(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.chat(None, tool_calls=[("c", "f", '{"path": ')]))
    call = make_client(server, sleeps).complete("x").tool_calls[0]
    assert call.arguments == {}
    assert call.raw_arguments == '{"path": '
    assert call.error is not None
    assert "invalid JSON" in call.error


# ------------------------------------------------------------------ streaming


def test_stream_assembles_text_and_tool_call_fragments(server: Any, sleeps: list[float]) -> None:
    server.script(
        "main",
        lb.stream(
            [
                {"role": "assistant", "content": "Let me "},
                {"content": "look."},
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "read_file", "arguments": '{"pa'},
                        }
                    ]
                },
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "git_log", "arguments": ""},
                        }
                    ]
                },
                {"tool_calls": [{"index": 0, "function": {"arguments": 'th": "READ'}}]},
                {"tool_calls": [{"index": 1, "function": {"arguments": '{"n": 3}'}}]},
                {"tool_calls": [{"index": 0, "function": {"arguments": 'ME.md"}'}}]},
            ],
            usage=(9, 6),
        ),
    )
    metrics = MetricsRegistry()
    stream = make_client(server, sleeps, metrics=metrics).complete("go", stream=True)
    deltas = list(stream)
    assert "".join(d.text for d in deltas) == "Let me look."
    done = stream.completion
    assert done is not None
    assert done.text == "Let me look."
    assert [(c.id, c.name, c.arguments) for c in done.tool_calls] == [
        ("call_a", "read_file", {"path": "README.md"}),
        ("call_b", "git_log", {"n": 3}),
    ]
    assert done.finish_reason == "tool_calls"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (9, 6)
    assert server.requests[0]["stream"] is True
    assert metrics.snapshot()["counters"]["llm.tokens.completion{model=openai/main}"] == 6


def test_stream_collect(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.stream([{"content": "a"}, {"content": "b"}], usage=None))
    done = make_client(server, sleeps).complete("x", stream=True).collect()
    assert done.text == "ab"
    assert done.usage.completion_tokens >= 1  # litellm counts tokens when the server does not


def test_stream_retries_before_the_first_chunk(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.error(429, "slow down"), lb.stream([{"content": "ok"}]))
    done = make_client(server, sleeps).complete("x", stream=True).collect()
    assert done.text == "ok"
    assert sleeps == [0.5]


def test_a_stream_that_stalls_midway_is_a_timeout(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.stall("one two three four five six", after=2))
    stream = make_client(server, sleeps, retries=0, timeout=0.3).complete("x", stream=True)
    texts: list[str] = []

    def read() -> None:
        texts.extend(delta.text for delta in stream)

    with pytest.raises(LLMTimeoutError):
        read()
    assert "".join(texts)  # the chunks before the stall arrived
    assert stream.completion is None


# ------------------------------------------------------------------ retries and errors


def test_rate_limit_is_retried_with_exponential_backoff(server: Any, sleeps: list[float]) -> None:
    server.script(
        "main",
        lb.error(429, "rate limit"),
        lb.error(429, "rate limit"),
        lb.chat("finally"),
    )
    metrics = MetricsRegistry()
    reply = make_client(server, sleeps, metrics=metrics).complete("x")
    assert reply.text == "finally"
    assert sleeps == [0.5, 1.0]
    assert [a["outcome"] for a in reply.attempts] == ["llm.rate_limit", "llm.rate_limit", "ok"]
    assert metrics.snapshot()["counters"]["llm.retries{model=openai/main}"] == 2


def test_retry_after_header_is_honoured(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.error(429, "wait", headers={"Retry-After": "3"}), lb.chat("ok"))
    make_client(server, sleeps).complete("x")
    assert sleeps == [3.0]


def test_server_errors_exhaust_retries(server: Any, sleeps: list[float]) -> None:
    server.script("main", *[lb.error(500, "boom")] * 3)
    with pytest.raises(LLMServerError) as info:
        make_client(server, sleeps).complete("x")
    assert len(server.requests) == 3
    assert sleeps == [0.5, 1.0]
    assert info.value.retriable
    assert len(info.value.details["attempts"]) == 3
    assert info.value.hint


@pytest.mark.parametrize(
    ("status", "message", "code", "expected"),
    [
        (401, "Incorrect API key provided", "invalid_api_key", LLMAuthError),
        (404, "The model `main` does not exist", "model_not_found", LLMModelNotFoundError),
        (
            400,
            "This model's maximum context length is 8192 tokens. However, your messages "
            "resulted in 9000 tokens.",
            "context_length_exceeded",
            LLMContextWindowError,
        ),
    ],
)
def test_non_retriable_errors_map_with_hints(
    server: Any, sleeps: list[float], *, status: int, message: str, code: str, expected: type
) -> None:
    server.script("main", lb.error(status, message, code=code))
    with pytest.raises(expected) as info:
        make_client(server, sleeps).complete("x")
    assert len(server.requests) == 1  # not retried
    assert sleeps == []
    assert info.value.hint
    assert "sk-test-secret" not in str(info.value)
    assert "sk-test-secret" not in json.dumps(info.value.to_dict(), default=str)


def test_auth_hint_names_the_env_var(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.error(401, "bad key"))
    with pytest.raises(LLMAuthError) as info:
        make_client(server, sleeps).complete("x")
    assert "OPENAI_API_KEY" in (info.value.hint or "")


def test_connection_refused_is_a_network_error(sleeps: list[float]) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = LLMClient(
        settings=LLMSettings(model="openai/x", api_base=f"http://127.0.0.1:{port}/v1", api_key="k"),
        retry=RetryPolicy(max_retries=1, base_delay=0.25, jitter=False),
        sleep=sleeps.append,
        metrics=MetricsRegistry(),
    )
    with pytest.raises(LLMConnectionError) as info:
        client.complete("x")
    assert info.value.retriable
    assert sleeps == [0.25]
    assert "api_base" in (info.value.hint or "")


def test_slow_server_times_out(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.Reply(hang=True))
    with pytest.raises(LLMTimeoutError) as info:
        make_client(server, sleeps, retries=0, timeout=0.2).complete("x")
    assert "llm.timeout" in (info.value.hint or "")


def test_fallback_model_answers_when_the_primary_fails(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.error(500, "down"), lb.error(500, "down"))
    server.script("backup", lb.chat("from backup"))
    metrics = MetricsRegistry()
    client = make_client(server, sleeps, fallbacks=["openai/backup"], retries=1, metrics=metrics)
    reply = client.complete("x")
    assert reply.text == "from backup"
    assert reply.model == "openai/backup"
    assert [a["model"] for a in reply.attempts] == ["openai/main", "openai/main", "openai/backup"]
    assert metrics.snapshot()["counters"]["llm.fallbacks{model=openai/backup}"] == 1


def test_fallback_on_non_retriable_error_and_all_failing(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.error(401, "bad key"))
    server.script("backup", lb.error(429, "busy"), lb.error(429, "busy"))
    client = make_client(server, sleeps, fallbacks=["openai/backup"], retries=1)
    with pytest.raises(LLMRateLimitError) as info:
        client.complete("x")
    assert info.value.message.startswith("all 2 models failed")
    assert [a["outcome"] for a in info.value.details["attempts"]] == [
        "llm.auth",
        "llm.rate_limit",
        "llm.rate_limit",
    ]
    assert sleeps == [0.5]


def test_explicit_model_skips_fallbacks(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.error(500, "down"))
    client = make_client(server, sleeps, fallbacks=["openai/backup"], retries=0)
    with pytest.raises(LLMServerError):
        client.complete("x", model="openai/main")
    assert server.requests_for("backup") == []


# ------------------------------------------------------------------ structured output


def test_structured_output_repairs_malformed_json(server: Any, sleeps: list[float]) -> None:
    server.script(
        "main",
        lb.chat('{"city": "Oslo", "celsius": '),
        lb.chat('Sure:\n```json\n{"city": "Oslo", "celsius": -3.5}\n```'),
    )
    metrics = MetricsRegistry()
    client = make_client(server, sleeps, structured_mode="json_schema", metrics=metrics)
    reply = client.complete("weather in Oslo?", response_model=Weather)
    assert reply.parsed == Weather(city="Oslo", celsius=-3.5)
    assert reply.usage.prompt_tokens == 14  # both requests counted
    first, second = server.requests
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"]["required"] == ["city", "celsius"]
    feedback = second["messages"][-1]["content"]
    assert "invalid" in feedback
    assert "JSON" in feedback
    assert second["messages"][-2] == {
        "role": "assistant",
        "content": '{"city": "Oslo", "celsius": ',
    }
    assert metrics.snapshot()["counters"]["llm.structured.repairs{model=openai/main}"] == 1


def test_structured_output_feeds_back_validation_errors(server: Any, sleeps: list[float]) -> None:
    server.script(
        "main",
        lb.chat('{"city": "Oslo", "celsius": "cold"}'),
        lb.chat('{"city": "Oslo", "celsius": 1}'),
    )
    weather = make_client(server, sleeps, structured_mode="prompt").structured("x", Weather)
    assert weather.celsius == 1
    system = server.requests[0]["messages"][0]
    assert system["role"] == "system"
    assert '"celsius"' in system["content"]
    assert "celsius" in server.requests[1]["messages"][-1]["content"]


def test_structured_output_tool_mode(server: Any, sleeps: list[float]) -> None:
    server.script(
        "main", lb.chat(None, tool_calls=[("c", "Weather", '{"city": "Rome", "celsius": 20}')])
    )
    weather = make_client(server, sleeps, structured_mode="tool").structured("x", Weather)
    assert weather == Weather(city="Rome", celsius=20)
    request = server.requests[0]
    assert request["tools"][0]["function"]["name"] == "Weather"
    assert request["tool_choice"]["function"]["name"] == "Weather"


def test_structured_output_gives_up_with_the_raw_text(server: Any, sleeps: list[float]) -> None:
    server.script("main", *[lb.chat("I cannot do JSON")] * 3)
    client = make_client(server, sleeps, structured_mode="json_schema", structured_retries=2)
    with pytest.raises(StructuredOutputError) as info:
        client.complete("x", response_model=Weather)
    assert info.value.raw == "I cannot do JSON"
    assert len(info.value.errors) == 3
    assert len(server.requests) == 3


# ------------------------------------------------------------------ async


def test_acomplete_and_async_stream(server: Any, sleeps: list[float]) -> None:
    server.script(
        "main",
        lb.error(503, "busy"),
        lb.chat("async ok"),
        lb.stream([{"content": "str"}, {"content": "eam"}]),
    )
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    client = LLMClient(
        settings=LLMSettings(model="openai/main", api_base=server.api_base, api_key="k"),
        retry=RetryPolicy(max_retries=2, base_delay=0.5, jitter=False),
        asleep=fake_sleep,
        metrics=MetricsRegistry(),
    )

    async def run() -> tuple[str | None, str | None, list[str]]:
        first = await client.acomplete("x")
        stream = await client.acomplete("y", stream=True)
        texts = [d.text async for d in stream]
        assert stream.completion is not None
        await lb.aclose_litellm_clients()
        return first.text, stream.completion.text, texts

    first, streamed, texts = asyncio.run(run())
    assert first == "async ok"
    assert streamed == "stream"
    assert "".join(texts) == "stream"
    assert delays == [0.5]


def test_async_structured_output(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.chat("nope"), lb.chat('{"city": "Lima", "celsius": 18}'))
    client = make_client(server, sleeps, structured_mode="json_schema")

    async def run() -> Any:
        try:
            return await client.acomplete("x", response_model=Weather)
        finally:
            await lb.aclose_litellm_clients()

    reply = asyncio.run(run())
    assert reply.parsed == Weather(city="Lima", celsius=18)


def test_a_key_echoed_by_the_provider_is_masked(server: Any, sleeps: list[float]) -> None:
    server.script("main", lb.error(401, "Incorrect API key provided: sk-test-secret"))
    with pytest.raises(LLMAuthError) as info:
        make_client(server, sleeps).complete("x")
    assert "sk-test-secret" not in str(info.value)
    assert "***" in str(info.value)


# ------------------------------------------------------------------ missing or refused keys


def test_a_missing_key_fails_at_once_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    """The provider's own server and no key: an auth error before any request, no retries."""
    import time

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    metrics = MetricsRegistry()
    client = LLMClient(
        settings=LLMSettings(model="openai/gpt-4o-mini"), sleep=sleeps.append, metrics=metrics
    )
    started = time.perf_counter()
    with pytest.raises(LLMAuthError) as info:
        client.complete("hi")
    assert time.perf_counter() - started < 2.0
    assert "OPENAI_API_KEY" in info.value.message
    assert "OPENAI_API_KEY" in (info.value.hint or "")
    assert not info.value.retriable
    assert sleeps == []
    assert [a["outcome"] for a in info.value.details["attempts"]] == ["llm.auth"]
    assert metrics.snapshot()["counters"]["llm.errors{code=llm.auth,model=openai/gpt-4o-mini}"] == 1


def test_a_key_passed_with_the_call_counts_and_is_masked(
    server: Any, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    """``complete(..., api_base=, api_key=)`` (magray.llm.testing's own example) is not refused
    for want of OPENAI_API_KEY, sends that key, and a provider echoing it gets it masked."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.script("my-model", lb.text("hello"), lb.error(401, "bad key sk-call-secret"))
    section = LLMSettings(model="openai/my-model")
    client = LLMClient(settings=section, sleep=sleeps.append, metrics=MetricsRegistry())
    reply = client.complete("hi", api_base=server.api_base, api_key="sk-call-secret")
    assert reply.text == "hello"
    assert server.headers[0]["authorization"] == "Bearer sk-call-secret"
    with pytest.raises(LLMAuthError) as info:
        client.complete("again", api_base=server.api_base, api_key="sk-call-secret")
    assert "sk-call-secret" not in str(info.value)
    with pytest.raises(LLMAuthError):  # no key with the call, none configured: still refused
        client.complete("hi")
    assert len(server.requests) == 2


def _auth_failure_with_key_env(server: Any, sleeps: list[float]) -> Any:
    section = LLMSettings(
        model="openai/main",
        api_base=server.api_base,
        models={"openai/main": {"api_key_env": "MY_TEAM_KEY"}},
    )
    client = LLMClient(settings=section, sleep=sleeps.append, metrics=MetricsRegistry())
    with pytest.raises(LLMAuthError) as info:
        client.complete("hi")
    return info


def test_a_missing_key_names_the_configured_api_key_env(
    server: Any, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    monkeypatch.delenv("MY_TEAM_KEY", raising=False)
    info = _auth_failure_with_key_env(server, sleeps)
    assert "MY_TEAM_KEY" in (info.value.hint or "")
    assert "OPENAI_API_KEY" not in (info.value.hint or "")
    assert server.requests == []  # detected before any request
    assert sleeps == []


def test_a_refused_key_is_not_retried_and_names_api_key_env(
    server: Any, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    monkeypatch.setenv("MY_TEAM_KEY", "sk-wrong")
    server.script("main", lb.error(401, "Incorrect API key provided", code="invalid_api_key"))
    info = _auth_failure_with_key_env(server, sleeps)
    assert len(server.requests) == 1
    assert server.headers[0]["authorization"] == "Bearer sk-wrong"
    assert sleeps == []
    assert "MY_TEAM_KEY" in (info.value.hint or "")


def test_a_missing_key_falls_back_to_a_model_that_has_one(
    server: Any, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.script("backup", lb.chat("from backup"))
    section = LLMSettings(
        model="openai/gpt-4o-mini",
        fallbacks=["openai/backup"],
        models={"openai/backup": {"api_base": server.api_base, "api_key": "k"}},
    )
    client = LLMClient(settings=section, sleep=sleeps.append, metrics=MetricsRegistry())
    reply = client.complete("hi")
    assert reply.text == "from backup"
    assert [a["outcome"] for a in reply.attempts] == ["llm.auth", "ok"]
    assert sleeps == []


def test_deployments_without_any_key_fail_before_the_router(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    section = LLMSettings(
        model="fast",
        deployments=[
            {"name": "fast", "model": "openai/gpt-4o-mini"},
            {"name": "fast", "model": "openai/gpt-4o"},
        ],
    )
    client = LLMClient(settings=section, sleep=sleeps.append, metrics=MetricsRegistry())
    try:
        with pytest.raises(LLMAuthError) as info:
            client.complete("hi")
    finally:
        client.close()
    assert "OPENAI_API_KEY" in (info.value.hint or "")
    assert sleeps == []
