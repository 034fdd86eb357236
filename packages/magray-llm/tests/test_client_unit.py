"""Client layer unit tests with litellm's own ``mock_response`` (no server at all)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from magray.common.errors import InvalidInputError, MagrayError
from magray.common.metrics import MetricsRegistry
from magray.common.settings import LLMSettings, Settings
from magray.llm import (
    LLMClient,
    LLMContextWindowError,
    LLMNotConfiguredError,
    LLMRateLimitError,
    RetryPolicy,
)
from magray.llm._config import resolve_model


def client(**kw: object) -> LLMClient:
    return LLMClient(
        "gpt-4o-mini",
        metrics=MetricsRegistry(),
        retry=RetryPolicy(max_retries=2, base_delay=1.0, jitter=False),
        **kw,  # type: ignore[arg-type]
    )


def test_import_does_not_import_litellm() -> None:
    code = "import sys, magray.llm; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mock_completion_with_known_price() -> None:
    metrics = MetricsRegistry()
    c = LLMClient("gpt-4o-mini", metrics=metrics)
    reply = c.complete("hi", mock_response="hello")
    assert reply.text == "hello"
    assert reply.usage.total_tokens > 0
    assert reply.usage.cost_usd is not None
    assert reply.usage.cost_usd > 0
    assert metrics.snapshot()["counters"]["llm.cost_usd{model=gpt-4o-mini}"] > 0


def test_mock_stream() -> None:
    stream = client().complete(
        [{"role": "user", "content": "hi"}], stream=True, mock_response="streamed words"
    )
    assert "".join(d.text for d in stream) == "streamed words"
    assert stream.completion is not None
    assert stream.completion.text == "streamed words"


def test_mock_rate_limit_is_retried_then_raised() -> None:
    sleeps: list[float] = []
    with pytest.raises(LLMRateLimitError) as info:
        client(sleep=sleeps.append).complete("hi", mock_response="litellm.RateLimitError")
    assert sleeps == [1.0, 2.0]
    assert info.value.retriable


def test_mock_context_window_is_not_retried() -> None:
    sleeps: list[float] = []
    with pytest.raises(LLMContextWindowError):
        client(sleep=sleeps.append).complete(
            "hi", mock_response="litellm.ContextWindowExceededError"
        )
    assert sleeps == []


def test_not_configured() -> None:
    with pytest.raises(LLMNotConfiguredError) as info:
        LLMClient(settings=LLMSettings()).complete("hi")
    assert "llm.model" in (info.value.hint or "")
    assert isinstance(info.value, MagrayError)


def test_bad_messages_and_bad_combinations() -> None:
    with pytest.raises(InvalidInputError):
        client().complete([{"content": "no role"}])
    from pydantic import BaseModel

    class M(BaseModel):
        x: int

    with pytest.raises(InvalidInputError):
        client().complete("x", response_model=M, stream=True)  # type: ignore[call-overload]


def test_retry_policy() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=False)
    assert [policy.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(0, retry_after=10.0) == 10.0
    jittered = RetryPolicy(base_delay=1.0, random=lambda: 1.0)
    assert jittered.delay(1) == 1.0  # 2.0 minus up to half of it


def test_model_settings_resolution() -> None:
    settings = Settings.model_validate(
        {
            "llm": {
                "model": "openai/main",
                "api_base": "http://127.0.0.1:9/v1",
                "api_key": "sk-main",
                "fallbacks": ["anthropic/claude-3-5-haiku-latest"],
                "models": {
                    "anthropic/claude-3-5-haiku-latest": {
                        "api_key_env": "MY_CLAUDE_KEY",
                        "timeout": 5,
                        "structured_mode": "tool",
                    }
                },
            }
        }
    ).llm
    main = resolve_model("openai/main", settings)
    assert (main.api_base, main.api_key) == ("http://127.0.0.1:9/v1", "sk-main")
    assert "sk-main" not in repr(main)
    other = resolve_model("anthropic/claude-3-5-haiku-latest", settings)
    assert other.api_base is None  # the primary's server is not leaked to a fallback
    assert other.api_key is None  # env var unset
    assert (other.timeout, other.structured_mode) == (5, "tool")
    c = LLMClient(settings=settings)
    assert c.models == ["openai/main", "anthropic/claude-3-5-haiku-latest"]
    assert c.structured_mode("anthropic/claude-3-5-haiku-latest") == "tool"


def test_warm_up_imports_litellm_once_in_the_background() -> None:
    import sys

    from magray.llm import _backend, warm_up

    thread = warm_up(background=True)
    assert thread is not None
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert "litellm" in sys.modules
    module = _backend.litellm_module()
    assert warm_up() is None
    assert _backend.litellm_module() is module
