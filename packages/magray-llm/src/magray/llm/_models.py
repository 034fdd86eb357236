"""What is configured: models, their roles, servers and whether their API keys are present.

Keys are looked up, never shown: the report says *where* a key comes from
(``llm.api_key``, ``[llm.models]``, or the provider's env var) or which env var
is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from magray.llm._config import LOCAL_PREFIX, resolve_model

if TYPE_CHECKING:
    from magray.common.settings import LLMSettings

__all__ = ["ModelInfo", "describe_models"]

# Providers that run without an API key (local servers).
_KEYLESS = {"ollama", "ollama_chat", "lm_studio", "llamafile", "vllm", "hosted_vllm", "local"}


@dataclass(frozen=True)
class ModelInfo:
    """One configured model.

    Attributes:
        model: The model string.
        role: ``primary``, ``fallback`` or ``configured`` (only in ``[llm.models]``).
        provider: litellm's provider name, if known.
        api_base: The server it talks to (``None`` = the provider's default).
        key: ``present``, ``missing``, ``not needed`` or ``unknown``.
        key_source: Where the key comes from, or the env var(s) to set.
    """

    model: str
    role: str
    provider: str | None
    api_base: str | None
    key: str
    key_source: str


def _provider(model: str) -> str | None:
    if model.startswith(LOCAL_PREFIX):
        return "local"
    from magray.llm._backend import provider_of

    return provider_of(model)


def _is_loopback(url: str | None) -> bool:
    if not url:
        return False
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    return host in {"127.0.0.1", "localhost", "::1"}


def describe_models(settings: LLMSettings) -> list[ModelInfo]:
    """Every model named in ``[llm]`` (primary, fallbacks, ``[llm.models]``,
    ``[[llm.deployments]]``) with its key status.

    A name with deployments is listed once per deployment, its role followed by the
    name (``primary (fast)``).
    """
    from magray.llm._deployments import deployments_for

    roles: dict[str, str] = {}
    if settings.model:
        roles[settings.model] = "primary"
    for model in settings.fallbacks:
        roles.setdefault(model, "fallback")
    for model in settings.models:
        roles.setdefault(model, "configured")
    for d in settings.deployments:
        roles.setdefault(d.name, "configured")
    by_name = {d.name for d in settings.deployments}
    out = []
    for name, role in roles.items():
        if name not in by_name:
            cfg = resolve_model(name, settings)
            out.append(_describe(name, role, cfg.api_key, cfg.api_base, settings))
            continue
        entries = [d for d in settings.deployments if d.name == name]
        for entry, dep in zip(entries, deployments_for(name, settings), strict=True):
            cfg = dep.config
            info = _describe(cfg.model, f"{role} ({name})", cfg.api_key, cfg.api_base, settings)
            key, source = info.key, info.key_source
            if entry.api_key is not None:
                source = f"llm.deployments[{dep.label}].api_key"
            elif entry.api_key_env and key != "not needed":
                key = "present" if cfg.api_key else "missing"
                source = f"{'env' if cfg.api_key else 'set'} {entry.api_key_env}"
            out.append(ModelInfo(info.model, info.role, info.provider, cfg.api_base, key, source))
    return out


def _describe(
    model: str, role: str, api_key: str | None, api_base: str | None, settings: LLMSettings
) -> ModelInfo:
    from magray.llm._backend import env_key_names

    provider = _provider(model)
    override = settings.models.get(model)
    if provider in _KEYLESS or (not api_key and _is_loopback(api_base)):
        key, source = "not needed", "local server"
    elif api_key:
        key = "present"
        if override is not None and override.api_key is not None:
            source = f"llm.models.{model}.api_key"
        elif override is not None and override.api_key_env:
            source = f"env {override.api_key_env}"
        else:
            source = "llm.api_key"
    else:
        names = env_key_names(model)
        if override is not None and override.api_key_env:
            names = [override.api_key_env]
        if not names:
            key, source = "unknown", "litellm reads the provider's usual env var"
        elif any(os.environ.get(n) for n in names):
            key, source = "present", "env " + next(n for n in names if os.environ.get(n))
        else:
            key, source = "missing", "set " + " or ".join(names)
    return ModelInfo(model, role, provider, api_base, key, source)
