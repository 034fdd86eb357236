"""``[tools]`` section: the tool sandbox (see docs/tools.md for the policy format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ToolRuleSettings", "ToolsSettings"]


class ToolRuleSettings(BaseModel):
    """One allow/deny/ask rule. Rules are checked in order; the last match wins."""

    model_config = ConfigDict(extra="forbid")

    tool: str = Field(default="*", description="Tool name or glob ('file_*', '*').")
    action: Literal["allow", "deny", "ask"] = Field(description="What to do on a match.")
    args: dict[str, str] = Field(
        default_factory=dict,
        description="Argument name -> glob the argument's value must match (all must match).",
    )
    reason: str | None = Field(default=None, description="Shown when the rule denies or asks.")


class ToolsSettings(BaseModel):
    """Settings of magray-tools."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    workspace: list[Path] = Field(
        default_factory=list, description="Roots tools may read and write (empty = current dir)."
    )
    read_only: list[Path] = Field(default_factory=list, description="Extra roots tools may read.")
    policy_file: Path | None = Field(default=None, description="TOML file of allow/deny/ask rules.")
    rules: list[ToolRuleSettings] = Field(
        default_factory=list,
        description="allow/deny/ask rules (checked before the policy file's; last match wins).",
    )
    disabled: list[str] = Field(
        default_factory=list, description="Tool names (or globs) that are not offered at all."
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds per tool call.")
    max_output_bytes: int = Field(default=64_000, ge=1024)
    allow_shell: bool = Field(default=False, description="Let the shell tool use a real shell.")
    network_allowlist: list[str] = Field(
        default_factory=list,
        description="Hosts web tools may reach without asking ('*' = any public host, "
        "'*.example.org' = subdomains).",
    )
    allow_private_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs web tools may reach although private/loopback/link-local "
        "(e.g. '127.0.0.1/32'); empty = none.",
    )
    ca_bundle: Path | None = Field(
        default=None,
        description="Extra CA certificates (PEM) web tools trust besides certifi's bundle.",
    )
    env_passthrough: list[str] = Field(
        default_factory=list,
        description="Env var names (or globs such as 'MY_*') child processes get besides "
        "PATH, HOME (a sandbox home), LANG, LC_*, TERM and TZ; nothing else passes.",
    )
    search_provider: str = Field(
        default="duckduckgo", description="Web search provider (entry-point name)."
    )
    assume_yes: bool = Field(default=False, description="Approve 'ask' rules without prompting.")
    sandbox: Literal["read-only", "workspace-write", "full"] = Field(
        default="workspace-write",
        description="OS confinement of child processes: 'read-only' (no writes but a private "
        "temp dir), 'workspace-write' (writes only in the workspace roots, .git read-only) or "
        "'full' (no file-system confinement; explicit opt-in).",
    )
    sandbox_mechanism: Literal["auto", "bwrap", "landlock", "seatbelt", "none"] = Field(
        default="auto",
        description="How children are confined: 'auto' picks bubblewrap (user namespaces), "
        "then Landlock on Linux and sandbox-exec on macOS; 'none' turns the OS sandbox off "
        "(every command that is not plainly read-only then asks).",
    )
    sandbox_network: bool = Field(
        default=False, description="Let sandboxed child processes use the network."
    )
    allow_overwrite: bool = Field(
        default=False, description="Let file_write replace existing files without asking."
    )
    allow_commit: bool = Field(default=False, description="Let git_commit run without asking.")

    @model_validator(mode="before")
    @classmethod
    def _renamed_bwrap(cls, data: Any) -> Any:
        """Read the old ``tools.bwrap`` switch (before 0.2) instead of refusing the file.

        ``bwrap = true`` meant "confine with bubblewrap": it becomes
        ``sandbox_mechanism = "bwrap"``. ``bwrap = false`` meant "no bubblewrap" at a time
        when nothing else confined commands; the OS sandbox is now on by default, so it
        becomes ``"auto"`` (switching confinement off needs an explicit ``"none"``).
        """
        if isinstance(data, dict) and "bwrap" in data:
            data = dict(data)
            old = data.pop("bwrap")
            if str(old).strip().lower() in {"true", "1", "yes", "on"}:
                data.setdefault("sandbox_mechanism", "bwrap")
        return data
