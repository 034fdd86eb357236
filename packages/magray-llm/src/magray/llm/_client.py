"""``LLMClient``: one client for every provider litellm supports.

It adds what litellm leaves to the caller: settings-driven model configs,
retries with exponential backoff on retriable errors only, fallbacks to other
models, typed results, streaming assembly, structured output with repair, and
usage/cost/latency metrics. litellm itself is imported on the first call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from pydantic import BaseModel

from magray.common.errors import LLMError
from magray.common.log import get_logger
from magray.common.metrics import MetricsRegistry, default_registry
from magray.llm._backend import litellm_module, map_error
from magray.llm._config import LOCAL_PREFIX, ModelConfig, RetryPolicy, resolve_model
from magray.llm._stream import StreamAssembler, completion_from_response, delta_from_chunk
from magray.llm._structured import ParseFailure, parse_reply, repair_messages, request_params
from magray.llm._types import Completion, Message, StreamDelta, Usage, normalize_messages
from magray.llm.errors import LLMNotConfiguredError, StructuredOutputError

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

    # ------------------------------------------------------------ configuration

    @property
    def models(self) -> list[str]:
        """The primary model followed by the fallbacks."""
        return ([self.model] if self.model else []) + self.fallbacks

    def config_for(self, model: str) -> ModelConfig:
        """The resolved call settings of ``model`` (key included; do not log it)."""
        return resolve_model(model, self._settings)

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
                    return request(cfg), cfg
                except Exception as exc:
                    err = map_error(exc, model=cfg.model, api_base=cfg.api_base, secret=cfg.api_key)
                    if err is not exc:
                        err.__cause__ = exc
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
                    return await request(cfg), cfg
                except Exception as exc:
                    err = map_error(exc, model=cfg.model, api_base=cfg.api_base, secret=cfg.api_key)
                    if err is not exc:
                        err.__cause__ = exc
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

    # ------------------------------------------------------------ structured output

    def structured_mode(self, model: str) -> str:
        """How structured output is requested from ``model`` (resolves ``auto``)."""
        cfg = self.config_for(model)
        if cfg.structured_mode != "auto":
            return cfg.structured_mode
        if cfg.is_local:
            return "json_schema"  # llama.cpp's server enforces response_format schemas
        litellm = litellm_module()
        try:
            if litellm.supports_response_schema(model=model):
                return "json_schema"
            if litellm.supports_function_calling(model=model):
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
        """Stop local servers this client started (network clients need no closing)."""
        if self._local is not None:
            self._local.stop_all()


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
