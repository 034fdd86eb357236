"""Errors raised by magray-tools.

All are subclasses of :mod:`magray.common.errors` classes, so the CLI renders
them the same way as every other magray error::

    MagrayError
    ├── PermissionDeniedError
    │   └── PolicyDeniedError          "permission.policy"   the sandbox refused a call
    ├── NotFoundError
    │   └── ToolNotFoundError          "not_found.tool"      no tool with that name
    ├── ConflictError
    │   └── ToolClashError             "conflict.tool"       two plugins register one name
    ├── InvalidInputError
    │   └── ToolArgsError              "validation.tool_args" arguments do not fit the schema
    ├── OperationTimeoutError
    │   └── ToolTimeoutError           "timeout.tool"        the call ran past its timeout
    └── ToolError
        ├── ToolCancelledError         "tool.cancelled"      the cancel token was set
        ├── GitError                   "tool.git"            git failed or is missing
        ├── WebError                   "tool.web"            fetching or searching failed
        └── ShellError                 "tool.shell"          a command could not be started
"""

from __future__ import annotations

from magray.common.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OperationTimeoutError,
    PermissionDeniedError,
    ToolError,
)

__all__ = [
    "GitError",
    "PolicyDeniedError",
    "ShellError",
    "ToolArgsError",
    "ToolCancelledError",
    "ToolClashError",
    "ToolNotFoundError",
    "ToolTimeoutError",
    "WebError",
]


class PolicyDeniedError(PermissionDeniedError):
    """The sandbox policy refused the call; ``message`` says why."""

    code = "permission.policy"


class ToolNotFoundError(NotFoundError):
    """No enabled tool has the requested name."""

    code = "not_found.tool"


class ToolClashError(ConflictError):
    """Two tools (built-in or plugin) claim the same name."""

    code = "conflict.tool"


class ToolArgsError(InvalidInputError):
    """The arguments do not match the tool's schema."""

    code = "validation.tool_args"


class ToolTimeoutError(OperationTimeoutError):
    """The call ran longer than the policy's per-call timeout."""

    code = "timeout.tool"


class ToolCancelledError(ToolError):
    """The call was cancelled through its cancel token."""

    code = "tool.cancelled"


class GitError(ToolError):
    """git is missing, the path is not a repository, or a git command failed."""

    code = "tool.git"


class WebError(ToolError):
    """A web fetch or search failed (network, status, content type, provider)."""

    code = "tool.web"


class ShellError(ToolError):
    """A command could not be started."""

    code = "tool.shell"
