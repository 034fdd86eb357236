"""``[llm]`` section: language-model providers (OpenAI-compatible servers directly, others
through litellm)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "LLMDeploymentSettings",
    "LLMModelSettings",
    "LLMSettings",
    "RoutingStrategy",
    "StructuredMode",
    "Transport",
]

StructuredMode = Literal["auto", "json_schema", "tool", "prompt"]
Transport = Literal["auto", "litellm"]
RoutingStrategy = Literal[
    "simple-shuffle",
    "latency-based-routing",
    "cost-based-routing",
    "least-busy",
    "usage-based-routing-v2",
]


class LLMModelSettings(BaseModel):
    """Overrides for one model string (a key of ``[llm.models]``); unset = section default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    api_base: str | None = Field(default=None, description="Base URL for this model only.")
    api_key: SecretStr | None = Field(default=None, description="API key for this model only.")
    api_key_env: str | None = Field(
        default=None, description="Name of an env var holding this model's API key."
    )
    timeout: float | None = Field(default=None, gt=0, description="Seconds per request.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    structured_mode: StructuredMode | None = Field(
        default=None, description="How structured output is requested from this model."
    )
    transport: Transport | None = Field(
        default=None, description="'litellm' sends this model's calls through litellm."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Extra litellm parameters passed on every call."
    )


class LLMDeploymentSettings(BaseModel):
    """One deployment behind a model name (an entry of ``[[llm.deployments]]``).

    Several deployments with the same ``name`` form one model group: calls to that
    name are load balanced over them by ``llm.routing_strategy`` (through litellm's
    Router), with failing deployments cooled down.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(
        description="The model name callers use (llm.model, llm.fallbacks, --model), "
        "e.g. 'fast'; deployments sharing it are load balanced.",
        min_length=1,
    )
    model: str = Field(
        description="litellm model string of this deployment, e.g. 'openai/gpt-4o-mini'.",
        min_length=1,
    )
    label: str | None = Field(
        default=None,
        description="Name in metrics and `magray status` (default: the model string, "
        "plus @host:port when two deployments share it).",
    )
    api_base: str | None = Field(default=None, description="Base URL of this deployment.")
    api_key: SecretStr | None = Field(default=None, description="API key of this deployment.")
    api_key_env: str | None = Field(
        default=None, description="Name of an env var holding this deployment's API key."
    )
    timeout: float | None = Field(default=None, gt=0, description="Seconds per request.")
    input_cost_per_token: float | None = Field(
        default=None, ge=0, description="USD per prompt token (cost-based routing, cost metrics)."
    )
    output_cost_per_token: float | None = Field(
        default=None, ge=0, description="USD per completion token."
    )
    weight: float | None = Field(
        default=None, gt=0, description="Share of traffic under simple-shuffle (relative)."
    )
    rpm: int | None = Field(default=None, ge=1, description="Requests per minute it allows.")
    tpm: int | None = Field(default=None, ge=1, description="Tokens per minute it allows.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Extra litellm parameters passed on every call."
    )

    @field_validator("name", "model")
    @classmethod
    def _no_blanks(cls, value: str) -> str:
        if value != value.strip() or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} must not contain whitespace")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> LLMDeploymentSettings:
        if self.api_key is not None and self.api_key_env:
            raise ValueError(f"deployment {self.name!r}: set api_key or api_key_env, not both")
        return self


class LLMSettings(BaseModel):
    """Settings of magray-llm. API keys usually come from the providers' own env vars."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str | None = Field(
        default=None,
        description="litellm model string, e.g. 'openai/gpt-4o-mini' (None = no-LLM mode).",
    )
    fallbacks: list[str] = Field(default_factory=list, description="Models tried when it fails.")
    api_base: str | None = Field(
        default=None, description="Base URL of an OpenAI-compatible server."
    )
    api_key: SecretStr | None = Field(default=None, description="Overrides the provider's env var.")
    timeout: float = Field(default=60.0, gt=0, description="Seconds per request.")
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_base_delay: float = Field(
        default=0.5, ge=0, description="First retry delay in seconds (doubles each retry)."
    )
    retry_max_delay: float = Field(default=20.0, ge=0, description="Longest retry delay (s).")
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    structured_mode: StructuredMode = Field(
        default="auto",
        description="Structured output: 'auto' (JSON schema, else tool call, else prompt), "
        "'json_schema', 'tool' or 'prompt'.",
    )
    structured_retries: int = Field(
        default=2, ge=0, le=10, description="Re-asks after invalid structured output."
    )
    models: dict[str, LLMModelSettings] = Field(
        default_factory=dict, description="Per-model overrides keyed by model string."
    )
    transport: Transport = Field(
        default="auto",
        description="'auto': OpenAI-compatible models (openai/..., local/..., hosted_vllm/... "
        "with an api_base) are called directly over HTTP, other providers through litellm; "
        "'litellm': every call goes through litellm.",
    )
    # Several models: litellm's Router (load balancing, cooldowns, retries, fallbacks).
    deployments: list[LLMDeploymentSettings] = Field(
        default_factory=list,
        description="Named deployments ([[llm.deployments]]); deployments sharing a name are "
        "load balanced, and llm.model / llm.fallbacks may name them.",
    )
    routing_strategy: RoutingStrategy | None = Field(
        default=None,
        description="How a deployment is chosen among several with one name: 'simple-shuffle', "
        "'latency-based-routing', 'cost-based-routing', 'least-busy' or "
        "'usage-based-routing-v2' (unset = simple-shuffle, or latency-based-routing with "
        "router.model_order = 'latency').",
    )
    allowed_fails: int = Field(
        default=1,
        ge=0,
        description="A deployment failing more often than this within a minute is cooled "
        "down (skipped for llm.cooldown_time seconds).",
    )
    cooldown_time: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a failing deployment is skipped (0 = never cool down).",
    )
    # The 'local/<name>' provider: GGUF models served by llama.cpp (magray-llm[local]).
    local_model_path: Path | None = Field(
        default=None,
        description="GGUF file served as 'local/<name>' (unset = the gemma3-270m model package).",
    )
    local_threads: int = Field(default=1, ge=1, le=256, description="llama.cpp threads.")
    local_ctx_size: int = Field(default=2048, ge=256, le=131072, description="Context (tokens).")
    local_startup_timeout: float = Field(
        default=60.0, gt=0, description="Seconds to wait for the local server to be healthy."
    )

    @model_validator(mode="after")
    def _deployments_are_distinct(self) -> LLMSettings:
        seen: set[tuple[str, str, str | None]] = set()
        labels: dict[str, str] = {}
        for d in self.deployments:
            key = (d.name, d.model, d.api_base)
            if key in seen:
                raise ValueError(
                    f"llm.deployments: {d.model!r} at {d.api_base or 'its default server'} is "
                    f"listed twice under the name {d.name!r}"
                )
            seen.add(key)
            if d.label is not None:
                if d.label in labels:
                    raise ValueError(f"llm.deployments: the label {d.label!r} is used twice")
                labels[d.label] = d.name
        names = {d.name for d in self.deployments}
        for d in self.deployments:
            if d.model in names:
                raise ValueError(
                    f"llm.deployments: deployment {d.name!r} uses the model {d.model!r}, which "
                    "is itself a deployment name; point it at a litellm model string"
                )
        return self
