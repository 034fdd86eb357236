"""Several models through litellm's Router, against real loopback servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import magray.llm.testing as lb
from magray.common.metrics import MetricsRegistry
from magray.common.settings import LLMSettings, Settings
from magray.llm import (
    LLMClient,
    LLMServerError,
    LLMUnavailableError,
    RetryPolicy,
)

pytestmark = pytest.mark.network_stub


@pytest.fixture
def pair() -> Iterator[tuple[lb.LoopbackLLM, lb.LoopbackLLM]]:
    with lb.LoopbackLLM() as a, lb.LoopbackLLM() as b:
        try:
            yield a, b
        finally:
            lb.close_litellm_clients()


def deployment(server: lb.LoopbackLLM, model: str, name: str = "fast", **extra: Any) -> dict:
    return {"name": name, "model": model, "api_base": server.api_base, "api_key": "k", **extra}


def client(
    *deployments: dict[str, Any],
    metrics: MetricsRegistry | None = None,
    sleeps: list[float] | None = None,
    retries: int = 2,
    **section: Any,
) -> LLMClient:
    settings = LLMSettings(
        model=section.pop("model", "fast"),
        deployments=list(deployments),
        structured_mode="json_schema",
        **section,
    )
    return LLMClient(
        settings=settings,
        metrics=metrics if metrics is not None else MetricsRegistry(),
        retry=RetryPolicy(max_retries=retries, base_delay=0.5, jitter=False),
        sleep=(sleeps if sleeps is not None else []).append,
    )


def counters(metrics: MetricsRegistry) -> dict[str, float]:
    return dict(metrics.snapshot()["counters"])


def test_one_plain_model_needs_no_router(server: lb.LoopbackLLM) -> None:
    c = LLMClient(
        settings=LLMSettings(model="openai/solo", api_base=server.api_base, api_key="k"),
        metrics=MetricsRegistry(),
    )
    before = set(threading.enumerate())
    assert c.complete("hi").text == "ok"
    started = set(threading.enumerate()) - before
    assert not any(t.name == "magray-llm-router" for t in started)
    assert [d.label for d in c.deployments()] == ["openai/solo"]
    c.close()


def test_two_deployments_behind_one_name_are_both_used(pair: Any) -> None:
    a, b = pair
    metrics = MetricsRegistry()
    c = client(deployment(a, "openai/m"), deployment(b, "openai/m"), metrics=metrics)
    labels = [d.label for d in c.deployments()]
    assert labels == [f"openai/m@127.0.0.1:{a.port}", f"openai/m@127.0.0.1:{b.port}"]
    answered = [c.complete("hi").model for _ in range(20)]
    c.close()
    assert len(a.requests) + len(b.requests) == 20
    assert a.requests  # load balanced (all 20 on one server: p = 2e-6)
    assert b.requests
    assert set(answered) == set(labels)
    snap = counters(metrics)
    assert snap[f"llm.calls{{model={labels[0]},outcome=ok}}"] == len(a.requests)
    assert snap[f"llm.calls{{model={labels[1]},outcome=ok}}"] == len(b.requests)
    histograms = metrics.snapshot()["histograms"]
    assert histograms[f"llm.latency_ms{{model={labels[0]}}}"]["count"] == len(a.requests)


def test_a_failing_deployment_is_cooled_down(pair: Any) -> None:
    a, b = pair
    a.responder = lambda body: lb.error(500, "a is down")
    metrics = MetricsRegistry()
    c = client(
        deployment(a, "openai/a"), deployment(b, "openai/b"), metrics=metrics, cooldown_time=60
    )
    replies = [c.complete("hi") for _ in range(20)]
    c.close()
    assert {r.text for r in replies} == {"ok"}
    assert {r.model for r in replies} == {"openai/b"}
    # allowed_fails = 1: the second failure within a minute cools "a" down for 60 s
    assert len(a.requests) == 2
    recovered = [r for r in replies if len(r.attempts) > 1]
    assert recovered[0].attempts[0] == {
        "model": "openai/a",
        "outcome": "llm.server",
        "message": recovered[0].attempts[0]["message"],
    }
    assert "a is down" in recovered[0].attempts[0]["message"]
    snap = counters(metrics)
    assert snap["llm.calls{model=openai/a,outcome=llm.server}"] == 2
    assert snap["llm.errors{code=llm.server,model=openai/a}"] == 2


def test_without_cooldown_the_failing_deployment_keeps_being_tried(pair: Any) -> None:
    a, b = pair
    a.responder = lambda body: lb.error(500, "a is down")
    c = client(deployment(a, "openai/a"), deployment(b, "openai/b"), cooldown_time=0)
    replies = [c.complete("hi") for _ in range(20)]
    c.close()
    assert {r.model for r in replies} == {"openai/b"}
    assert len(a.requests) > 2


def test_latency_based_routing_prefers_the_faster_server(pair: Any) -> None:
    slow, fast = pair
    # every answer of "slow" takes 600 ms longer: well above the scheduling hiccups of a
    # loaded CI machine (a 470 ms pause of "quick" was seen once with a 150 ms delay)
    slow.delay = 0.6
    c = client(
        deployment(slow, "openai/slow"),
        deployment(fast, "openai/quick"),
        routing_strategy="latency-based-routing",
    )
    answered = [c.complete("hi").model for _ in range(8)]
    c.close()
    assert answered[-5:].count("openai/quick") >= 4, answered


def test_cost_based_routing_picks_the_cheaper_deployment(pair: Any) -> None:
    pricey, cheap = pair
    metrics = MetricsRegistry()
    c = client(
        deployment(pricey, "openai/pricey", input_cost_per_token=1e-3, output_cost_per_token=2e-3),
        deployment(cheap, "openai/cheap", input_cost_per_token=1e-6, output_cost_per_token=2e-6),
        routing_strategy="cost-based-routing",
        metrics=metrics,
    )
    replies = [c.complete("hi") for _ in range(5)]
    c.close()
    assert {r.model for r in replies} == {"openai/cheap"}
    assert not pricey.requests
    expected = 11 * 1e-6 + 5 * 2e-6  # the loopback server reports 11 prompt + 5 completion tokens
    assert replies[0].usage.cost_usd == pytest.approx(expected)
    assert counters(metrics)["llm.cost_usd{model=openai/cheap}"] == pytest.approx(5 * expected)


def test_a_free_deployment_wins_cost_based_routing(pair: Any) -> None:
    free, paid = pair
    c = client(
        deployment(free, "openai/free", input_cost_per_token=0, output_cost_per_token=0),
        deployment(paid, "openai/paid", input_cost_per_token=1e-9, output_cost_per_token=1e-9),
        routing_strategy="cost-based-routing",
    )
    replies = [c.complete("hi") for _ in range(4)]
    c.close()
    assert {r.model for r in replies} == {"openai/free"}
    assert {r.usage.cost_usd for r in replies} == {0.0}


def test_describe_models_lists_each_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    from magray.llm import describe_models

    monkeypatch.delenv("MAGRAY_TEST_GROQ", raising=False)
    settings = LLMSettings(
        model="fast",
        fallbacks=["openai/gpt-4o-mini"],
        deployments=[
            {"name": "fast", "model": "groq/llama", "api_key_env": "MAGRAY_TEST_GROQ"},
            {"name": "fast", "model": "openai/llama3", "api_base": "http://127.0.0.1:8080/v1"},
        ],
    )
    infos = describe_models(settings)
    assert [(i.model, i.role) for i in infos] == [
        ("groq/llama", "primary (fast)"),
        ("openai/llama3", "primary (fast)"),
        ("openai/gpt-4o-mini", "fallback"),
    ]
    assert (infos[0].key, infos[0].key_source) == ("missing", "set MAGRAY_TEST_GROQ")
    assert (infos[1].key, infos[1].api_base) == ("not needed", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("MAGRAY_TEST_GROQ", "gsk-x")
    again = describe_models(settings)[0]
    assert (again.key, again.key_source) == ("present", "env MAGRAY_TEST_GROQ")


def _weather_call(body: dict[str, Any]) -> lb.Reply:
    return lb.Reply(text="Checking.", tool_calls=[("call_7", "weather", {"city": "Oslo"})])


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def test_streaming_and_tool_calls_through_the_router(pair: Any) -> None:
    a, b = pair
    a.responder = b.responder = _weather_call
    c = client(deployment(a, "openai/a"), deployment(b, "openai/b"))
    stream = c.complete("weather in Oslo?", tools=TOOLS, stream=True)
    deltas = list(stream)
    done = stream.completion
    assert done is not None
    assert "".join(d.text for d in deltas) == "Checking."
    assert [(t.id, t.name, t.arguments) for t in done.tool_calls] == [
        ("call_7", "weather", {"city": "Oslo"})
    ]
    assert done.usage.total_tokens == 16
    assert done.model in {"openai/a", "openai/b"}
    body = (a.requests or b.requests)[-1]
    assert body["stream"] is True
    assert body["tools"][0]["function"]["name"] == "weather"

    plain = c.complete("weather in Oslo?", tools=TOOLS)
    assert plain.tool_calls[0].arguments == {"city": "Oslo"}

    async def run() -> tuple[str, list[Any]]:
        astream = await c.acomplete("weather?", tools=TOOLS, stream=True)
        texts = [d.text async for d in astream]
        assert astream.completion is not None
        await lb.aclose_litellm_clients()
        return "".join(texts), astream.completion.tool_calls

    text, calls = asyncio.run(run())
    c.close()
    assert text == "Checking."
    assert calls[0].name == "weather"


class City(BaseModel):
    name: str
    country: str


def test_structured_output_through_the_router(pair: Any) -> None:
    a, b = pair
    a.responder = b.responder = lambda body: lb.json_reply({"name": "Paris", "country": "FR"})
    c = client(deployment(a, "openai/a"), deployment(b, "openai/b"))
    city = c.structured("Where is the Louvre?", City)
    c.close()
    assert city == City(name="Paris", country="FR")
    body = (a.requests or b.requests)[-1]
    assert lb.schema_name(body) == "City"


def test_a_hanging_deployment_times_out_and_the_other_answers(pair: Any) -> None:
    a, b = pair
    a.responder = lambda body: lb.hang()
    b.script("backup", lb.text("in time"))
    c = client(
        deployment(a, "openai/a", timeout=0.3),
        deployment(b, "openai/backup", name="backup"),
        fallbacks=["backup"],
        retries=0,
    )
    reply = c.complete("hi")
    c.close()
    assert reply.text == "in time"
    assert [x["outcome"] for x in reply.attempts] == ["llm.timeout", "ok"]


def test_a_fallback_name_takes_over_when_a_whole_group_fails(pair: Any) -> None:
    a, b = pair
    a.responder = lambda body: lb.error(503, "overloaded")
    b.script("backup", lb.text("the backup answers"))
    metrics = MetricsRegistry()
    sleeps: list[float] = []
    c = client(
        deployment(a, "openai/a1"),
        deployment(a, "openai/a2"),
        deployment(b, "openai/backup", name="backup"),
        fallbacks=["backup"],
        metrics=metrics,
        sleeps=sleeps,
        retries=1,
    )
    reply = c.complete("hi")
    c.close()
    assert reply.text == "the backup answers"
    assert reply.model == "openai/backup"
    *failed, last = reply.attempts
    assert last["model"] == "openai/backup"
    assert last["outcome"] == "ok"
    assert {x["model"] for x in failed} == {"openai/a1", "openai/a2"}  # both were tried
    assert {x["outcome"] for x in failed} == {"llm.server"}
    assert counters(metrics)["llm.fallbacks{model=openai/backup}"] == 1
    assert all(s <= 0.5 for s in sleeps)  # magray's backoff policy, injected sleep


def test_an_explicit_name_gets_no_fallback(pair: Any) -> None:
    a, b = pair
    a.responder = lambda body: lb.error(500, "down")
    c = client(
        deployment(a, "openai/a1"),
        deployment(a, "openai/a2"),
        deployment(b, "openai/backup", name="backup"),
        fallbacks=["backup"],
        retries=1,
    )
    with pytest.raises(LLMServerError) as info:
        c.complete("hi", model="fast")
    c.close()
    assert not b.requests
    assert info.value.message.startswith("all 2 deployments failed")
    assert info.value.hint


def test_every_deployment_cooling_down_is_one_clear_error(pair: Any) -> None:
    a, b = pair
    a.responder = b.responder = lambda body: lb.error(500, "down")
    c = client(deployment(a, "openai/a"), deployment(b, "openai/b"), retries=3)
    with pytest.raises(LLMServerError):
        c.complete("hi")
    before = len(a.requests) + len(b.requests)
    with pytest.raises(LLMUnavailableError) as info:
        c.complete("hi")
    c.close()
    assert len(a.requests) + len(b.requests) == before  # nothing was sent: both cooling down
    assert info.value.code == "llm.unavailable"
    assert "cooling down" in info.value.message
    assert "llm.cooldown_time" in (info.value.hint or "")


def test_a_deployment_key_comes_from_its_env_var(
    pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    monkeypatch.setenv("MAGRAY_TEST_KEY_A", "sk-from-env-a")
    c = client(
        {
            "name": "fast",
            "model": "openai/a",
            "api_base": a.api_base,
            "api_key_env": "MAGRAY_TEST_KEY_A",
        },
        deployment(b, "openai/b"),
    )
    for _ in range(20):
        c.complete("hi")
    c.close()
    assert a.headers
    assert all(h["authorization"] == "Bearer sk-from-env-a" for h in a.headers)
    assert all(h["authorization"] == "Bearer k" for h in b.headers)


def test_async_calls_use_the_injected_async_sleep(pair: Any) -> None:
    a, b = pair
    a.responder = lambda body: lb.error(500, "down")
    waits: list[float] = []

    async def asleep(seconds: float) -> None:
        waits.append(seconds)

    settings = LLMSettings(
        model="fast",
        fallbacks=["backup"],
        deployments=[deployment(a, "openai/a"), deployment(b, "openai/b", name="backup")],
        cooldown_time=0,
    )
    c = LLMClient(
        settings=settings,
        metrics=MetricsRegistry(),
        retry=RetryPolicy(max_retries=2, base_delay=0.25, jitter=False),
        asleep=asleep,
    )

    async def run() -> str | None:
        try:
            return (await c.acomplete("hi")).text
        finally:
            await lb.aclose_litellm_clients()

    assert asyncio.run(run()) == "ok"
    c.close()
    assert len(a.requests) == 3
    assert len(b.requests) == 1
    assert waits == [0.25, 0.5]  # magray's policy; no wait after the group's last attempt


# ---------------------------------------------------------------- settings


def test_deployment_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        LLMSettings(
            deployments=[{"name": "f", "model": "openai/a"}, {"name": "f", "model": "openai/a"}]
        )
    with pytest.raises(ValidationError, match="not both"):
        LLMSettings(
            deployments=[{"name": "f", "model": "openai/a", "api_key": "x", "api_key_env": "X_KEY"}]
        )
    with pytest.raises(ValidationError, match="itself a deployment name"):
        LLMSettings(deployments=[{"name": "f", "model": "openai/a"}, {"name": "g", "model": "f"}])
    with pytest.raises(ValidationError, match="whitespace"):
        LLMSettings(deployments=[{"name": "my model", "model": "openai/a"}])
    with pytest.raises(ValidationError, match="latency-based-routing"):
        LLMSettings(routing_strategy="fastest")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        LLMSettings(deployments=[{"name": "f", "model": "openai/a", "input_cost_per_token": -1}])
    with pytest.raises(ValidationError, match="label 'x' is used twice"):
        LLMSettings(
            deployments=[
                {"name": "f", "model": "openai/a", "label": "x"},
                {"name": "f", "model": "openai/b", "label": "x"},
            ]
        )


def test_deployments_from_toml_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from magray.common.settings import load_settings

    config = tmp_path / "config.toml"
    config.write_text(
        """
[llm]
model = "fast"
fallbacks = ["openai/gpt-4o-mini"]
routing_strategy = "cost-based-routing"

[[llm.deployments]]
name = "fast"
model = "groq/llama-3.1-8b-instant"
api_key_env = "GROQ_API_KEY"
input_cost_per_token = 5e-8
output_cost_per_token = 8e-8

[[llm.deployments]]
name = "fast"
model = "openai/llama3"
api_base = "http://127.0.0.1:8080/v1"
label = "home-server"
""",
        encoding="utf-8",
    )
    settings = load_settings(config).settings
    c = LLMClient(settings=settings)
    assert c.routing_strategy == "cost-based-routing"
    assert [(d.group, d.label) for d in c.deployments()] == [
        ("fast", "groq/llama-3.1-8b-instant"),
        ("fast", "home-server"),
        ("openai/gpt-4o-mini", "openai/gpt-4o-mini"),
    ]
    monkeypatch.setenv(
        "MAGRAY_LLM__DEPLOYMENTS", '[{"name": "x", "model": "openai/a", "weight": 2}]'
    )
    env = Settings()
    assert env.llm.deployments[0].weight == 2


def test_ctrl_c_in_a_sync_call_cancels_the_request_on_the_router_loop() -> None:
    import os
    import signal

    from magray.llm._portal import Portal

    portal = Portal()
    started, cancelled = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def press_ctrl_c() -> None:
        if started.wait(5):
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        portal.call(forever())
    assert cancelled.wait(5)
    portal.close()
