"""``[llm]`` section: language-model providers (through litellm)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["LLMSettings"]


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
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
