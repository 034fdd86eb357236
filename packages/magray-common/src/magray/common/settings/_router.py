"""``[router]`` section: the assistant's request routing."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RouterSettings"]


class RouterSettings(BaseModel):
    """Settings of magray-router."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    use_memory: bool = Field(default=True, description="Retrieve memory as context.")
    store_interactions: bool = Field(default=True, description="Store exchanges in memory.")
    interaction_layer: Literal["interact", "insights", "assets"] = Field(
        default="interact", description="Memory layer that stores each exchange."
    )
    context_k: int = Field(default=5, ge=0, le=100, description="Memory passages per request.")
    min_context_score: float = Field(
        default=0.2,
        ge=-1,
        le=1,
        description="Memory passages scoring below this (cosine) are not used as context.",
    )
    answer_min_score: float = Field(
        default=0.3,
        ge=-1,
        le=1,
        description="Without an LLM, memory scoring below this (cosine) is not shown as the "
        "answer; 'nothing relevant' is said instead (calibrated on the default MiniLM "
        "embedder, see docs/router.md).",
    )
    history_turns: int = Field(
        default=10, ge=0, le=200, description="Earlier exchanges sent with each chat request."
    )
    rules_confidence: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Rule-based intents at least this confident skip the LLM intent analyzer.",
    )
    model_order: Literal["configured", "latency"] = Field(
        default="configured",
        description="Order of llm.model + llm.fallbacks: as configured, or the fastest "
        "healthy model first by measured p50 latency (from `magray status` metrics); "
        "'latency' also makes litellm's Router use latency-based-routing among a name's "
        "deployments unless llm.routing_strategy is set.",
    )
    max_tool_rounds: int = Field(
        default=4, ge=1, le=20, description="Tool-call rounds the LLM may make per request."
    )
    max_plan_steps: int = Field(default=12, ge=1, le=100, description="Steps a plan may have.")
    max_replans: int = Field(default=1, ge=0, le=5)
    step_attempts: int = Field(
        default=2, ge=1, le=10, description="Attempts per plan step before it fails."
    )
    step_timeout: float = Field(default=120.0, gt=0, description="Seconds one plan step may run.")
    plan_db: Path | None = Field(
        default=None,
        description="Task database of `magray smart` plans (default: <data>/smart.db, apart "
        "from the todo list so a plan never waits for a `magray todo run`).",
    )
    system_prompt: str | None = Field(
        default=None, description="Extra instructions appended to the assistant's system prompt."
    )
    history_file: Path | None = Field(
        default=None, description="REPL line history (default: <data>/chat_history)."
    )
