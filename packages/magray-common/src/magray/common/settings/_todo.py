"""``[todo]`` section: the task DAG."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TodoSettings"]


class TodoSettings(BaseModel):
    """Settings of magray-todo."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    path: Path | None = Field(default=None, description="Task database (default: <data>/todo.db).")
    max_workers: int = Field(default=4, ge=1, le=256)
    max_attempts: int = Field(default=3, ge=1)
    on_failure: Literal["block", "skip"] = Field(
        default="block", description="What happens to dependents of a failed task."
    )
