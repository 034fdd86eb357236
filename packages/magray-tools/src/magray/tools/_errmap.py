"""Turn a ToolResult's error dict back into the matching exception class."""

from __future__ import annotations

from typing import Any

from magray.common import errors as common
from magray.tools import errors as tools_errors

__all__ = ["error_from_dict"]

_CLASSES: list[type[common.MagrayError]] = [
    tools_errors.PolicyDeniedError,
    tools_errors.ToolNotFoundError,
    tools_errors.ToolClashError,
    tools_errors.ToolArgsError,
    tools_errors.ToolTimeoutError,
    tools_errors.ToolCancelledError,
    tools_errors.GitError,
    tools_errors.WebError,
    tools_errors.ShellError,
    common.PermissionDeniedError,
    common.NotFoundError,
    common.ConflictError,
    common.InvalidInputError,
    common.OperationTimeoutError,
    common.DependencyMissingError,
    common.ConfigError,
    common.ToolError,
]


def error_from_dict(error: dict[str, Any]) -> common.MagrayError:
    """The most specific class whose code is a prefix of ``error["code"]``."""
    code = str(error.get("code") or "error")
    cls: type[common.MagrayError] = common.MagrayError
    for candidate in _CLASSES:
        if code == candidate.code or code.startswith(f"{candidate.code}."):
            cls = candidate
            break
    return cls(
        str(error.get("message", "")),
        hint=error.get("hint"),
        code=code,
        details=error.get("details") or {},
    )
