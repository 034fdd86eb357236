"""``magray mcp serve``: memory and the enabled tools over the Model Context Protocol.

Built on the official ``mcp`` SDK, major version 2 (``mcp>=2.3,<3``), with its
low-level :class:`mcp.server.lowlevel.Server`: magray's tools already carry JSON
schemas (from their pydantic argument models), so they are listed as they are
instead of being re-derived from Python signatures as ``MCPServer`` would. Every
call runs through the router's tool registry, so the sandbox policy applies
exactly as in ``magray chat``. stdio carries the protocol, so there is no
terminal to ask on: a call the policy marks ``ask`` is put to the client as an
MCP elicitation (a yes/no form) when the client declares that capability, and
runs only if the user accepts there; otherwise it is refused with a message
naming the config switch that allows it (``tools.allow_overwrite``,
``tools.allow_commit``, an allow rule, or ``tools.assume_yes`` / ``--yes``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from magray.common.errors import DependencyMissingError, MagrayError
from magray.router import _wiring as W
from magray.tools import Action, Decision, approve_all

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

    from magray.router._router import Router

__all__ = ["build_mcp_server", "serve_stdio"]

SERVER_NAME = "magray"


def _sdk() -> Any:
    try:
        import mcp
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DependencyMissingError(
            "the MCP SDK is not installed",
            hint='pip install "mcp>=2.3,<3"',
        ) from exc
    return mcp


def build_mcp_server(router: Router) -> Server[Any]:
    """An MCP server listing the router's enabled tools (memory and todo included).

    Test it in-process with ``mcp.Client(build_mcp_server(router))``.
    """
    _sdk()
    import anyio
    from mcp import types
    from mcp.server.lowlevel import Server

    async def list_tools(_ctx: Any, _params: Any) -> types.ListToolsResult:
        schemas = await anyio.to_thread.run_sync(router.tool_schemas)
        tools = [
            types.Tool(
                name=s["function"]["name"],
                description=s["function"].get("description", ""),
                input_schema=s["function"].get("parameters") or {"type": "object"},
            )
            for s in schemas
        ]
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        arguments = dict(params.arguments or {})
        tool_ctx = router.tool_ctx
        decision = await anyio.to_thread.run_sync(_decide, router, params.name, arguments)
        if decision is not None and decision.action is Action.ASK:
            approved = await _client_approves(ctx, params, arguments, decision)
            if isinstance(approved, types.InputRequiredResult):
                return approved
            if not approved:
                router.metrics.counter("router.mcp.calls", tool=params.name, ok="refused").inc()
                return types.CallToolResult(
                    content=[types.TextContent(type="text", text=refusal(params.name, decision))],
                    structured_content={"ok": False, "error": {"code": "permission.unconfirmed"}},
                    is_error=True,
                )
            tool_ctx = dataclasses.replace(tool_ctx, confirm=approve_all)
        outcome = await anyio.to_thread.run_sync(
            W.call_tool, router.registry, params.name, arguments, tool_ctx
        )
        router.metrics.counter("router.mcp.calls", tool=params.name, ok=str(outcome.ok)).inc()
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=outcome.content)],
            structured_content={"ok": outcome.ok, "error": outcome.error},
            is_error=not outcome.ok,
        )

    from importlib.metadata import version

    return Server(
        SERVER_NAME,
        version=version("magray-router"),
        instructions="magray: search and add memories, manage tasks, and use the workspace "
        "tools (files, git, web, shell) under the user's sandbox policy.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _decide(router: Router, name: str, arguments: dict[str, Any]) -> Decision | None:
    """The policy's verdict, or None when the call path itself reports the problem."""
    if router.tool_ctx.policy.assume_yes or name not in router.registry:
        return None
    try:
        return router.registry.decide(name, arguments, router.tool_ctx)
    except MagrayError:
        return None  # invalid arguments: the normal call path returns the error


def switch_for(decision: Decision) -> str:
    """The config switch that lets such a call run without approval."""
    if "tools.allow_overwrite" in decision.reason:
        return "tools.allow_overwrite = true"
    if "tools.allow_commit" in decision.reason:
        return "tools.allow_commit = true"
    return (
        "an allow rule in [[tools.rules]] (docs/tools.md), or tools.assume_yes = true "
        "(`magray mcp serve --yes`)"
    )


def refusal(name: str, decision: Decision) -> str:
    """The message of a call that needed approval the MCP client did not give."""
    return (
        f"error[permission.unconfirmed]: {name} needs approval ({decision.reason}) and the "
        f"MCP client did not approve it\nhint: to allow such calls without asking set "
        f"{switch_for(decision)}"
    )


_APPROVAL_KEY = "magray.approve"
_APPROVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"approve": {"type": "boolean", "title": "Run it"}},
    "required": ["approve"],
}


def _accepted(answer: Any) -> bool:
    """Whether an elicitation answer (model or plain dict) approves the call."""
    if isinstance(answer, dict):
        action, content = answer.get("action"), answer.get("content")
    else:
        action, content = getattr(answer, "action", None), getattr(answer, "content", None)
    return action == "accept" and bool((content or {}).get("approve"))


async def _client_approves(
    ctx: Any, params: Any, arguments: dict[str, Any], decision: Decision
) -> Any:
    """Ask the client's user through an MCP elicitation, if the client supports it.

    Returns True or False, or (protocol 2026-07-28, where servers send no
    requests of their own) an ``InputRequiredResult`` carrying the question; the
    client answers it and repeats the call with the answer in ``inputResponses``.
    """
    from mcp import types
    from mcp.shared.exceptions import NoBackChannelError

    answered = (getattr(params, "input_responses", None) or {}).get(_APPROVAL_KEY)
    if answered is not None:
        return _accepted(answered)
    session = getattr(ctx, "session", None)
    wanted = types.ClientCapabilities(elicitation=types.ElicitationCapability())
    if session is None or not session.check_client_capability(wanted):
        return False
    shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())[:500]
    message = f"magray wants to run {params.name}({shown}): {decision.reason}. Allow it?"
    try:
        answer = await session.elicit_form(
            message, _APPROVAL_SCHEMA, related_request_id=getattr(ctx, "request_id", None)
        )
    except NoBackChannelError:
        request = types.ElicitRequest(
            params=types.ElicitRequestFormParams(message=message, requested_schema=_APPROVAL_SCHEMA)
        )
        return types.InputRequiredResult(input_requests={_APPROVAL_KEY: request})
    except Exception:  # a client that fails the request has not approved anything
        return False
    return _accepted(answer)


def serve_stdio(router: Router) -> None:
    """Serve over stdin/stdout until the client closes the connection."""
    server = build_mcp_server(router)
    import anyio
    from mcp.server.stdio import stdio_server

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
