"""``[llm]`` section: language-model providers (through litellm)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["LLMModelSettings", "LLMSettings", "StructuredMode"]

StructuredMode = Literal["auto", "json_schema", "tool", "prompt"]


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
    params: dict[str, Any] = Field(
        default_factory=dict, description="Extra litellm parameters passed on every call."
    )


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
