"""Lazy access to litellm (the backend), and the mapping of its exceptions to magray errors.

``import litellm`` takes seconds and, by default, downloads a model price list.
:func:`litellm_module` imports it on first use only, after forcing the local
price map, and silences its banner output (it prints to stdout otherwise).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from magray.common.errors import LLMError
from magray.llm.errors import (
    LLMAuthError,
    LLMBadRequestError,
    LLMConnectionError,
    LLMContextWindowError,
    LLMModelNotFoundError,
    LLMRateLimitError,
    LLMServerError,
    LLMTimeoutError,
)

if TYPE_CHECKING:
    from magray.llm._config import ModelConfig

__all__ = [
    "aclose_cached_clients",
    "close_cached_clients",
    "env_key_names",
    "key_names",
    "litellm_module",
    "map_error",
    "missing_key",
    "provider_of",
    "warm_up",
]

_lock = threading.Lock()
_module: ModuleType | None = None


def litellm_module() -> ModuleType:
    """Import and configure litellm once (local cost map, no telemetry, no banners)."""
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            os.environ.setdefault("LITELLM_LOG", "ERROR")
            import litellm

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            litellm.drop_params = True  # unsupported optional params are dropped, not fatal
            # Success logging of streams runs a thread and an event loop per chunk; magray
            # does its own accounting, so switch it off.
            litellm.disable_streaming_logging = True
            _warm_up(litellm)
            _module = litellm
    return _module


def warm_up(*, background: bool = False, settings: Any = None) -> threading.Thread | None:
    """Import litellm now rather than on the first call (it takes seconds).

    Interactive front ends call ``warm_up(background=True, settings=...)`` when they
    start, so the import overlaps with the user typing instead of delaying the first
    answer.

    Args:
        background: Import in a daemon thread and return it (``None`` otherwise).
        settings: The ``[llm]`` section: when no model of its chain needs litellm (all
            are served by the direct transport), nothing is imported and ``None`` returned.
    """
    if settings is not None:
        from magray.llm._transport import needs_litellm

        if not needs_litellm(settings):
            return None
    if not background:
        litellm_module()
        return None
    thread = threading.Thread(target=litellm_module, name="magray-llm-warm-up", daemon=True)
    thread.start()
    return thread


def close_cached_clients() -> None:
    """Close the sync HTTP clients litellm caches per ``api_base`` (no-op before import)."""
    import contextlib
    import inspect
    import sys

    litellm = sys.modules.get("litellm")
    if litellm is None:
        return
    cache = litellm.in_memory_llm_clients_cache
    for client in list(cache.cache_dict.values()):
        close = getattr(client, "close", None)
        if callable(close) and not inspect.iscoroutinefunction(close):
            with contextlib.suppress(Exception):
                close()
    cache.flush_cache()


async def aclose_cached_clients() -> None:
    """Close litellm's cached *async* HTTP clients inside the running event loop."""
    import contextlib
    import inspect
    import sys

    litellm = sys.modules.get("litellm")
    if litellm is None:
        return
    cache = litellm.in_memory_llm_clients_cache
    for key, client in list(cache.cache_dict.items()):
        for name in ("aclose", "close"):
            close = getattr(client, name, None)
            if close is not None and inspect.iscoroutinefunction(close):
                with contextlib.suppress(Exception):
                    await close()
                cache.cache_dict.pop(key, None)
                break


def _warm_up(litellm: ModuleType) -> None:
    """Build litellm's lazily-built stream types once, without their pydantic warnings.

    pydantic warns (once, while building the schema) that litellm's TypedDicts use
    ``ReadOnly``; it is harmless but would surface in the middle of the first stream.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

            ModelResponseStream(choices=[StreamingChoices(delta=Delta(content="x"))])
        except Exception:  # only an optimisation: a changed litellm must still work
            pass


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _is_connection_problem(exc: BaseException) -> bool:
    """litellm reports refused connections as a 500 "Connection error."; look deeper."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        name = type(node).__name__
        if (
            name in {"APIConnectionError", "ConnectError", "ConnectionError"}
            or isinstance(node, ConnectionError)
        ) and name != "APITimeoutError":
            return True
        node = node.__cause__ or node.__context__
    text = str(exc)
    return "Connection error" in text or "Cannot connect to host" in text


# How OpenAI-compatible servers say that the prompt is too long (litellm's own list).
_CONTEXT_TEXTS = (
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "too many tokens",
    "prompt is too long",
    "exceeds the context window",
)


def _context_overflow(exc: BaseException, status: int | None) -> bool:
    """A direct transport's 400 that means "prompt too long" (litellm maps these itself)."""
    if status != 400:
        return False
    text = f"{getattr(exc, 'code', '') or ''} {exc}".lower()
    return any(marker in text for marker in _CONTEXT_TEXTS)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    for prefix in ("litellm.", "OpenAIException - "):
        text = text.replace(prefix, "")
    return text[:500]


def map_error(
    exc: BaseException,
    *,
    model: str,
    api_base: str | None = None,
    secret: str | None = None,
    key_env: Sequence[str] = (),
) -> LLMError:
    """Turn a litellm/openai/httpx exception into an :class:`LLMError` subclass with a hint.

    ``secret`` (the API key that was sent) is masked wherever a provider echoes it back;
    ``key_env`` names the env var(s) an authentication error's hint tells the user to set
    (default: the provider's usual one).
    """
    if isinstance(exc, LLMError):
        return exc
    err = _map(exc, model=model, api_base=api_base, key_env=key_env)
    if secret and len(secret) >= 4:
        err.message = err.message.replace(secret, "***")
        err.args = (err.message,)
        err.details = {
            k: v.replace(secret, "***") if isinstance(v, str) else v for k, v in err.details.items()
        }
    return err


def _map(
    exc: BaseException, *, model: str, api_base: str | None, key_env: Sequence[str]
) -> LLMError:
    name = type(exc).__name__
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = _status(exc)
    message = f"{model}: {_short(exc)}"
    details: dict[str, Any] = {"model": model, "provider_error": name}
    if status is not None:
        details["status"] = status
    where = f" at {api_base}" if api_base else ""

    if "ContextWindowExceededError" in names or _context_overflow(exc, status):
        return LLMContextWindowError(
            message,
            hint="shorten the input (fewer or smaller messages) or use a model with a larger "
            "context window",
            details=details,
        )
    if "Timeout" in names or "APITimeoutError" in names or "TimeoutException" in names:
        return LLMTimeoutError(
            message,
            hint="the server answered too slowly; raise llm.timeout "
            "(`magray config set llm.timeout 120`) or try again",
            details=details,
        )
    if (
        "AuthenticationError" in names
        or "PermissionDeniedError" in names
        or status in {401, 403}
        or any(text in str(exc) for text in _NO_CREDENTIALS)
    ):
        return LLMAuthError(message, hint=_key_hint(model, key_env), details=details)
    if "RateLimitError" in names or status == 429:
        return LLMRateLimitError(
            message,
            hint="the provider is rate limiting requests; wait a moment, lower the request rate, "
            "or configure llm.fallbacks",
            details=details,
        )
    if "NotFoundError" in names or "LiteLLMUnknownProvider" in names or status == 404:
        return LLMModelNotFoundError(
            message,
            hint="check the model string (provider/model, e.g. 'openai/gpt-4o-mini'); "
            "`magray llm models` shows what is configured",
            details=details,
        )
    if _is_connection_problem(exc):
        return LLMConnectionError(
            f"{model}: cannot connect to the model server{where}",
            hint="check the network and llm.api_base, and that the server is running",
            details={**details, "cause": _short(exc)},
        )
    if "BadRequestError" in names and "LLM Provider NOT provided" in str(exc):
        return LLMModelNotFoundError(
            f"{model}: unknown provider in model string",
            hint="prefix the model with its provider, e.g. 'openai/gpt-4o-mini', "
            "'anthropic/claude-3-5-haiku-latest', 'ollama/llama3'",
            details=details,
        )
    if (
        names & {"InternalServerError", "ServiceUnavailableError", "BadGatewayError"}
        or (status is not None and status >= 500)
        or (name in {"APIError", "MockException"} and (status is None or status >= 500))
    ):
        return LLMServerError(
            message,
            hint="the provider failed on its side; try again later or configure llm.fallbacks",
            details=details,
        )
    if names & {"BadRequestError", "UnprocessableEntityError", "UnsupportedParamsError"} or (
        status in {400, 422}
    ):
        return LLMBadRequestError(
            message,
            hint="the provider rejected the request; check the model's supported parameters",
            details=details,
        )
    if isinstance(exc, OSError):
        return LLMConnectionError(
            f"{model}: {exc}",
            hint="check the network and llm.api_base",
            details=details,
        )
    return LLMError(
        message, hint="rerun with --debug for the provider's traceback", details=details
    )


# What the openai SDK (under litellm) says when no key was given at all; litellm wraps it
# in an InternalServerError, which must not read as a retriable server failure.
_NO_CREDENTIALS = ("Missing credentials", "api_key client option must be set")


def _key_hint(model: str, key_env: Sequence[str] = ()) -> str:
    env = list(key_env) or env_key_names(model)
    if env:
        names = " or ".join(env)
        return f"check the API key: set {names}, or llm.api_key (`magray llm models` shows keys)"
    return "check the API key (llm.api_key or the provider's env var)"


def key_names(cfg: ModelConfig) -> list[str]:
    """The env var(s) that hold ``cfg``'s key: its ``api_key_env``, else the provider's own.

    Known from the model's prefix alone (never imports litellm); empty when unknown.
    """
    if cfg.key_env:
        return [cfg.key_env]
    prefix, sep, _ = cfg.model.partition("/")
    return [_KEY_ENV[prefix]] if sep and prefix in _KEY_ENV else []


def missing_key(cfg: ModelConfig) -> LLMAuthError | None:
    """The error for a call that cannot carry a key, detected before any request.

    A model needs a key when it has a configured ``api_key_env``, or when it talks to its
    provider's own server (no ``api_base``) and the provider is known to need one. Such a
    call without ``api_key`` and with the env var(s) unset fails here, at once, instead of
    after a round trip (or a retry loop): the error names the variable to set.
    """
    if cfg.api_key or cfg.is_local:
        return None
    names = key_names(cfg)
    if not names or (cfg.api_base and not cfg.key_env):
        return None  # a custom server may well take no key
    if any(os.environ.get(name) for name in names):
        return None
    listed = " or ".join(names)
    return LLMAuthError(
        f"{cfg.model}: no API key: {listed} is not set",
        hint=f"set it (`export {names[0]}=...`), or put the key in llm.api_key "
        "(`magray config set llm.api_key ...`); `magray llm models` shows where keys come from",
        details={"model": cfg.model, "env": names},
    )


_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "azure": "AZURE_API_KEY",
    "cohere": "COHERE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "xai": "XAI_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
}


# Providers recognised from the model prefix without importing litellm.
_OTHER_PROVIDERS = {
    "ollama",
    "ollama_chat",
    "lm_studio",
    "llamafile",
    "vllm",
    "hosted_vllm",
    "bedrock",
    "vertex_ai",
    "azure_ai",
    "huggingface",
    "cloudflare",
    "replicate",
    "sagemaker",
    "watsonx",
}


def provider_of(model: str) -> str | None:
    """The litellm provider of a model string (``None`` if litellm cannot tell)."""
    prefix, sep, _ = model.partition("/")
    if sep and (prefix in _KEY_ENV or prefix in _OTHER_PROVIDERS):
        return prefix
    try:
        _, provider, _, _ = litellm_module().get_llm_provider(model=model)
    except Exception:
        return prefix if sep else None
    return str(provider) if provider else None


def env_key_names(model: str) -> list[str]:
    """The env var(s) that usually hold ``model``'s API key (empty if none or unknown)."""
    provider = provider_of(model)
    if provider in _KEY_ENV:
        return [_KEY_ENV[provider]]
    return []
