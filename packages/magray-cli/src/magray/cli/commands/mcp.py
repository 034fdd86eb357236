"""``magray mcp serve``: memory and tools for other agents and editors, over MCP (stdio)."""

from __future__ import annotations

import click

from magray.cli._context import AppContext, json_option, pass_app


@click.group()
def mcp() -> None:
    """Serve magray's memory and tools over the Model Context Protocol."""


@mcp.command("serve")
@click.option("-y", "--yes", is_flag=True, help="Approve tool calls the sandbox would ask about.")
@click.option("--no-memory", is_flag=True, help="Do not offer memory_search / memory_add.")
@pass_app
def mcp_serve(app: AppContext, *, yes: bool, no_memory: bool) -> None:
    """Serve over stdin/stdout (point an MCP client at `magray mcp serve`).

    Tools: memory_search, memory_add, todo_list, todo_add, todo_add_many,
    todo_done and every tool the sandbox policy enables (files, git, web,
    shell). Calls go through the same policy as `magray chat`; a call the
    policy would ask about is refused unless --yes is given, since stdio
    carries the protocol. Logs go to stderr.
    """
    from magray.cli.commands._assist import build_router
    from magray.router import serve_stdio

    with build_router(app, no_memory=no_memory, yes=yes, interactive=False) as router:
        serve_stdio(router)


@mcp.command("tools")
@json_option
@pass_app
def mcp_tools(app: AppContext) -> None:
    """List the tools `magray mcp serve` would offer."""
    from magray.cli._output import emit_json, print_table
    from magray.cli.commands._assist import build_router

    with build_router(app, interactive=False) as router:
        schemas = router.tool_schemas()
    rows = [
        {"name": s["function"]["name"], "description": s["function"].get("description", "")}
        for s in schemas
    ]
    if app.json:
        emit_json({"tools": rows})
        return
    print_table(["tool", "description"], [(r["name"], r["description"][:80]) for r in rows])
