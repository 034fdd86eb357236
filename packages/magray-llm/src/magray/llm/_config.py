"""Per-model call settings resolved from ``[llm]`` settings, and the retry policy."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from magray.common.settings import LLMSettings

__all__ = ["LOCAL_PREFIX", "ModelConfig", "RetryPolicy", "resolve_model"]

LOCAL_PREFIX = "local/"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for retriable errors.

    The n-th retry (0-based) waits ``min(max_delay, base_delay * 2**n)``; with
    ``jitter`` a uniform random part of up to half that delay is taken off, so
    many clients do not retry in lockstep. A ``Retry-After`` from the provider
    wins when it is longer (up to ``max_retry_after`` seconds).
    """

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: bool = True
    max_retry_after: float = 60.0
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def delay(self, retry: int, *, retry_after: float | None = None) -> float:
        value = min(self.max_delay, self.base_delay * (2.0**retry))
        if self.jitter:
            value -= value * 0.5 * float(self.random())
        if retry_after is not None and retry_after > value:
            value = min(retry_after, self.max_retry_after)
        return max(0.0, value)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to call one model.

    Attributes:
        model: The model string as configured (e.g. ``"openai/gpt-4o-mini"``).
        api_base: Server base URL, if not the provider's default.
        api_key: The key to send (``None`` = litellm reads the provider's env var).
        timeout: Seconds per request.
        temperature: Sampling temperature (``None`` = provider default).
        max_tokens: Completion token limit (``None`` = provider default).
        structured_mode: ``auto``, ``json_schema``, ``tool`` or ``prompt``.
        params: Extra litellm keyword arguments.
        key_env: The env var configured to hold the key (``api_key_env``), if any.
    """

    model: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    temperature: float | None = None
    max_tokens: int | None = None
    structured_mode: str = "auto"
    params: dict[str, Any] = field(default_factory=dict)
    key_env: str | None = None

    @property
    def is_local(self) -> bool:
        return self.model.startswith(LOCAL_PREFIX)

    def call_kwargs(self) -> dict[str, Any]:
        """litellm keyword arguments (without messages); never logged: it holds the key."""
        kwargs: dict[str, Any] = {"model": self.model, "timeout": self.timeout}
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        kwargs.update(self.params)
        return kwargs


def resolve_model(model: str, settings: LLMSettings | None) -> ModelConfig:
    """The :class:`ModelConfig` of ``model``: section defaults < ``[llm.models."<model>"]``.

    ``llm.api_base`` and ``llm.api_key`` belong to the primary ``llm.model`` only
    (a fallback on another provider must not get them); other models take theirs
    from ``[llm.models."<model>"]`` or the provider's env var.
    """
    if settings is None:
        return ModelConfig(model=model)
    override = settings.models.get(model)
    primary = model == settings.model
    api_base = settings.api_base if primary else None
    api_key = settings.api_key.get_secret_value() if primary and settings.api_key else None
    timeout = settings.timeout
    temperature: float | None = settings.temperature
    max_tokens = settings.max_tokens
    mode: str = settings.structured_mode
    params: dict[str, Any] = {}
    key_env: str | None = None
    if override is not None:
        api_base = override.api_base or api_base
        if override.api_key is not None:
            api_key = override.api_key.get_secret_value()
        elif override.api_key_env:
            key_env = override.api_key_env
            api_key = os.environ.get(override.api_key_env) or api_key
        timeout = override.timeout or timeout
        if override.temperature is not None:
            temperature = override.temperature
        max_tokens = override.max_tokens or max_tokens
        mode = override.structured_mode or mode
        params = dict(override.params)
    return ModelConfig(
        model=model,
        api_base=api_base,
        api_key=api_key,
        timeout=timeout,
        temperature=temperature,
        max_tokens=max_tokens,
        structured_mode=mode,
        params=params,
        key_env=key_env,
    )
