"""The MCP server, tested in-process with the SDK's own client (mcp 2.x)."""

from __future__ import annotations

from typing import Any

import anyio

from magray.router import build_mcp_server


def _session(router: Any, steps: Any) -> Any:
    from mcp import Client

    async def main() -> Any:
        async with Client(build_mcp_server(router)) as client:
            return await steps(client)

    return anyio.run(main)


def test_lists_memory_todo_and_workspace_tools(make_router) -> None:
    router = make_router()

    async def steps(client: Any) -> Any:
        return await client.list_tools()

    listed = _session(router, steps)
    names = {t.name for t in listed.tools}
    assert {"memory_search", "memory_add", "todo_list", "todo_add", "file_read"} <= names
    search = next(t for t in listed.tools if t.name == "memory_search")
    assert search.input_schema["required"] == ["query"]


def test_memory_add_then_search_through_the_client(make_router) -> None:
    router = make_router()

    async def steps(client: Any) -> Any:
        added = await client.call_tool(
            "memory_add", {"text": "The VPN config lives in ~/vpn/office.ovpn"}
        )
        found = await client.call_tool("memory_search", {"query": "where is the vpn config"})
        return added, found

    added, found = _session(router, steps)
    assert not added.is_error
    assert not found.is_error
    assert "office.ovpn" in found.content[0].text
    assert found.content[0].text.startswith("[mem:")


def test_policy_applies_to_mcp_calls(make_router) -> None:
    router = make_router(memory=False)

    async def steps(client: Any) -> Any:
        inside = await client.call_tool("file_read", {"path": "notes.txt"})
        outside = await client.call_tool("file_read", {"path": "/etc/passwd"})
        return inside, outside

    inside, outside = _session(router, steps)
    assert not inside.is_error
    assert "TODO: write the docs" in inside.content[0].text
    assert outside.is_error
    assert "root:" not in outside.content[0].text
