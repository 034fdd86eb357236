"""Which transport serves a call, and that the direct one never imports litellm."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import magray.llm.testing as lb
from magray.common.metrics import MetricsRegistry
from magray.common.settings import LLMSettings
from magray.llm import LLMClient
from magray.llm._config import ModelConfig
from magray.llm._direct import model_info, speaks_openai
from magray.llm._transport import needs_litellm, via_litellm

pytestmark = pytest.mark.network_stub

_DIRECT_CALLS = """
import asyncio, json, sys
from pydantic import BaseModel
from magray.common.settings import LLMSettings
from magray.llm import LLMClient

class Weather(BaseModel):
    city: str

base, transport = sys.argv[1], sys.argv[2]
client = LLMClient(settings=LLMSettings(
    model="openai/gpt-4o-mini", api_base=base, api_key="k", transport=transport))
out = {"text": client.complete("hi").text}
stream = client.complete("hi", stream=True)
out["stream"] = "".join(d.text for d in stream)
out["cost"] = stream.completion.usage.cost_usd
out["parsed"] = client.structured("weather?", Weather).city
out["mode"] = client.structured_mode("openai/gpt-4o-mini")

async def main():
    reply = await client.acomplete("hi")
    chunks = await client.acomplete("hi", stream=True)
    return reply.text, "".join([d.text async for d in chunks])

out["async"] = asyncio.run(main())
client.close()
out["litellm"] = "litellm" in sys.modules
print(json.dumps(out))
"""


def _replies(body: dict[str, Any]) -> lb.Reply:
    if lb.schema_name(body) == "Weather":
        return lb.json_reply({"city": "Oslo"})
    return lb.text("hello")


@pytest.mark.parametrize("transport", ["auto", pytest.param("litellm", marks=pytest.mark.slow)])
def test_a_direct_call_never_imports_litellm(transport: str) -> None:
    """Plain, streamed, structured and async calls: litellm stays out of sys.modules,
    unless llm.transport = "litellm" forces it; both give the same results."""
    with lb.LoopbackLLM() as server:
        server.responder = _replies
        done = subprocess.run(
            [sys.executable, "-c", _DIRECT_CALLS, server.api_base, transport],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["litellm"] is (transport == "litellm")
    assert out["text"] == "hello"
    assert out["stream"] == "hello"
    assert out["parsed"] == "Oslo"
    assert out["mode"] == "json_schema"  # from litellm's model list, with or without litellm
    assert out["async"] == ["hello", "hello"]
    assert out["cost"] is not None
    assert out["cost"] > 0  # gpt-4o-mini has a price in the list


def test_both_transports_price_a_known_model_alike(server: Any) -> None:
    costs = {}
    for transport in ("auto", "litellm"):
        server.script("gpt-4o-mini", lb.chat("x", prompt_tokens=1000, completion_tokens=500))
        section = LLMSettings(
            model="openai/gpt-4o-mini", api_base=server.api_base, api_key="k", transport=transport
        )
        client = LLMClient(settings=section, metrics=MetricsRegistry())
        costs[transport] = client.complete("hi").usage.cost_usd
        client.close()
    assert costs["auto"] is not None
    assert costs["auto"] == pytest.approx(costs["litellm"])


def test_which_models_go_direct() -> None:
    assert speaks_openai(ModelConfig("openai/gpt-4o-mini"))
    assert speaks_openai(ModelConfig("local/gemma"))
    assert speaks_openai(ModelConfig("hosted_vllm/llama", api_base="http://127.0.0.1:8000/v1"))
    assert not speaks_openai(ModelConfig("hosted_vllm/llama"))
    assert not speaks_openai(ModelConfig("anthropic/claude-3-5-haiku-latest"))
    assert not speaks_openai(ModelConfig("gpt-4o-mini"))  # no provider prefix: litellm decides
    section = LLMSettings(
        model="openai/a", models={"openai/b": {"transport": "litellm"}}, fallbacks=["openai/b"]
    )
    assert not via_litellm(ModelConfig("openai/a"), section, {})
    assert via_litellm(ModelConfig("openai/b"), section, {})
    assert via_litellm(ModelConfig("openai/a"), section, {"mock_response": "x"})
    assert via_litellm(ModelConfig("openai/a"), LLMSettings(transport="litellm"), {})
    assert not needs_litellm(LLMSettings(model="openai/a"))
    assert needs_litellm(section)  # openai/b is forced through litellm
    assert needs_litellm(LLMSettings(model="anthropic/claude-3-5-haiku-latest"))
    assert not needs_litellm(LLMSettings())


def _printed(code: str) -> list[str]:
    """The words a fresh interpreter running ``code`` prints."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_model_info_reads_the_bundled_price_list_without_litellm() -> None:
    code = (
        "import sys; from magray.llm._direct import model_info; "
        "i = model_info('openai/gpt-4o-mini'); "
        "print(i['input_cost_per_token'] > 0, model_info('openai/nope') == {}, "
        "'litellm' in sys.modules)"
    )
    assert _printed(code) == ["True", "True", "False"]
    assert model_info("gpt-4o-mini")["litellm_provider"] == "openai"


def test_warm_up_skips_litellm_when_no_model_needs_it() -> None:
    code = (
        "import sys; from magray.common.settings import LLMSettings; "
        "from magray.llm import warm_up; "
        "print(warm_up(background=True, settings=LLMSettings(model='openai/x')), "
        "'litellm' in sys.modules)"
    )
    assert _printed(code) == ["None", "False"]
