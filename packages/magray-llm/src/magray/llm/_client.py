"""``LLMClient``: one client for every LLM provider, its call path written once.

It adds what the transports leave to the caller: settings-driven model configs,
retries with exponential backoff on retriable errors only, fallbacks to other
models, typed results, streaming assembly, structured output with repair, and
usage/cost/latency metrics.

This module holds the configuration (the chain of models, their deployments, the
Router when there are several, keys) and the public API. The calls themselves are
:class:`~magray.llm._skeleton.CallSkeleton`'s: one generator per call that yields its
requests to a transport (:mod:`magray.llm._transport`: the direct httpx client for
OpenAI-compatible servers, litellm for other providers, litellm's Router for several
deployments); ``complete`` and ``acomplete`` only drive it. litellm is imported only
when a call needs it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from pydantic import BaseModel

from magray.common.errors import LLMError
from magray.common.metrics import MetricsRegistry, default_registry
from magray.llm._backend import litellm_module, missing_key
from magray.llm._call import (
    AsyncCompletionStream,
    CompletionStream,
    arun,
    run,
)
from magray.llm._config import LOCAL_PREFIX, ModelConfig, RetryPolicy
from magray.llm._deployments import Deployment, deployments_for, uses_router
from magray.llm._direct import DirectTransport, model_info
from magray.llm._routing import DEFAULT_STRATEGY, RoutedModels
from magray.llm._skeleton import CallSkeleton
from magray.llm._transport import LiteLLMTransport, via_litellm
from magray.llm._types import Completion, Message
from magray.llm.errors import LLMNotConfiguredError

if TYPE_CHECKING:
    from magray.common.settings import LLMSettings, Settings
    from magray.llm._local import LocalServers

__all__ = ["AsyncCompletionStream", "CompletionStream", "LLMClient"]

M = TypeVar("M", bound=BaseModel)


class LLMClient(CallSkeleton):
    """Chat completions with retries, fallbacks, streaming, tool calls and structured output.

    Args:
        model: The primary litellm model string (default: ``llm.model`` from settings).
        fallbacks: Models tried in order when the primary fails (default: ``llm.fallbacks``).
        settings: The ``[llm]`` settings section (or the whole :class:`Settings`).
        metrics: Where usage, cost, latency and errors are recorded.
        retry: The backoff policy (default: from settings).
        sleep: Called with the backoff delay in seconds (inject a fake in tests).
        asleep: The async variant of ``sleep``.
        clock: Monotonic clock in seconds, for latency.
        local: Manager of ``local/...`` llama.cpp servers (created on demand).
        routing_strategy: How litellm's Router picks among several deployments of
            one name (default: ``llm.routing_strategy``, else ``simple-shuffle``).

    When the chain (``model`` + ``fallbacks``, each name expanded to its
    ``[[llm.deployments]]``) has more than one deployment, calls go through a
    ``litellm.Router``: load balancing, cooldowns, retries and fallbacks are its;
    metrics per deployment, errors and backoff timing stay magray's. Otherwise each
    model of the chain is called in turn: OpenAI-compatible ones (``openai/...``,
    ``local/...``, ``hosted_vllm/...`` with an ``api_base``) by the direct httpx
    transport, without importing litellm; other providers, and every model when
    ``llm.transport = "litellm"``, through litellm.

    Example::

        client = LLMClient("openai/gpt-4o-mini")
        reply = client.complete("Say hi")
        reply.text, reply.usage.total_tokens, reply.usage.cost_usd
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        fallbacks: Sequence[str] | None = None,
        settings: LLMSettings | Settings | None = None,
        metrics: MetricsRegistry | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
        local: LocalServers | None = None,
        routing_strategy: str | None = None,
    ) -> None:
        section = _llm_section(settings)
        self._settings = section
        self.model = model or (section.model if section is not None else None)
        if fallbacks is None:
            fallbacks = section.fallbacks if section is not None else []
        self.fallbacks = [m for m in fallbacks if m != self.model]
        self._metrics = metrics if metrics is not None else default_registry()
        if retry is None:
            retry = (
                RetryPolicy(
                    max_retries=section.max_retries,
                    base_delay=section.retry_base_delay,
                    max_delay=section.retry_max_delay,
                )
                if section is not None
                else RetryPolicy()
            )
        self.retry = retry
        self._sleep = sleep
        self._asleep = asleep
        self._clock = clock
        self._local = local
        configured = section.routing_strategy if section is not None else None
        self.routing_strategy: str = routing_strategy or configured or DEFAULT_STRATEGY
        self._routers: dict[tuple[str, ...], RoutedModels | None] = {}
        # The Router's event-loop thread ends with the client even without close().
        weakref.finalize(self, _close_routers, self._routers)
        self._litellm = LiteLLMTransport()
        self._direct = DirectTransport()
        weakref.finalize(self, self._direct.close)

    # ------------------------------------------------------------ configuration

    @property
    def models(self) -> list[str]:
        """The primary model followed by the fallbacks."""
        return ([self.model] if self.model else []) + self.fallbacks

    def config_for(self, model: str) -> ModelConfig:
        """The resolved call settings of ``model`` (key included; do not log it).

        For a name with several ``[[llm.deployments]]`` this is the first deployment's.
        """
        return deployments_for(model, self._settings)[0].config

    def deployments(self, model: str | None = None) -> list[Deployment]:
        """The deployments behind ``model`` (default: the whole chain), in order."""
        names = [model] if model is not None else self.models
        return [d for name in names for d in deployments_for(name, self._settings)]

    def check_keys(self, model: str | None = None) -> None:
        """Raise the error a call would end with when no model of it can carry an API key.

        No request is made and litellm is not imported: front ends call this before slow
        work (memory retrieval, planning) so that a missing key is reported at once.

        Args:
            model: Check only this model (default: the configured chain).

        Raises:
            LLMAuthError: Every deployment of the chain (or of ``model``) needs a key from
                an env var that is not set; the message and hint name the variable.
            LLMNotConfiguredError: No model is configured.
        """
        deployments = self.deployments(model) if model is not None else None
        if deployments is None:
            self._chain(None)
            deployments = self.deployments()
        errors = [missing_key(d.config) for d in deployments]
        first = errors[0] if errors else None
        if first is not None and all(errors):
            raise first

    def _routed_chain(self, chain: tuple[str, ...]) -> RoutedModels | None:
        if chain not in self._routers:
            groups = [deployments_for(name, self._settings) for name in chain]
            section = self._settings
            self._routers[chain] = (
                RoutedModels(
                    groups,
                    strategy=self.routing_strategy,
                    retry=self.retry,
                    allowed_fails=section.allowed_fails if section is not None else 1,
                    cooldown_time=section.cooldown_time if section is not None else 30.0,
                    metrics=self._metrics,
                    sleep=self._sleep,
                    asleep=self._asleep,
                    local_api_base=_local_api_base(weakref.ref(self)),
                    clock=self._clock,
                )
                if uses_router(groups)
                else None
            )
        return self._routers[chain]

    def _router_for(self, model: str | None) -> tuple[RoutedModels, str, bool] | None:
        """The Router serving a call, the model name to ask it for and whether that name
        alone may answer (an explicit ``model``); ``None`` = call one deployment directly."""
        routing = self._routing(model)
        if routing is not None:  # the Router would retry a missing key: fail before it
            self.check_keys(model)
        return routing

    def _routing(self, model: str | None) -> tuple[RoutedModels, str, bool] | None:
        if model is None:
            if not self.models:
                self._chain(None)  # raises LLMNotConfiguredError
            routed = self._routed_chain(tuple(self.models))
            return (routed, self.models[0], False) if routed is not None else None
        routed = self._routed_chain(tuple(self.models)) if self.models else None
        group = routed.group_of(model) if routed is not None else None
        if routed is not None and group is not None and len(group) > 1:
            return routed, model, True
        alone = self._routed_chain((model,))
        return (alone, model, True) if alone is not None else None

    def _chain(self, model: str | None) -> list[ModelConfig]:
        if model is not None:
            return [self.config_for(model)]
        if not self.models:
            raise LLMNotConfiguredError(
                "no language model is configured",
                hint="set one, e.g. `magray config set llm.model openai/gpt-4o-mini` "
                "(or MAGRAY_LLM__MODEL); without it magray uses its rule-based agents",
            )
        return [self.config_for(m) for m in self.models]

    def _local_servers(self) -> LocalServers:
        if self._local is None:
            from magray.llm._local import LocalServers

            self._local = LocalServers.from_settings(self._settings)
        return self._local

    def _prepare(self, cfg: ModelConfig) -> dict[str, Any]:
        kwargs = cfg.call_kwargs()
        if cfg.is_local:
            name = cfg.model[len(LOCAL_PREFIX) :]
            kwargs["model"] = f"openai/{name}"
            kwargs["api_base"] = self._local_servers().api_base(name)
            kwargs.setdefault("api_key", "local")
            from magray.llm._local import STOP

            kwargs.setdefault("stop", list(STOP))
        # Retries are ours (with backoff and metrics): switch off litellm's and openai's.
        kwargs["num_retries"] = 0
        kwargs["max_retries"] = 0
        return kwargs

    # ------------------------------------------------------------ metrics

    # ------------------------------------------------------------ the call, written once

    # ------------------------------------------------------------ through litellm's Router

    # ------------------------------------------------------------ structured output

    def structured_mode(self, model: str) -> str:
        """How structured output is requested from ``model`` (resolves ``auto``).

        For a name with several deployments, ``auto`` picks what all of them support.
        """
        override = self._settings.models.get(model) if self._settings is not None else None
        if override is not None and override.structured_mode not in (None, "auto"):
            return override.structured_mode
        configs = [d.config for d in deployments_for(model, self._settings)]
        modes = {cfg.structured_mode for cfg in configs}
        if len(modes) == 1 and (mode := next(iter(modes))) != "auto":
            return mode
        resolved = {self._auto_mode(cfg) for cfg in configs}
        for mode in ("prompt", "tool", "json_schema"):  # the weakest one all deployments share
            if mode in resolved:
                return mode
        return "prompt"

    def _auto_mode(self, cfg: ModelConfig) -> str:
        if cfg.structured_mode != "auto":
            return cfg.structured_mode
        if cfg.is_local:
            return "json_schema"  # llama.cpp's server enforces response_format schemas
        if not via_litellm(cfg, self._settings, {}):  # litellm's model list, not litellm
            info = model_info(cfg.model)
            if info.get("supports_response_schema"):
                return "json_schema"
            return "tool" if info.get("supports_function_calling") else "prompt"
        litellm = litellm_module()
        try:
            if litellm.supports_response_schema(model=cfg.model):
                return "json_schema"
            if litellm.supports_function_calling(model=cfg.model):
                return "tool"
        except Exception:
            pass
        return "prompt"

    # ------------------------------------------------------------ public API

    @overload
    def complete(
        self,
        messages: str | Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = ...,
        response_model: type[BaseModel] | None = ...,
        stream: Literal[False] = ...,
        *,
        model: str | None = ...,
        **params: Any,
    ) -> Completion: ...

    @overload
    def complete(
        self,
        messages: str | Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = ...,
        response_model: None = ...,
        *,
        stream: Literal[True],
        model: str | None = ...,
        **params: Any,
    ) -> CompletionStream: ...

    def complete(
        self,
        messages: str | Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        response_model: type[BaseModel] | None = None,
        stream: bool = False,
        *,
        model: str | None = None,
        **params: Any,
    ) -> Completion | CompletionStream:
        """Run a chat completion.

        Args:
            messages: A user prompt, or OpenAI-style message dicts.
            tools: OpenAI-style tool schemas the model may call.
            response_model: A pydantic model: the reply is validated into it
                (``Completion.parsed``), with repair attempts on invalid output.
            stream: Return a :class:`CompletionStream` of deltas instead.
            model: Use only this model (no fallbacks) instead of the configured chain.
            **params: Extra litellm parameters (``temperature``, ``max_tokens``,
                ``tool_choice``, ``mock_response``, ...).

        Raises:
            LLMNotConfiguredError: No model is configured.
            LLMError: A subclass from :mod:`magray.llm.errors` when every
                attempt on every model failed.
            StructuredOutputError: No valid structured reply after the repairs.
        """
        steps = self._steps(messages, tools, response_model, stream=stream, model=model, **params)
        result = run(steps, self._sleep)
        return CompletionStream(result) if stream else result

    @overload
    async def acomplete(
        self,
        messages: str | Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = ...,
        response_model: type[BaseModel] | None = ...,
        stream: Literal[False] = ...,
        *,
        model: str | None = ...,
        **params: Any,
    ) -> Completion: ...

    @overload
    async def acomplete(
        self,
        messages: str | Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = ...,
        response_model: None = ...,
        *,
        stream: Literal[True],
        model: str | None = ...,
        **params: Any,
    ) -> AsyncCompletionStream: ...

    async def acomplete(
        self,
        messages: str | Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        response_model: type[BaseModel] | None = None,
        stream: bool = False,
        *,
        model: str | None = None,
        **params: Any,
    ) -> Completion | AsyncCompletionStream:
        """The async variant of :meth:`complete` (same arguments and errors)."""
        steps = self._steps(messages, tools, response_model, stream=stream, model=model, **params)
        result = await arun(steps, self._asleep)
        return AsyncCompletionStream(result) if stream else result

    def structured(
        self,
        messages: str | Sequence[Message],
        response_model: type[M],
        *,
        model: str | None = None,
        **params: Any,
    ) -> M:
        """Shorthand for ``complete(..., response_model=...).parsed`` with its type."""
        completion = self.complete(messages, response_model=response_model, model=model, **params)
        parsed: M = completion.parsed
        return parsed

    def close(self) -> None:
        """Stop local servers this client started, the Router's event-loop thread, and
        close the direct transport's kept-alive connections."""
        _close_routers(self._routers)
        self._direct.close()
        if self._local is not None:
            self._local.stop_all()


def _local_api_base(client: weakref.ref[LLMClient]) -> Callable[[str], str]:
    """Starts a ``local/<name>`` server on demand without keeping the client alive."""

    def api_base(name: str) -> str:
        owner = client()
        if owner is None:
            raise LLMError("the LLM client was closed", hint="create a new LLMClient")
        return owner._local_servers().api_base(name)

    return api_base


def _close_routers(routers: dict[tuple[str, ...], RoutedModels | None]) -> None:
    for routed in routers.values():
        if routed is not None:
            routed.close()
    routers.clear()


def _llm_section(settings: LLMSettings | Settings | None) -> LLMSettings | None:
    from magray.common.settings import Settings

    if isinstance(settings, Settings):
        return settings.llm
    return settings
