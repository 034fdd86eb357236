"""magray-router: the assistant. Request → intent → answer, tool call or plan.

Memory is the context (passages cited as ``[mem:<id>]``) and every exchange is
stored back into it; without a language model the router still answers file,
git, memory and todo requests with tools and memory search.

Example::

    from magray.common.settings import load_settings
    from magray.router import Router

    with Router(load_settings().settings) as router:
        reply = router.ask("what did we decide about the cache?")
        print(reply.text, reply.citations)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magray.router._router import CONFIGURE_LLM_COMMAND, Router
from magray.router._types import (
    Decision,
    Event,
    EventKind,
    EventSink,
    Passage,
    Plan,
    PlanReport,
    PlanStep,
    Reply,
    Route,
    StepResult,
    ToolOutcome,
)
from magray.router.errors import EmptyRequestError, PlanFailedError, PlanInvalidError

if TYPE_CHECKING:
    from magray.router._mcp import build_mcp_server, serve_stdio
    from magray.router._plan import validate_plan
    from magray.router._refs import FIELDS as STEP_OUTPUT_FIELDS

    __version__: str

# Imported on first use: the answer path of `magray chat` needs none of them (the MCP
# server pulls in the tool registry; plans, the todo executor). A test checks it.
_LAZY = {
    "build_mcp_server": ("magray.router._mcp", "build_mcp_server"),
    "serve_stdio": ("magray.router._mcp", "serve_stdio"),
    "validate_plan": ("magray.router._plan", "validate_plan"),
    "STEP_OUTPUT_FIELDS": ("magray.router._refs", "FIELDS"),
}

__all__ = [
    "__version__",
    # the router
    "CONFIGURE_LLM_COMMAND",
    "Router",
    # results
    "Decision",
    "Passage",
    "Reply",
    "Route",
    "ToolOutcome",
    # plans
    "Plan",
    "PlanReport",
    "PlanStep",
    "StepResult",
    "STEP_OUTPUT_FIELDS",
    "validate_plan",
    # MCP
    "build_mcp_server",
    "serve_stdio",
    # events
    "Event",
    "EventKind",
    "EventSink",
    # errors
    "EmptyRequestError",
    "PlanFailedError",
    "PlanInvalidError",
]


def __getattr__(name: str) -> Any:
    """Lazy exports, ``__version__``, and deprecated names (``UnknownModelError``, see
    :mod:`magray.router.errors`)."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import version

        globals()[name] = version("magray-router")
        return globals()[name]
    from magray.router import errors

    return getattr(errors, name)
