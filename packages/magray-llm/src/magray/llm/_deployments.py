"""The deployments behind a model name: ``[[llm.deployments]]`` expanded, with metric labels.

A name in the chain (``llm.model``, ``llm.fallbacks``) is either a ``[[llm.deployments]]``
name, standing for each deployment of that name, or a plain model string, one
deployment of itself. More than one deployment in the chain means litellm's Router
(:mod:`._routing`); one plain model is called directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from magray.llm._config import ModelConfig, resolve_model

if TYPE_CHECKING:
    from magray.common.settings import LLMSettings

__all__ = ["Deployment", "deployments_for", "uses_router"]


@dataclass(frozen=True)
class Deployment:
    """One callable deployment of a model name.

    Attributes:
        group: The name callers use (a ``[[llm.deployments]]`` name or a model string).
        label: Its name in metrics (unique among the configured deployments).
        config: The call settings (model string, server, key, timeout, ...).
        weight: Relative share under simple-shuffle.
        rpm: Requests per minute it allows (usage-based routing).
        tpm: Tokens per minute it allows.
        input_cost_per_token: USD per prompt token, if configured.
        output_cost_per_token: USD per completion token, if configured.
    """

    group: str
    label: str
    config: ModelConfig
    weight: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """The configured price of a call, or ``None`` without configured prices."""
        if self.input_cost_per_token is None or self.output_cost_per_token is None:
            return None
        return (
            prompt_tokens * self.input_cost_per_token
            + completion_tokens * self.output_cost_per_token
        )


def _host_port(url: str | None) -> str:
    if not url:
        return "default"
    parts = urlsplit(url)
    return parts.netloc or url


def _labels(settings: LLMSettings) -> list[str]:
    """Metric labels of ``settings.deployments``, in order (explicit, else model[@host])."""
    counts: dict[str, int] = {}
    for d in settings.deployments:
        counts[d.model] = counts.get(d.model, 0) + 1
    labels: list[str] = []
    used: set[str] = {d.label for d in settings.deployments if d.label}
    for d in settings.deployments:
        if d.label:
            labels.append(d.label)
            continue
        label = d.model if counts[d.model] == 1 else f"{d.model}@{_host_port(d.api_base)}"
        candidate, n = label, 2
        while candidate in used:
            candidate, n = f"{label}#{n}", n + 1
        used.add(candidate)
        labels.append(candidate)
    return labels


def deployments_for(name: str, settings: LLMSettings | None) -> list[Deployment]:
    """The deployments behind ``name``: its ``[[llm.deployments]]``, else the plain model."""
    if settings is None or not any(d.name == name for d in settings.deployments):
        return [Deployment(group=name, label=name, config=resolve_model(name, settings))]
    out: list[Deployment] = []
    for d, label in zip(settings.deployments, _labels(settings), strict=True):
        if d.name != name:
            continue
        base = resolve_model(d.model, settings)
        api_key, key_env = base.api_key, base.key_env
        if d.api_key is not None:
            api_key, key_env = d.api_key.get_secret_value(), None
        elif d.api_key_env:
            api_key, key_env = os.environ.get(d.api_key_env) or None, d.api_key_env
        config = replace(
            base,
            api_base=d.api_base or base.api_base,
            api_key=api_key,
            timeout=d.timeout or base.timeout,
            params={**base.params, **d.params},
            key_env=key_env,
        )
        out.append(
            Deployment(
                group=name,
                label=label,
                config=config,
                weight=d.weight,
                rpm=d.rpm,
                tpm=d.tpm,
                input_cost_per_token=d.input_cost_per_token,
                output_cost_per_token=d.output_cost_per_token,
            )
        )
    return out


def uses_router(groups: list[list[Deployment]]) -> bool:
    """True when the chain has more than one deployment (one plain model needs no Router)."""
    return sum(len(g) for g in groups) > 1
