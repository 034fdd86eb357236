"""``[logging]`` section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LoggingSettings"]


class LoggingSettings(BaseModel):
    """Where log lines go and how they look. Logs always go to stderr, never stdout."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="WARNING", description="Minimum level written to stderr."
    )
    format: Literal["auto", "console", "json"] = Field(
        default="auto", description="auto: human console on a TTY, JSON lines otherwise."
    )
    file: Path | None = Field(
        default=None, description="Also append JSON lines to this file (level from file_level)."
    )
    file_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
