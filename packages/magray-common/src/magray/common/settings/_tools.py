"""``[tools]`` section: the tool sandbox."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ToolsSettings"]


class ToolsSettings(BaseModel):
    """Settings of magray-tools."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    workspace: list[Path] = Field(
        default_factory=list, description="Roots tools may read and write (empty = current dir)."
    )
    read_only: list[Path] = Field(default_factory=list, description="Extra roots tools may read.")
    policy_file: Path | None = Field(default=None, description="TOML file of allow/deny/ask rules.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per tool call.")
    max_output_bytes: int = Field(default=64_000, ge=1024)
    allow_shell: bool = Field(default=False, description="Let the shell tool use a real shell.")
    network_allowlist: list[str] = Field(
        default_factory=list, description="Hosts web tools may reach ('*' = any public host)."
    )
    assume_yes: bool = Field(default=False, description="Approve 'ask' rules without prompting.")
    bwrap: bool = Field(default=False, description="Run shell commands inside bubblewrap.")
