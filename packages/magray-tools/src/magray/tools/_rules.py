"""Allow/deny/ask rules and the TOML policy file that adds roots, hosts and rules.

A :class:`Rule` is a tool-name glob plus argument globs; :func:`load_policy_file`
parses a policy file (format in docs/tools.md) whose lists extend the settings'.
Unknown keys are an error, so a typo never silently weakens the policy.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from magray.common.errors import ConfigError
from magray.tools._model import Action

__all__ = ["PolicyFileData", "Rule", "load_policy_file"]


@dataclass(frozen=True)
class Rule:
    """One allow/deny/ask rule: a tool-name glob plus argument globs.

    Attributes:
        tool: Glob on the tool name (``"*"`` matches every tool).
        action: What a match means.
        args: Argument name -> glob on its value; every one must match.
        reason: Shown to the user when the rule denies or asks.
        source: Where the rule came from (``"settings"`` or the policy file path).
    """

    tool: str
    action: Action
    args: Mapping[str, str] = field(default_factory=dict)
    reason: str | None = None
    source: str = "settings"

    def matches(
        self,
        tool: str,
        values: Mapping[str, Sequence[str]],
        every: Mapping[str, Sequence[str]] | None = None,
    ) -> bool:
        """Whether the rule applies to a call.

        Args:
            tool: The tool's name.
            values: Each argument name -> the string forms it can be matched in
                (a deny or ask rule matches when any form does).
            every: Argument name -> parts that must *all* match for an allow rule
                (the parsed simple commands of a shell command line, so ``allow
                make*`` does not allow ``make && rm x``).
        """
        if not fnmatchcase(tool, self.tool):
            return False
        for key, pattern in self.args.items():
            parts = (every or {}).get(key)
            if self.action is Action.ALLOW and parts:
                if not all(fnmatchcase(part, pattern) for part in parts):
                    return False
                continue
            forms = values.get(key)
            if not forms or not any(fnmatchcase(form, pattern) for form in forms):
                return False
        return True

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        where = f"{self.tool}({args})" if args else self.tool
        return f"rule {self.action.value} {where} from {self.source}"


class _RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str = "*"
    action: Literal["allow", "deny", "ask"]
    args: dict[str, str] = Field(default_factory=dict)
    reason: str | None = None


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    read_only: list[Path] = Field(default_factory=list)
    network_allowlist: list[str] = Field(default_factory=list)
    allow_private_networks: list[str] = Field(default_factory=list)
    env_passthrough: list[str] = Field(default_factory=list)
    rules: list[_RuleModel] = Field(default_factory=list)


@dataclass(frozen=True)
class PolicyFileData:
    read_only: list[Path]
    network_allowlist: list[str]
    allow_private_networks: list[str]
    env_passthrough: list[str]
    rules: list[Rule]


def load_policy_file(path: Path) -> PolicyFileData:
    """Parse a TOML policy file (format in docs/tools.md).

    Raises:
        ConfigError: The file is missing, unreadable, not TOML or has unknown keys.
    """
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"policy file {path} does not exist",
            hint="create it (see docs/tools.md) or unset tools.policy_file",
            code="config.policy",
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"cannot read policy file {path}: {exc}",
            hint="fix the TOML syntax; docs/tools.md shows the format",
            code="config.policy",
        ) from exc
    try:
        parsed = _PolicyFile.model_validate(raw)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"invalid policy file {path}: {where}: {first['msg']}",
            hint="allowed keys: read_only, network_allowlist, allow_private_networks, "
            "env_passthrough, [[rules]] with tool/action/args/reason",
            code="config.policy",
        ) from None
    base = Path(path).parent
    return PolicyFileData(
        read_only=[_relative_to(base, p) for p in parsed.read_only],
        network_allowlist=parsed.network_allowlist,
        allow_private_networks=parsed.allow_private_networks,
        env_passthrough=parsed.env_passthrough,
        rules=[
            Rule(r.tool, Action(r.action), dict(r.args), r.reason, source=str(path))
            for r in parsed.rules
        ],
    )


def _relative_to(base: Path, path: Path) -> Path:
    expanded = Path(os.path.expanduser(path))
    return expanded if expanded.is_absolute() else base / expanded
