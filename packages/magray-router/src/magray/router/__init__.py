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

from importlib.metadata import version as _version
from typing import Any

from magray.router._mcp import build_mcp_server, serve_stdio
from magray.router._plan import validate_plan
from magray.router._refs import FIELDS as STEP_OUTPUT_FIELDS
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

__version__ = _version("magray-router")

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
    """Deprecated names (``UnknownModelError``, see :mod:`magray.router.errors`)."""
    from magray.router import errors

    return getattr(errors, name)
