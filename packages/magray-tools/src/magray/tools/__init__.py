"""magray-tools: tool registry and sandboxed file, git, web and shell tools for magray.

Example::

    from pathlib import Path
    from magray.tools import Policy, ToolContext, ToolRegistry

    registry = ToolRegistry.from_entry_points()      # built-ins + installed plugins
    ctx = ToolContext(policy=Policy.for_workspace(Path(".")))
    result = registry.call("file_read", {"path": "README.md"}, ctx)
    print(result.ok, result.content[:80])
    registry.schemas(ctx)                            # OpenAI-style function schemas
"""

from __future__ import annotations

from importlib.metadata import version as _version

from magray.tools._model import (
    Action,
    Assessment,
    CancelToken,
    ConfirmRequest,
    Risk,
    Tool,
    ToolContext,
    ToolResult,
    approve_all,
    deny_all,
)
from magray.tools._policy import Policy, is_secret_env
from magray.tools._proc import ProcessResult, run_process
from magray.tools._registry import ENTRY_POINT_GROUP, Decision, LoadError, ToolRegistry
from magray.tools._rules import Rule, load_policy_file
from magray.tools._sandbox import (
    MODES,
    Confinement,
    Mechanism,
    bwrap_argv,
    child_env,
    detect_mechanism,
    run_confined,
)
from magray.tools._seatbelt import seatbelt_profile
from magray.tools.errors import (
    GitError,
    PolicyDeniedError,
    ShellError,
    ToolArgsError,
    ToolCancelledError,
    ToolClashError,
    ToolNotFoundError,
    ToolTimeoutError,
    WebError,
)

__version__ = _version("magray-tools")

__all__ = [
    "__version__",
    # model
    "Action",
    "Assessment",
    "CancelToken",
    "ConfirmRequest",
    "Risk",
    "Tool",
    "ToolContext",
    "ToolResult",
    "approve_all",
    "deny_all",
    # policy
    "Policy",
    "Rule",
    "is_secret_env",
    "load_policy_file",
    # registry
    "ENTRY_POINT_GROUP",
    "Decision",
    "LoadError",
    "ToolRegistry",
    # processes and the OS sandbox
    "MODES",
    "Confinement",
    "Mechanism",
    "ProcessResult",
    "bwrap_argv",
    "child_env",
    "detect_mechanism",
    "run_confined",
    "run_process",
    "seatbelt_profile",
    # errors
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
