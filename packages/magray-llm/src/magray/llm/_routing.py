"""Several models through litellm's Router: deployments, per-attempt metrics, the sync portal.

When the configured chain (``llm.model`` + ``llm.fallbacks``, each name expanded
to its ``[[llm.deployments]]``) holds more than one deployment, :class:`LLMClient`
sends its calls through a ``litellm.Router``: the Router picks a deployment
(``llm.routing_strategy``), retries, cools failing deployments down and falls
back along the chain. magray plugs into the Router's *host* (the object through
which it runs each attempt and each backoff sleep), so that

- every attempt on every deployment is timed and counted in magray's metrics
  (``llm.calls{model=<label>,outcome=...}``, ``llm.latency_ms{model=<label>}``),
  which is what ``magray status`` shows per deployment;
- backoff waits follow magray's :class:`RetryPolicy` and its injectable sleep;
- ``local/<name>`` deployments get their llama.cpp server started on first use.

All Router calls use its async path (the only one on which every strategy,
including cost-based and least-busy routing, works); sync callers reach it
through a private event-loop thread (the "portal").
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from magray.common.errors import LLMError
from magray.common.log import get_logger
from magray.llm._config import LOCAL_PREFIX, RetryPolicy
from magray.llm._deployments import Deployment
from magray.llm._portal import Portal

if TYPE_CHECKING:
    from magray.common.metrics import MetricsRegistry

__all__ = ["DEFAULT_STRATEGY", "CallLog", "RoutedModels", "retry_after"]

DEFAULT_STRATEGY = "simple-shuffle"
_FREE = 1e-15  # USD per token that litellm's cost routing still reads as a price

_log = get_logger("magray.llm")


# ---------------------------------------------------------------- one logical call


@dataclass
class CallLog:
    """What happened during one logical call: every attempt, the backoff count."""

    sync: bool
    attempts: list[dict[str, Any]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    answered_by: Deployment | None = None
    answer_latency_ms: float = 0.0
    last_failed: Deployment | None = None
    last_error: LLMError | None = None
    sleeps: int = 0
    retry_after: float | None = None


_CALL: contextvars.ContextVar[CallLog | None] = contextvars.ContextVar(
    "magray_llm_call", default=None
)


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a ``Retry-After`` header on the provider's response, if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    try:
        value = headers.get("retry-after") if headers is not None else None
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


# ---------------------------------------------------------------- the Router


class RoutedModels:
    """A ``litellm.Router`` over a chain of model groups, with magray's host hooks.

    Args:
        groups: The chain: the primary group's deployments, then each fallback's.
        strategy: litellm routing strategy within a group.
        retry: Retries per group and magray's backoff policy.
        allowed_fails: Failures per minute before a deployment is cooled down.
        cooldown_time: Seconds a cooled-down deployment is skipped (0 = never).
        metrics: Where each failed attempt, retry and fallback is counted.
        sleep: Sync backoff sleep (sync calls).
        asleep: Async backoff sleep (async calls).
        local_api_base: Starts (once) and returns the server of a ``local/<name>`` model.
        clock: Monotonic clock in seconds, for attempt latency.
    """

    def __init__(
        self,
        groups: list[list[Deployment]],
        *,
        strategy: str,
        retry: RetryPolicy,
        allowed_fails: int,
        cooldown_time: float,
        metrics: MetricsRegistry,
        sleep: Callable[[float], None],
        asleep: Callable[[float], Awaitable[None]],
        local_api_base: Callable[[str], str],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.groups = groups
        self.strategy = strategy
        self.retry = retry
        self._allowed_fails = allowed_fails
        self._cooldown_time = cooldown_time
        self._metrics = metrics
        self._sleep = sleep
        self._asleep = asleep
        self._local_api_base = local_api_base
        self.clock = clock
        self._by_key: dict[str, Deployment] = {}
        self._router: Any = None
        self._lock = threading.Lock()
        self._portal = Portal()

    @property
    def deployments(self) -> list[Deployment]:
        return [d for g in self.groups for d in g]

    def group_of(self, name: str) -> list[Deployment] | None:
        for g in self.groups:
            if g and g[0].group == name:
                return g
        return None

    # ------------------------------------------------------------ building

    def _model_list(self) -> list[dict[str, Any]]:
        out = []
        for index, dep in enumerate(self.deployments):
            key = f"magray-{index}"
            self._by_key[key] = dep
            cfg = dep.config
            params = cfg.call_kwargs()
            if cfg.is_local:
                # The llama.cpp server starts on the first call that picks this deployment.
                params["model"] = f"openai/{cfg.model[len(LOCAL_PREFIX) :]}"
                params["api_base"] = "http://127.0.0.1:9/unstarted-local-server"
                params.setdefault("api_key", "local")
            params["max_retries"] = 0  # the Router retries; the openai client must not
            # litellm's cost-based routing reads a price of 0 as "unset" (and then assumes
            # $5/token), so a free deployment gets the smallest positive price instead; the
            # cost magray reports comes from the configured prices (see Deployment.cost).
            for name in ("input_cost_per_token", "output_cost_per_token"):
                price = getattr(dep, name)
                if price is not None:
                    params[name] = price if price > 0 else _FREE
            for name in ("weight", "rpm", "tpm"):
                value = getattr(dep, name)
                if value is not None:
                    params[name] = value
            out.append(
                {
                    "model_name": dep.group,
                    "litellm_params": params,
                    "model_info": {"id": key, "magray_key": key},
                }
            )
        return out

    def router(self) -> Any:
        """The litellm Router (built on first use; importing litellm takes seconds)."""
        if self._router is not None:
            return self._router
        with self._lock:
            if self._router is None:
                from magray.llm._backend import litellm_module

                litellm_module()
                import warnings

                # pydantic warns (once, while litellm builds its router schemas at import)
                # that litellm's TypedDicts use ReadOnly: harmless, and not magray's.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        import litellm.router_rust.core  # noqa: F401
                        from litellm.router import Router, router_arguments
                        from litellm.router_config import build_router_config
                        from litellm.router_python_host import PythonHost  # noqa: F401
                    except ImportError as exc:
                        from magray.common.errors import DependencyMissingError

                        raise DependencyMissingError(
                            "several models need litellm's Router with its host interface "
                            f"(litellm >= 1.110); the installed litellm lacks it: {exc}",
                            hint='pip install -U "litellm>=1.110"',
                        ) from exc

                chain = [g[0].group for g in self.groups if g]
                arguments: dict[str, Any] = {
                    "model_list": self._model_list(),
                    "routing_strategy": self.strategy,
                    "num_retries": self.retry.max_retries,
                    "allowed_fails": self._allowed_fails,
                    "retry_after": 0,
                    # A failed attempt is retried on the group's other deployments first.
                    "enable_weighted_failover": True,
                }
                if len(chain) > 1:
                    arguments["fallbacks"] = [{chain[0]: chain[1:]}]
                if self._cooldown_time > 0:
                    arguments["cooldown_time"] = self._cooldown_time
                else:
                    arguments["disable_cooldowns"] = True
                try:
                    config = build_router_config(router_arguments(**arguments))
                    self._router = Router.from_config(config, _make_host(self))
                except Exception as exc:
                    from magray.common.errors import ConfigError

                    raise ConfigError(
                        f"litellm's Router refused the model settings: {exc}",
                        hint="check [[llm.deployments]] and the llm.* routing keys "
                        "(`magray config show --section llm`)",
                    ) from exc
        return self._router

    # ------------------------------------------------------------ host hooks

    def _deployment(self, kwargs: dict[str, Any]) -> Deployment | None:
        info = kwargs.get("model_info")
        key = info.get("magray_key") if isinstance(info, dict) else None
        return self._by_key.get(str(key)) if key is not None else None

    def _prepare_attempt(self, dep: Deployment | None, kwargs: dict[str, Any]) -> None:
        if dep is not None and dep.config.is_local:
            name = dep.config.model[len(LOCAL_PREFIX) :]
            kwargs["api_base"] = self._local_api_base(name)
            from magray.llm._local import STOP

            kwargs.setdefault("stop", list(STOP))

    def _after_attempt(
        self, dep: Deployment | None, exc: BaseException | None, started: float
    ) -> None:
        latency = (self.clock() - started) * 1000
        log = _CALL.get()
        if dep is None or log is None:
            return
        if log.attempts:
            previous = log.groups[-1]
            if dep.group == previous:
                self._metrics.counter("llm.retries", model=dep.label).inc()
            elif dep.group not in log.groups:
                self._metrics.counter("llm.fallbacks", model=dep.label).inc()
                _log.info("llm.fallback", model=dep.label, group=dep.group, after=previous)
        log.groups.append(dep.group)
        if exc is None:
            log.answered_by = dep
            log.answer_latency_ms = latency
            log.attempts.append(
                {"model": dep.label, "outcome": "ok", "latency_ms": round(latency, 3)}
            )
            return
        from magray.llm._backend import key_names, map_error

        cfg = dep.config
        err = map_error(
            exc, model=dep.label, api_base=cfg.api_base, secret=cfg.api_key, key_env=key_names(cfg)
        )
        if err is not exc:
            err.__cause__ = exc
        log.last_failed, log.last_error = dep, err
        log.retry_after = retry_after(exc)
        log.attempts.append({"model": dep.label, "outcome": err.code, "message": err.message})
        m = self._metrics
        m.counter("llm.calls", model=dep.label, outcome=err.code).inc()
        m.counter("llm.errors", model=dep.label, code=err.code).inc()
        m.histogram("llm.latency_ms", model=dep.label).observe(latency)
        _log.info("llm.error", model=dep.label, code=err.code, retriable=err.retriable)

    def _backoff(self, seconds: float) -> Awaitable[None]:
        log = _CALL.get()
        if seconds == 0 or log is None:
            # litellm asks for no wait when another healthy deployment can take the retry.
            return asyncio.sleep(0)
        if log.groups:
            tried = 0
            for group in reversed(log.groups):
                if group != log.groups[-1]:
                    break
                tried += 1
            if tried > self.retry.max_retries:
                # litellm also waits after a group's last attempt; nothing follows it there.
                return asyncio.sleep(0)
        delay = self.retry.delay(log.sleeps, retry_after=log.retry_after)
        log.sleeps += 1
        if log.sync:
            return asyncio.get_running_loop().run_in_executor(None, self._sleep, delay)
        return self._asleep(delay)

    # ------------------------------------------------------------ calls

    async def acompletion(self, kwargs: dict[str, Any], log: CallLog, *, only: bool) -> Any:
        """One routed call (``only``: no fallback to other groups)."""
        _CALL.set(log)
        extra: dict[str, Any] = {"disable_fallbacks": True} if only else {}
        return await self.router().acompletion(**kwargs, **extra)

    def completion(self, kwargs: dict[str, Any], log: CallLog, *, only: bool) -> Any:
        """The sync twin of :meth:`acompletion` (runs on the portal's loop)."""
        return self._portal.call(self.acompletion(kwargs, log, only=only))

    def iterate(self, stream: Any) -> Iterator[Any]:
        """Chunks of an async stream opened by :meth:`completion`, pulled through the portal."""
        iterator: AsyncIterator[Any] = stream.__aiter__()

        async def pull() -> Any:
            return await iterator.__anext__()

        while True:
            try:
                chunk: Any = self._portal.call(pull())
            except StopAsyncIteration:
                return
            yield chunk

    def close(self) -> None:
        # Router.retire() drops the router's process-wide registrations (its routing
        # strategy's litellm.callbacks), which would otherwise log errors on every later
        # plain litellm call of this process.
        router, self._router = self._router, None
        if router is not None:
            with contextlib.suppress(Exception):
                router.retire()
        self._portal.close()


def _require_key(dep: Deployment | None) -> None:
    """A deployment that cannot carry a key fails without a request, as an authentication
    error (which the Router does not retry on the same deployment)."""
    from magray.llm._backend import missing_key

    err = missing_key(dep.config) if dep is not None else None
    if err is not None:
        from litellm.exceptions import AuthenticationError

        assert dep is not None
        model = dep.config.model
        message = err.message.removeprefix(f"{model}: ")
        raise AuthenticationError(message, llm_provider=model.partition("/")[0], model=model)


def _make_host(owner: RoutedModels) -> Any:
    """A litellm ``PythonHost`` whose attempts and sleeps go through ``owner``."""
    from litellm.router_python_host import PythonHost

    class MagrayHost(PythonHost):
        def invoke(self, op: str) -> Callable[..., Any]:
            endpoint: Callable[..., Any] = super().invoke(op)
            if op != "acompletion":
                return endpoint

            async def attempt(*args: Any, **kwargs: Any) -> Any:
                dep = owner._deployment(kwargs)
                owner._prepare_attempt(dep, kwargs)
                started = owner.clock()
                try:
                    _require_key(dep)
                    result = await endpoint(*args, **kwargs)
                except BaseException as exc:
                    owner._after_attempt(dep, exc, started)
                    raise
                owner._after_attempt(dep, None, started)
                return result

            return attempt

        def sleep(self, seconds: float) -> Awaitable[None]:
            return owner._backoff(seconds)

        def sleep_sync(self, seconds: float) -> None:  # the Router's sync path is not used
            owner._sleep(seconds)

    return MagrayHost()
