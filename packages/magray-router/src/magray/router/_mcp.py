"""``magray mcp serve``: memory and the enabled tools over the Model Context Protocol.

Built on the official ``mcp`` SDK, major version 2 (``mcp>=2.3,<3``), with its
low-level :class:`mcp.server.lowlevel.Server`: magray's tools already carry JSON
schemas (from their pydantic argument models), so they are listed as they are
instead of being re-derived from Python signatures as ``MCPServer`` would. Every
call runs through the router's tool registry, so the sandbox policy applies
exactly as in ``magray chat``; a call the policy marks ``ask`` is refused
unless the server was started with ``--yes`` (stdio carries the protocol, so
there is no terminal to ask on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magray.common.errors import DependencyMissingError
from magray.router import _wiring as W

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

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        outcome = await anyio.to_thread.run_sync(
            W.call_tool, router.registry, params.name, arguments, router.tool_ctx
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


def serve_stdio(router: Router) -> None:
    """Serve over stdin/stdout until the client closes the connection."""
    server = build_mcp_server(router)
    import anyio
    from mcp.server.stdio import stdio_server

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
