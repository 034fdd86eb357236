"""Transports: what sends one request. The call skeleton (``_call``) never sees which.

- :class:`~magray.llm._direct.DirectTransport`: OpenAI-compatible servers over httpx
  (``openai/...``, ``local/...``, OpenAI-compatible providers with an ``api_base``);
- :class:`LiteLLMTransport`: any provider litellm supports, one deployment at a time;
- :class:`RoutedCall`: several deployments through litellm's ``Router`` (which retries,
  cools down and falls back itself; magray's accounting rides on its host hooks).

A transport sends exactly one request (no retries: those are the skeleton's, or the
Router's) and returns the response, or an iterator of stream chunks, as its backend
gives them; :mod:`magray.llm._stream` reads both litellm's objects and plain dicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from magray.llm._backend import litellm_module
from magray.llm._config import LOCAL_PREFIX, ModelConfig
from magray.llm._direct import speaks_openai

if TYPE_CHECKING:
    from magray.common.settings import LLMSettings
    from magray.llm._routing import CallLog, RoutedModels

__all__ = ["LiteLLMTransport", "RoutedCall", "Transport", "needs_litellm", "via_litellm"]


class Transport(Protocol):
    """Sends one chat-completion request (litellm-style keyword arguments)."""

    name: str

    def send(self, kwargs: dict[str, Any], *, stream: bool) -> Any:
        """The response, or an iterator of stream chunks."""

    async def asend(self, kwargs: dict[str, Any], *, stream: bool) -> Any:
        """The response, or an async iterator of stream chunks."""

    def cost(
        self, model: str, response: Any, prompt_tokens: int, completion_tokens: int
    ) -> float | None:
        """USD of a call (``None`` when the price is unknown)."""


def via_litellm(cfg: ModelConfig, settings: LLMSettings | None, params: dict[str, Any]) -> bool:
    """Whether a call to ``cfg`` needs litellm rather than the direct transport.

    litellm serves providers that do not speak the OpenAI wire format, calls with
    litellm-only parameters (``mock_response``), and every model when ``llm.transport``
    (or the model's own ``transport`` in ``[llm.models]``) is ``"litellm"``.
    """
    if "mock_response" in params or not speaks_openai(cfg):
        return True
    if settings is None:
        return False
    override = settings.models.get(cfg.model)
    chosen = override.transport if override is not None and override.transport else None
    return (chosen or settings.transport) == "litellm"


def needs_litellm(settings: LLMSettings | None) -> bool:
    """Whether the configured chain needs litellm at all (so a warm-up is worth it)."""
    from magray.llm._deployments import deployments_for, uses_router

    if settings is None or not settings.model:
        return False
    groups = [deployments_for(m, settings) for m in [settings.model, *settings.fallbacks]]
    if uses_router(groups):
        return True
    return any(via_litellm(d.config, settings, {}) for g in groups for d in g)


class LiteLLMTransport:
    """One request through ``litellm.completion`` / ``acompletion`` (imported on first use)."""

    name = "litellm"

    def send(self, kwargs: dict[str, Any], *, stream: bool) -> Any:
        response = litellm_module().completion(**kwargs)
        return iter(response) if stream else response

    async def asend(self, kwargs: dict[str, Any], *, stream: bool) -> Any:
        response = await litellm_module().acompletion(**kwargs)
        return response.__aiter__() if stream else response

    def cost(
        self, model: str, response: Any, prompt_tokens: int, completion_tokens: int
    ) -> float | None:
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
        if isinstance(cost, int | float):
            return float(cost)
        if model.startswith(LOCAL_PREFIX):
            return 0.0
        litellm = litellm_module()
        try:
            if response is not None:
                return float(litellm.completion_cost(completion_response=response))
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
            return float(prompt_cost + completion_cost)
        except Exception:  # price unknown (custom or local model)
            return None


class RoutedCall:
    """One logical call through litellm's Router; ``log`` records its attempts.

    Args:
        routed: The Router over the chain.
        log: The call's record (attempts, answering deployment, last error).
        only: Call only the named group (no fallback to other groups).
    """

    name = "router"

    def __init__(self, routed: RoutedModels, log: CallLog, *, only: bool) -> None:
        self.routed = routed
        self.log = log
        self.only = only

    def send(self, kwargs: dict[str, Any], *, stream: bool) -> Any:
        self.log.sync = True
        response = self.routed.completion(kwargs, self.log, only=self.only)
        return self.routed.iterate(response) if stream else response

    async def asend(self, kwargs: dict[str, Any], *, stream: bool) -> Any:
        self.log.sync = False
        response = await self.routed.acompletion(kwargs, self.log, only=self.only)
        return response.__aiter__() if stream else response

    def cost(
        self, model: str, response: Any, prompt_tokens: int, completion_tokens: int
    ) -> float | None:
        dep = self.log.answered_by
        configured = dep.cost(prompt_tokens, completion_tokens) if dep is not None else None
        if configured is not None:
            return configured
        model = dep.config.model if dep is not None else model
        return LiteLLMTransport().cost(model, response, prompt_tokens, completion_tokens)
