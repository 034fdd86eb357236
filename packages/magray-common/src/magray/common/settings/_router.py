"""``[router]`` section: the assistant's request routing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RouterSettings"]


class RouterSettings(BaseModel):
    """Settings of magray-router."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    use_memory: bool = Field(default=True, description="Retrieve memory as context.")
    store_interactions: bool = Field(default=True, description="Store exchanges in memory.")
    context_k: int = Field(default=5, ge=0, le=100, description="Memory passages per request.")
    max_replans: int = Field(default=1, ge=0, le=5)
