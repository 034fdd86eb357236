"""The call skeleton: one LLM call written once, for every transport and both I/O styles.

:class:`CallSkeleton` is the half of :class:`~magray.llm.LLMClient` that makes calls:
build the request (:class:`Ask`), pick the transport per model, send it as a
:class:`~magray.llm._call.Send` effect, map errors, retry retriable ones with backoff
(:class:`~magray.llm._call.Sleep`), fall back along the chain (or let litellm's Router do
that for several deployments), record metrics, assemble streams and repair structured
output. Every step is a generator, so ``complete`` and ``acomplete`` only choose the
driver (:func:`~magray.llm._call.run` or :func:`~magray.llm._call.arun`). The other half,
``_client.py``, holds configuration, the choice of chain and Router, and the public API.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from magray.common.errors import LLMError
from magray.common.log import get_logger
from magray.llm._backend import key_names, map_error, missing_key
from magray.llm._call import Opened, Send, Sleep, Steps
from magray.llm._config import ModelConfig, RetryPolicy
from magray.llm._direct import DirectTransport, estimate_tokens
from magray.llm._routing import CallLog, RoutedModels, retry_after
from magray.llm._stream import StreamAssembler, completion_from_response
from magray.llm._structured import ParseFailure, parse_reply, repair_messages, request_params
from magray.llm._transport import LiteLLMTransport, RoutedCall, Transport, via_litellm
from magray.llm._types import Completion, Message, Usage, normalize_messages
from magray.llm.errors import LLMUnavailableError, StructuredOutputError

if TYPE_CHECKING:
    from magray.common.metrics import MetricsRegistry
    from magray.common.settings import LLMSettings

__all__ = ["Answer", "Ask", "CallSkeleton"]

M = TypeVar("M", bound=BaseModel)

_log = get_logger("magray.llm")


@dataclass(frozen=True)
class Ask:
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
class Answer:
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


class CallSkeleton:
    """How :class:`~magray.llm.LLMClient` makes a call (see the module docstring).

    The client provides the state below and the hooks: the configured models, the chain
    to try, the Router to use (if any), one model's keyword arguments and its
    structured-output mode.
    """

    _settings: LLMSettings | None
    _metrics: MetricsRegistry
    _clock: Callable[[], float]
    _litellm: LiteLLMTransport
    _direct: DirectTransport
    retry: RetryPolicy

    @property
    def models(self) -> list[str]:
        raise NotImplementedError

    def _chain(self, model: str | None) -> list[ModelConfig]:
        raise NotImplementedError

    def _router_for(self, model: str | None) -> tuple[RoutedModels, str, bool] | None:
        raise NotImplementedError

    def _prepare(self, cfg: ModelConfig) -> dict[str, Any]:
        raise NotImplementedError

    def structured_mode(self, model: str) -> str:
        raise NotImplementedError

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

    def _attempts(self, ask: Ask) -> Steps[tuple[Any, Answer]]:
        """Every model of the chain in turn, each retried with backoff while retriable."""
        chain = self._chain(ask.model)
        attempts: list[dict[str, Any]] = []
        last: LLMError | None = None
        for index, cfg in enumerate(chain):
            keyed = _with_call_key(cfg, ask.params)
            if index > 0:
                self._metrics.counter("llm.fallbacks", model=cfg.model).inc()
                _log.info("llm.fallback", model=cfg.model, after=chain[index - 1].model)
            for retry in range(self.retry.max_retries + 1):
                start = self._clock()
                try:
                    _require_key(keyed)
                    transport = self._transport(cfg, ask.params)
                    response = yield Send(transport, ask.kwargs(self._prepare(cfg)), ask.stream)
                except Exception as exc:
                    err = _mapped(exc, keyed)
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
                return response, Answer(cfg.model, transport, attempts, latency, True, cfg.model)
        assert last is not None
        raise self._failed(last, attempts, len(chain))

    def _routed_attempt(
        self, routing: tuple[RoutedModels, str, bool], ask: Ask
    ) -> Steps[tuple[Any, Answer]]:
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
        answer = Answer(
            dep.label, call, call.log.attempts, call.log.answer_latency_ms, False, dep.config.model
        )
        return response, answer

    def _request(self, ask: Ask) -> Steps[Any]:
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
        answer: Answer,
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
            ask = Ask(conversation, None, model, {**extra, **params}, stream=False)
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
        return self._request(Ask(msgs, tools, model, params, stream))


def _with_call_key(cfg: ModelConfig, params: dict[str, Any]) -> ModelConfig:
    """``cfg`` with the ``api_key``/``api_base`` the call passed (params win over the config).

    Used for the key check and the error mapping only: a key passed to
    ``complete(..., api_key=...)`` satisfies the check (it was refused with "OPENAI_API_KEY
    is not set") and is redacted from error messages like a configured one.
    """
    key, base = params.get("api_key"), params.get("api_base")
    if not key and not base:
        return cfg
    return replace(cfg, api_key=key or cfg.api_key, api_base=base or cfg.api_base)


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


def _estimated_usage(messages: list[dict[str, Any]], completion: Completion) -> Usage:
    """Tokens of a stream whose server reported none (about four characters a token)."""
    prompt = estimate_tokens(json.dumps([m.get("content") for m in messages], default=str))
    answer = (completion.text or "") + "".join(c.raw_arguments for c in completion.tool_calls)
    output = estimate_tokens(answer)
    return Usage(prompt, output, prompt + output)


def _with_cost(completion: Completion, cost: float | None) -> Usage:
    u = completion.usage
    return Usage(u.prompt_tokens, u.completion_tokens, u.total_tokens, cost)
