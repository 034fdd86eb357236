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
    max_workers: int = Field(default=4, ge=1, le=256, description="Tasks run in parallel.")
    max_attempts: int = Field(
        default=3, ge=1, description="Attempts per task before it fails (for new tasks)."
    )
    on_failure: Literal["block", "skip"] = Field(
        default="block", description="What happens to dependents of a failed task."
    )
    default_timeout: float | None = Field(
        default=None, gt=0, description="Seconds a task may run when it sets no timeout itself."
    )
    retry_backoff: float = Field(
        default=1.0, ge=0, description="Seconds before the first retry; doubles each attempt."
    )
    retry_backoff_max: float = Field(
        default=60.0, ge=0, description="Upper bound of the delay between retries, in seconds."
    )
