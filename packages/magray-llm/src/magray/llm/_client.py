"""``LLMClient``: one client for every LLM provider, its call path written once.

It adds what the transports leave to the caller: settings-driven model configs,
retries with exponential backoff on retriable errors only, fallbacks to other
models, typed results, streaming assembly, structured output with repair, and
usage/cost/latency metrics.

Each call is one generator (see :mod:`magray.llm._call`): it builds the request,
yields it to a transport (:mod:`magray.llm._transport`: the direct httpx client for
OpenAI-compatible servers, litellm for other providers, litellm's Router for several
deployments), maps errors, retries and falls back, and returns the result; ``complete``
and ``acomplete`` only drive it. litellm is imported only when a call needs it.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from pydantic import BaseModel

from magray.common.errors import LLMError
from magray.common.log import get_logger
from magray.common.metrics import MetricsRegistry, default_registry
from magray.llm._backend import key_names, litellm_module, map_error, missing_key
from magray.llm._call import (
    AsyncCompletionStream,
    CompletionStream,
    Opened,
    Send,
    Sleep,
    Steps,
    arun,
    run,
)
from magray.llm._config import LOCAL_PREFIX, ModelConfig, RetryPolicy
from magray.llm._direct import DirectTransport, estimate_tokens, model_info
from magray.llm._routing import (
    DEFAULT_STRATEGY,
    CallLog,
    Deployment,
    RoutedModels,
    deployments_for,
    retry_after,
    uses_router,
)
from magray.llm._stream import StreamAssembler, completion_from_response
from magray.llm._structured import ParseFailure, parse_reply, repair_messages, request_params
from magray.llm._transport import LiteLLMTransport, RoutedCall, Transport, via_litellm
from magray.llm._types import Completion, Message, Usage, normalize_messages
from magray.llm.errors import LLMNotConfiguredError, LLMUnavailableError, StructuredOutputError

if TYPE_CHECKING:
    from magray.common.settings import LLMSettings, Settings
    from magray.llm._local import LocalServers

__all__ = ["AsyncCompletionStream", "CompletionStream", "LLMClient"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_log = get_logger("magray.llm")


@dataclass(frozen=True)
class _Ask:
    """One logical request as the caller made it.

    Attributes:
        messages: The conversation (normalized message dicts).
        tools: Tool schemas the model may call.
        model: Only this model (no fallbacks), or ``None`` for the configured chain.
        params: Extra request parameters (they win over the model's configured ones).
        stream: Whether the reply is streamed.
    """

    messages: list[dict[str, Any]]
    tools: Sequence[dict[str, Any]] | None
    model: str | None
    params: dict[str, Any]
    stream: bool

    def kwargs(self, base: dict[str, Any]) -> dict[str, Any]:
        """The request's keyword arguments: ``base`` (a model's), the params, the messages."""
        kwargs = {**base, **self.params, "messages": self.messages}
        if self.tools:
            kwargs["tools"] = list(self.tools)
        if self.stream:
            kwargs["stream"] = True
            kwargs.setdefault("stream_options", {"include_usage": True})
        return kwargs


@dataclass
class _Answer:
    """Who answered a call and how to account for it (shared by every transport).

    Attributes:
        label: The model name in the completion and in metrics.
        transport: The transport that answered (prices the call).
        attempts: The call's attempt log (the answering attempt still to be logged when
            ``plain``; the Router's host has logged it otherwise).
        latency_ms: The answering attempt's latency.
        plain: Whether magray's own loop made the attempts (not litellm's Router).
        model: The model string to price.
    """

    label: str
    transport: Transport
    attempts: list[dict[str, Any]]
    latency_ms: float
    plain: bool
    model: str

    def price(self, response: Any, usage: Usage) -> float | None:
        return self.transport.cost(
            self.model, response, usage.prompt_tokens, usage.completion_tokens
        )


class LLMClient:
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

    def _record_ok(self, model: str, completion: Completion, latency_ms: float) -> None:
        m = self._metrics
        m.counter("llm.calls", model=model, outcome="ok").inc()
        m.histogram("llm.latency_ms", model=model).observe(latency_ms)
        m.counter("llm.tokens.prompt", model=model).inc(completion.usage.prompt_tokens)
        m.counter("llm.tokens.completion", model=model).inc(completion.usage.completion_tokens)
        if completion.usage.cost_usd is not None:
            m.counter("llm.cost_usd", model=model).inc(completion.usage.cost_usd)
        _log.debug(
            "llm.call",
            model=model,
            latency_ms=round(latency_ms, 1),
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            cost_usd=completion.usage.cost_usd,
        )

    def _record_error(self, model: str, err: LLMError, latency_ms: float) -> None:
        self._metrics.counter("llm.calls", model=model, outcome=err.code).inc()
        self._metrics.counter("llm.errors", model=model, code=err.code).inc()
        self._metrics.histogram("llm.latency_ms", model=model).observe(latency_ms)
        _log.info("llm.error", model=model, code=err.code, retriable=err.retriable)

    # ------------------------------------------------------------ the call, written once

    def _transport(self, cfg: ModelConfig, params: dict[str, Any]) -> Transport:
        if via_litellm(cfg, self._settings, params):
            return self._litellm
        return self._direct

    def _failed(self, err: LLMError, attempts: list[dict[str, Any]], count: int) -> LLMError:
        err.details["attempts"] = attempts
        if count > 1:
            err.message = f"all {count} models failed; last: {err.message}"
            err.args = (err.message,)
        return err

    def _attempts(self, ask: _Ask) -> Steps[tuple[Any, _Answer]]:
        """Every model of the chain in turn, each retried with backoff while retriable."""
        chain = self._chain(ask.model)
        attempts: list[dict[str, Any]] = []
        last: LLMError | None = None
        for index, cfg in enumerate(chain):
            if index > 0:
                self._metrics.counter("llm.fallbacks", model=cfg.model).inc()
                _log.info("llm.fallback", model=cfg.model, after=chain[index - 1].model)
            for retry in range(self.retry.max_retries + 1):
                start = self._clock()
                try:
                    _require_key(cfg)
                    transport = self._transport(cfg, ask.params)
                    response = yield Send(transport, ask.kwargs(self._prepare(cfg)), ask.stream)
                except Exception as exc:
                    err = _mapped(exc, cfg)
                    self._record_error(cfg.model, err, (self._clock() - start) * 1000)
                    attempts.append(
                        {"model": cfg.model, "outcome": err.code, "message": err.message}
                    )
                    last = err
                    if not err.retriable or retry >= self.retry.max_retries:
                        break
                    self._metrics.counter("llm.retries", model=cfg.model).inc()
                    yield Sleep(self.retry.delay(retry, retry_after=retry_after(exc)))
                    continue
                latency = (self._clock() - start) * 1000
                return response, _Answer(cfg.model, transport, attempts, latency, True, cfg.model)
        assert last is not None
        raise self._failed(last, attempts, len(chain))

    def _routed_attempt(
        self, routing: tuple[RoutedModels, str, bool], ask: _Ask
    ) -> Steps[tuple[Any, _Answer]]:
        """One call through litellm's Router, which retries and falls back itself."""
        routed, name, only = routing
        routed.router()  # built outside the try: a set-up error is not a failed attempt
        call = RoutedCall(routed, CallLog(sync=True), only=only)
        try:
            response = yield Send(call, {**ask.kwargs({}), "model": name}, ask.stream)
        except Exception as exc:
            raise self._routed_failure(exc, call.log, routed, name, only) from exc
        dep = call.log.answered_by
        assert dep is not None
        answer = _Answer(
            dep.label, call, call.log.attempts, call.log.answer_latency_ms, False, dep.config.model
        )
        return response, answer

    def _request(self, ask: _Ask) -> Steps[Any]:
        """One logical request: a :class:`Completion`, or an :class:`Opened` stream."""
        started = self._clock()
        routing = self._router_for(ask.model)
        attempt = self._attempts(ask) if routing is None else self._routed_attempt(routing, ask)
        response, answer = yield from attempt
        if ask.stream:
            assembler = StreamAssembler(model=answer.label)
            finish = self._finisher(answer, assembler, ask.messages, started)
            return Opened(
                response, assembler, finish, lambda exc: map_error(exc, model=answer.label)
            )
        completion = completion_from_response(response, model=answer.label)
        completion.usage = _with_cost(completion, answer.price(response, completion.usage))
        self._record_ok(answer.label, completion, answer.latency_ms)
        if answer.plain:
            answer.attempts.append(
                {"model": answer.label, "outcome": "ok", "latency_ms": round(answer.latency_ms, 3)}
            )
        completion.latency_ms = (self._clock() - started) * 1000
        completion.attempts = answer.attempts
        return completion

    def _finisher(
        self,
        answer: _Answer,
        assembler: StreamAssembler,
        messages: list[dict[str, Any]],
        started: float,
    ) -> Callable[[], Completion]:
        def finish() -> Completion:
            completion = assembler.completion()
            usage = assembler.usage
            if usage is None and answer.transport is self._direct:
                usage = _estimated_usage(messages, completion)
            usage = usage or Usage()
            completion.usage = _with_cost(
                Completion(text=None, usage=usage), answer.price(None, usage)
            )
            completion.latency_ms = (self._clock() - started) * 1000
            latency = round(completion.latency_ms, 3)
            if answer.plain:
                answer.attempts.append(
                    {"model": answer.label, "outcome": "ok", "latency_ms": latency}
                )
            else:
                answer.attempts[-1]["latency_ms"] = latency
            completion.attempts = answer.attempts
            self._record_ok(answer.label, completion, completion.latency_ms)
            return completion

        return finish

    # ------------------------------------------------------------ through litellm's Router

    def _routed_failure(
        self, exc: BaseException, log: CallLog, routed: RoutedModels, name: str, only: bool
    ) -> LLMError:
        deployments = routed.group_of(name) if only else routed.deployments
        count = len(deployments or [])
        if "No deployments available" in str(exc):
            cooldown = self._settings.cooldown_time if self._settings is not None else 30.0
            err: LLMError = LLMUnavailableError(
                f"no deployment of {name!r} is available: every one failed recently and is "
                "cooling down",
                hint=f"wait llm.cooldown_time ({cooldown:g} s), check the servers with "
                "`magray llm test MODEL`, or add llm.fallbacks",
                details={"model": name},
            )
            if log.last_error is not None:
                err.details["last_error"] = log.last_error.message
        elif log.last_error is not None:
            err = log.last_error
        else:
            err = map_error(exc, model=name)
            if err is not exc:
                err.__cause__ = exc
        err.details["attempts"] = log.attempts
        if count > 1 and not isinstance(err, LLMUnavailableError):
            plain = all(len(g) == 1 for g in routed.groups)
            what = "models" if plain else "deployments"
            err.message = f"all {count} {what} failed; last: {err.message}"
            err.args = (err.message,)
        return err

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

    def _structured_setup(
        self, messages: list[dict[str, Any]], response_model: type[BaseModel], model: str | None
    ) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
        target = model or (self.models[0] if self.models else None)
        if target is None:
            self._chain(None)  # raises LLMNotConfiguredError
        assert target is not None
        mode = self.structured_mode(target)
        asked, extra = request_params(response_model, mode, messages)
        return mode, asked, extra

    def _structured_error(
        self, response_model: type[BaseModel], raw: str, errors: list[str]
    ) -> StructuredOutputError:
        tries = len(errors)
        return StructuredOutputError(
            f"the model's reply did not match {response_model.__name__} after {tries} "
            f"attempt{'s' if tries != 1 else ''}: {errors[-1]}",
            raw=raw,
            errors=errors,
            hint="try a stronger model, raise llm.structured_retries, or set "
            "llm.structured_mode (json_schema, tool or prompt) for this model",
        )

    def _structured(
        self,
        messages: list[dict[str, Any]],
        response_model: type[M],
        model: str | None,
        params: dict[str, Any],
    ) -> Steps[Completion]:
        mode, asked, extra = self._structured_setup(messages, response_model, model)
        settings_retries = self._settings.structured_retries if self._settings is not None else 2
        errors: list[str] = []
        conversation = list(asked)
        total = None
        raw = ""
        for _ in range(settings_retries + 1):
            ask = _Ask(conversation, None, model, {**extra, **params}, stream=False)
            completion: Completion = yield from self._request(ask)
            total = completion.usage if total is None else total + completion.usage
            try:
                completion.parsed = parse_reply(completion, response_model, mode)
            except ParseFailure as failure:
                errors.append(str(failure))
                self._metrics.counter("llm.structured.repairs", model=completion.model).inc()
                conversation = [*conversation, *repair_messages(failure.raw, str(failure))]
                raw = failure.raw
                continue
            completion.usage = total
            return completion
        raise self._structured_error(response_model, raw, errors)

    def _steps(
        self,
        messages: str | Sequence[Message],
        tools: Sequence[dict[str, Any]] | None,
        response_model: type[BaseModel] | None,
        *,
        stream: bool,
        model: str | None,
        **params: Any,
    ) -> Steps[Any]:
        msgs = normalize_messages(messages)
        if response_model is not None:
            from magray.common.errors import InvalidInputError

            if stream:
                raise InvalidInputError("structured output cannot be streamed")
            if tools:
                raise InvalidInputError("pass either tools or response_model, not both")
            return self._structured(msgs, response_model, model, params)
        return self._request(_Ask(msgs, tools, model, params, stream))

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


def _require_key(cfg: ModelConfig) -> None:
    """Fail before any request (and before importing litellm) when no key can be sent."""
    err = missing_key(cfg)
    if err is not None:
        raise err


def _mapped(exc: BaseException, cfg: ModelConfig) -> LLMError:
    err = map_error(
        exc, model=cfg.model, api_base=cfg.api_base, secret=cfg.api_key, key_env=key_names(cfg)
    )
    if err is not exc:
        err.__cause__ = exc
    return err


def _llm_section(settings: LLMSettings | Settings | None) -> LLMSettings | None:
    from magray.common.settings import Settings

    if isinstance(settings, Settings):
        return settings.llm
    return settings


def _estimated_usage(messages: list[dict[str, Any]], completion: Completion) -> Usage:
    """Tokens of a stream whose server reported none (about four characters a token)."""
    prompt = estimate_tokens(json.dumps([m.get("content") for m in messages], default=str))
    answer = (completion.text or "") + "".join(c.raw_arguments for c in completion.tool_calls)
    output = estimate_tokens(answer)
    return Usage(prompt, output, prompt + output)


def _with_cost(completion: Completion, cost: float | None) -> Usage:
    u = completion.usage
    return Usage(u.prompt_tokens, u.completion_tokens, u.total_tokens, cost)
