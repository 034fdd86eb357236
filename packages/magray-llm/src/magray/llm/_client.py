"""``LLMClient``: one client for every provider litellm supports.

It adds what litellm leaves to the caller: settings-driven model configs,
retries with exponential backoff on retriable errors only, fallbacks to other
models, typed results, streaming assembly, structured output with repair, and
usage/cost/latency metrics. litellm itself is imported on the first call.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from pydantic import BaseModel

from magray.common.errors import LLMError
from magray.common.log import get_logger
from magray.common.metrics import MetricsRegistry, default_registry
from magray.llm._backend import key_names, litellm_module, map_error, missing_key
from magray.llm._config import LOCAL_PREFIX, ModelConfig, RetryPolicy
from magray.llm._routing import (
    DEFAULT_STRATEGY,
    CallLog,
    Deployment,
    RoutedModels,
    deployments_for,
    uses_router,
)
from magray.llm._stream import StreamAssembler, completion_from_response, delta_from_chunk
from magray.llm._structured import ParseFailure, parse_reply, repair_messages, request_params
from magray.llm._types import Completion, Message, StreamDelta, Usage, normalize_messages
from magray.llm.errors import LLMNotConfiguredError, LLMUnavailableError, StructuredOutputError

if TYPE_CHECKING:
    from magray.common.settings import LLMSettings, Settings
    from magray.llm._local import LocalServers

__all__ = ["AsyncCompletionStream", "CompletionStream", "LLMClient"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_log = get_logger("magray.llm")


class CompletionStream:
    """An iterator of :class:`StreamDelta`; ``completion`` holds the assembled result.

    Iterate it to the end (or use :meth:`collect`); afterwards ``completion``
    has the full text, the tool calls with their arguments joined, and usage.
    """

    def __init__(
        self, chunks: Iterator[Any], assembler: StreamAssembler, finish: Callable[[], Completion]
    ) -> None:
        self._chunks = chunks
        self._assembler = assembler
        self._finish = finish
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[StreamDelta]:
        return self

    def __next__(self) -> StreamDelta:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            if self.completion is None:
                self.completion = self._finish()
            raise
        except Exception as exc:
            raise map_error(exc, model=self._assembler.model) from exc
        delta = delta_from_chunk(chunk)
        self._assembler.add(delta)
        return delta

    def collect(self) -> Completion:
        """Consume the rest of the stream and return the assembled completion."""
        for _ in self:
            pass
        assert self.completion is not None
        return self.completion


class AsyncCompletionStream:
    """The async twin of :class:`CompletionStream` (``async for delta in stream``)."""

    def __init__(
        self,
        chunks: AsyncIterator[Any],
        assembler: StreamAssembler,
        finish: Callable[[], Completion],
    ) -> None:
        self._chunks = chunks
        self._assembler = assembler
        self._finish = finish
        self.completion: Completion | None = None

    def __aiter__(self) -> AsyncIterator[StreamDelta]:
        return self

    async def __anext__(self) -> StreamDelta:
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            if self.completion is None:
                self.completion = self._finish()
            raise
        except Exception as exc:
            raise map_error(exc, model=self._assembler.model) from exc
        delta = delta_from_chunk(chunk)
        self._assembler.add(delta)
        return delta

    async def collect(self) -> Completion:
        """Consume the rest of the stream and return the assembled completion."""
        async for _ in self:
            pass
        assert self.completion is not None
        return self.completion


class _Attempts:
    """Bookkeeping of one logical call: every request, the model that answered."""

    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = []


class LLMClient:
    """Chat completions over litellm with retries, fallbacks, streaming and structured output.

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
    metrics per deployment, errors and backoff timing stay magray's. One plain
    model is called directly.

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

    def _cost(
        self, response: Any, usage_prompt: int, usage_completion: int, model: str
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
                model=model, prompt_tokens=usage_prompt, completion_tokens=usage_completion
            )
            return float(prompt_cost + completion_cost)
        except Exception:  # price unknown (custom or local model)
            return None

    # ------------------------------------------------------------ retry/fallback core

    def _failed(self, err: LLMError, attempts: _Attempts, chain: list[ModelConfig]) -> LLMError:
        err.details["attempts"] = attempts.log
        if len(chain) > 1:
            err.message = f"all {len(chain)} models failed; last: {err.message}"
            err.args = (err.message,)
        return err

    def _run(
        self, model: str | None, request: Callable[[ModelConfig], T], attempts: _Attempts
    ) -> tuple[T, ModelConfig]:
        chain = self._chain(model)
        last: LLMError | None = None
        for index, cfg in enumerate(chain):
            if index > 0:
                self._metrics.counter("llm.fallbacks", model=cfg.model).inc()
                _log.info("llm.fallback", model=cfg.model, after=chain[index - 1].model)
            for retry in range(self.retry.max_retries + 1):
                start = self._clock()
                try:
                    _require_key(cfg)
                    return request(cfg), cfg
                except Exception as exc:
                    err = _mapped(exc, cfg)
                    latency = (self._clock() - start) * 1000
                    self._record_error(cfg.model, err, latency)
                    attempts.log.append(
                        {"model": cfg.model, "outcome": err.code, "message": err.message}
                    )
                    last = err
                    if not err.retriable or retry >= self.retry.max_retries:
                        break
                    delay = self.retry.delay(retry, retry_after=_retry_after(exc))
                    self._metrics.counter("llm.retries", model=cfg.model).inc()
                    self._sleep(delay)
        assert last is not None
        raise self._failed(last, attempts, chain)

    async def _arun(
        self, model: str | None, request: Callable[[ModelConfig], Awaitable[T]], attempts: _Attempts
    ) -> tuple[T, ModelConfig]:
        chain = self._chain(model)
        last: LLMError | None = None
        for index, cfg in enumerate(chain):
            if index > 0:
                self._metrics.counter("llm.fallbacks", model=cfg.model).inc()
            for retry in range(self.retry.max_retries + 1):
                start = self._clock()
                try:
                    _require_key(cfg)
                    return await request(cfg), cfg
                except Exception as exc:
                    err = _mapped(exc, cfg)
                    self._record_error(cfg.model, err, (self._clock() - start) * 1000)
                    attempts.log.append(
                        {"model": cfg.model, "outcome": err.code, "message": err.message}
                    )
                    last = err
                    if not err.retriable or retry >= self.retry.max_retries:
                        break
                    self._metrics.counter("llm.retries", model=cfg.model).inc()
                    await self._asleep(self.retry.delay(retry, retry_after=_retry_after(exc)))
        assert last is not None
        raise self._failed(last, attempts, chain)

    # ------------------------------------------------------------ one request

    def _one(
        self,
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
        model: str | None,
        params: dict[str, Any],
    ) -> Completion:
        routing = self._router_for(model)
        if routing is not None:
            return self._routed_one(routing, messages, tools, params)
        attempts = _Attempts()
        started = self._clock()

        def request(cfg: ModelConfig) -> Completion:
            litellm = litellm_module()
            t0 = self._clock()
            kwargs = {**self._prepare(cfg), **params, "messages": messages}
            if tools:
                kwargs["tools"] = list(tools)
            response = litellm.completion(**kwargs)
            latency = (self._clock() - t0) * 1000
            completion = completion_from_response(response, model=cfg.model)
            completion.usage = _with_cost(completion, self._cost(response, 0, 0, cfg.model))
            self._record_ok(cfg.model, completion, latency)
            attempts.log.append(
                {"model": cfg.model, "outcome": "ok", "latency_ms": round(latency, 3)}
            )
            return completion

        completion, _ = self._run(model, request, attempts)
        completion.latency_ms = (self._clock() - started) * 1000
        completion.attempts = attempts.log
        return completion

    async def _aone(
        self,
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
        model: str | None,
        params: dict[str, Any],
    ) -> Completion:
        routing = self._router_for(model)
        if routing is not None:
            return await self._routed_aone(routing, messages, tools, params)
        attempts = _Attempts()
        started = self._clock()

        async def request(cfg: ModelConfig) -> Completion:
            litellm = litellm_module()
            t0 = self._clock()
            kwargs = {**self._prepare(cfg), **params, "messages": messages}
            if tools:
                kwargs["tools"] = list(tools)
            response = await litellm.acompletion(**kwargs)
            latency = (self._clock() - t0) * 1000
            completion = completion_from_response(response, model=cfg.model)
            completion.usage = _with_cost(completion, self._cost(response, 0, 0, cfg.model))
            self._record_ok(cfg.model, completion, latency)
            attempts.log.append(
                {"model": cfg.model, "outcome": "ok", "latency_ms": round(latency, 3)}
            )
            return completion

        completion, _ = await self._arun(model, request, attempts)
        completion.latency_ms = (self._clock() - started) * 1000
        completion.attempts = attempts.log
        return completion

    def _stream_finisher(
        self, cfg: ModelConfig, assembler: StreamAssembler, started: float, attempts: _Attempts
    ) -> Callable[[], Completion]:
        def finish() -> Completion:
            usage = assembler.usage
            cost = None
            if usage is not None:
                cost = self._cost(None, usage.prompt_tokens, usage.completion_tokens, cfg.model)
            completion = assembler.completion(cost_usd=cost)
            completion.latency_ms = (self._clock() - started) * 1000
            attempts.log.append(
                {"model": cfg.model, "outcome": "ok", "latency_ms": round(completion.latency_ms, 3)}
            )
            completion.attempts = attempts.log
            self._record_ok(cfg.model, completion, completion.latency_ms)
            return completion

        return finish

    def _stream(
        self,
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
        model: str | None,
        params: dict[str, Any],
    ) -> CompletionStream:
        routing = self._router_for(model)
        if routing is not None:
            return self._routed_stream(routing, messages, tools, params)
        attempts = _Attempts()
        started = self._clock()

        def request(cfg: ModelConfig) -> Any:
            litellm = litellm_module()
            kwargs = {**self._prepare(cfg), **params, "messages": messages, "stream": True}
            kwargs.setdefault("stream_options", {"include_usage": True})
            if tools:
                kwargs["tools"] = list(tools)
            return litellm.completion(**kwargs)

        chunks, cfg = self._run(model, request, attempts)
        assembler = StreamAssembler(model=cfg.model)
        return CompletionStream(
            iter(chunks), assembler, self._stream_finisher(cfg, assembler, started, attempts)
        )

    async def _astream(
        self,
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
        model: str | None,
        params: dict[str, Any],
    ) -> AsyncCompletionStream:
        routing = self._router_for(model)
        if routing is not None:
            return await self._routed_astream(routing, messages, tools, params)
        attempts = _Attempts()
        started = self._clock()

        async def request(cfg: ModelConfig) -> Any:
            litellm = litellm_module()
            kwargs = {**self._prepare(cfg), **params, "messages": messages, "stream": True}
            kwargs.setdefault("stream_options", {"include_usage": True})
            if tools:
                kwargs["tools"] = list(tools)
            return await litellm.acompletion(**kwargs)

        chunks, cfg = await self._arun(model, request, attempts)
        assembler = StreamAssembler(model=cfg.model)
        return AsyncCompletionStream(
            chunks.__aiter__(), assembler, self._stream_finisher(cfg, assembler, started, attempts)
        )

    # ------------------------------------------------------------ through litellm's Router

    @staticmethod
    def _routed_kwargs(
        name: str,
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
        params: dict[str, Any],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        kwargs = {**params, "model": name, "messages": messages}
        if tools:
            kwargs["tools"] = list(tools)
        if stream:
            kwargs["stream"] = True
            kwargs.setdefault("stream_options", {"include_usage": True})
        return kwargs

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

    def _price(self, dep: Deployment, response: Any, usage: Usage) -> float | None:
        configured = dep.cost(usage.prompt_tokens, usage.completion_tokens)
        if configured is not None:
            return configured
        return self._cost(response, usage.prompt_tokens, usage.completion_tokens, dep.config.model)

    def _routed_completion(self, response: Any, log: CallLog, started: float) -> Completion:
        dep = log.answered_by
        assert dep is not None
        completion = completion_from_response(response, model=dep.label)
        completion.usage = _with_cost(completion, self._price(dep, response, completion.usage))
        self._record_ok(dep.label, completion, log.answer_latency_ms)
        completion.latency_ms = (self._clock() - started) * 1000
        completion.attempts = log.attempts
        return completion

    def _routed_one(
        self,
        routing: tuple[RoutedModels, str, bool],
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
        params: dict[str, Any],
    ) -> Completion:
        routed, name, only = routing
        routed.router()  # built outside the try: a set-up error is not a failed attempt
        log = CallLog(sync=True)
        started = self._clock()
        kwargs = self._routed_kwargs(name, messages, tools, params, stream=False)
        try:
            response = routed.completion(kwargs, log, only=only)
        except Exception as exc:
            raise self._routed_failure(exc, log, routed, name, only) from exc
        return self._routed_completion(response, log, started)

    async def _routed_aone(
        self,
        routing: tuple[RoutedModels, str, bool],
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
        params: dict[str, Any],
    ) -> Completion:
        routed, name, only = routing
        routed.router()  # built outside the try: a set-up error is not a failed attempt
        log = CallLog(sync=False)
        started = self._clock()
        kwargs = self._routed_kwargs(name, messages, tools, params, stream=False)
        try:
            response = await routed.acompletion(kwargs, log, only=only)
        except Exception as exc:
            raise self._routed_failure(exc, log, routed, name, only) from exc
        return self._routed_completion(response, log, started)

    def _routed_finisher(
        self, log: CallLog, assembler: StreamAssembler, started: float
    ) -> Callable[[], Completion]:
        dep = log.answered_by
        assert dep is not None

        def finish() -> Completion:
            usage = assembler.usage or Usage()
            completion = assembler.completion(cost_usd=self._price(dep, None, usage))
            completion.latency_ms = (self._clock() - started) * 1000
            log.attempts[-1]["latency_ms"] = round(completion.latency_ms, 3)
            completion.attempts = log.attempts
            self._record_ok(dep.label, completion, completion.latency_ms)
            return completion

        return finish

    def _routed_stream(
        self,
        routing: tuple[RoutedModels, str, bool],
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
        params: dict[str, Any],
    ) -> CompletionStream:
        routed, name, only = routing
        routed.router()  # built outside the try: a set-up error is not a failed attempt
        log = CallLog(sync=True)
        started = self._clock()
        kwargs = self._routed_kwargs(name, messages, tools, params, stream=True)
        try:
            chunks = routed.completion(kwargs, log, only=only)
        except Exception as exc:
            raise self._routed_failure(exc, log, routed, name, only) from exc
        assert log.answered_by is not None
        assembler = StreamAssembler(model=log.answered_by.label)
        return CompletionStream(
            routed.iterate(chunks), assembler, self._routed_finisher(log, assembler, started)
        )

    async def _routed_astream(
        self,
        routing: tuple[RoutedModels, str, bool],
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
        params: dict[str, Any],
    ) -> AsyncCompletionStream:
        routed, name, only = routing
        routed.router()  # built outside the try: a set-up error is not a failed attempt
        log = CallLog(sync=False)
        started = self._clock()
        kwargs = self._routed_kwargs(name, messages, tools, params, stream=True)
        try:
            chunks = await routed.acompletion(kwargs, log, only=only)
        except Exception as exc:
            raise self._routed_failure(exc, log, routed, name, only) from exc
        assert log.answered_by is not None
        assembler = StreamAssembler(model=log.answered_by.label)
        return AsyncCompletionStream(
            chunks.__aiter__(), assembler, self._routed_finisher(log, assembler, started)
        )

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
    ) -> Completion:
        mode, asked, extra = self._structured_setup(messages, response_model, model)
        settings_retries = self._settings.structured_retries if self._settings is not None else 2
        errors: list[str] = []
        conversation = list(asked)
        total = None
        raw = ""
        for _ in range(settings_retries + 1):
            completion = self._one(conversation, None, model, {**extra, **params})
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

    async def _astructured(
        self,
        messages: list[dict[str, Any]],
        response_model: type[M],
        model: str | None,
        params: dict[str, Any],
    ) -> Completion:
        mode, asked, extra = self._structured_setup(messages, response_model, model)
        settings_retries = self._settings.structured_retries if self._settings is not None else 2
        errors: list[str] = []
        conversation = list(asked)
        total = None
        raw = ""
        for _ in range(settings_retries + 1):
            completion = await self._aone(conversation, None, model, {**extra, **params})
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
        msgs = normalize_messages(messages)
        if response_model is not None:
            if stream:
                from magray.common.errors import InvalidInputError

                raise InvalidInputError("structured output cannot be streamed")
            if tools:
                from magray.common.errors import InvalidInputError

                raise InvalidInputError("pass either tools or response_model, not both")
            return self._structured(msgs, response_model, model, params)
        if stream:
            return self._stream(msgs, tools, model, params)
        return self._one(msgs, tools, model, params)

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
        msgs = normalize_messages(messages)
        if response_model is not None:
            if stream or tools:
                from magray.common.errors import InvalidInputError

                raise InvalidInputError("structured output takes neither stream nor tools")
            return await self._astructured(msgs, response_model, model, params)
        if stream:
            return await self._astream(msgs, tools, model, params)
        return await self._aone(msgs, tools, model, params)

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
        """Stop local servers this client started and the Router's event-loop thread."""
        _close_routers(self._routers)
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


def _with_cost(completion: Completion, cost: float | None) -> Usage:
    u = completion.usage
    return Usage(u.prompt_tokens, u.completion_tokens, u.total_tokens, cost)


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from a ``Retry-After`` header on the provider's response, if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
    except Exception:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None
