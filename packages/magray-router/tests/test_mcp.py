"""The MCP server, tested in-process with the SDK's own client (mcp 2.x)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

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


def _overwrite_and_commit(client: Any) -> Any:
    async def run() -> Any:
        write = await client.call_tool(
            "file_write", {"path": "notes.txt", "content": "replaced\n", "overwrite": True}
        )
        commit = await client.call_tool("git_commit", {"message": "x", "allow_empty": True})
        return write, commit

    return run()


def test_approval_refused_over_mcp_names_the_switch(make_router, workspace: Path) -> None:
    router = make_router(memory=False)
    before = (workspace / "notes.txt").read_text()
    write, commit = _session(router, _overwrite_and_commit)
    assert write.is_error
    assert "tools.allow_overwrite = true" in write.content[0].text
    assert (workspace / "notes.txt").read_text() == before
    assert commit.is_error
    assert "tools.allow_commit = true" in commit.content[0].text


def test_the_switch_lets_the_call_run(make_router, workspace: Path) -> None:
    router = make_router(memory=False, tools={"allow_overwrite": True})
    write, _ = _session(router, _overwrite_and_commit)
    assert not write.is_error, write.content[0].text
    assert (workspace / "notes.txt").read_text() == "replaced\n"


@pytest.mark.parametrize("approve", [True, False])
def test_client_approves_through_elicitation(make_router, workspace: Path, approve: bool) -> None:
    from mcp import Client, types

    router = make_router(memory=False)
    asked: list[str] = []

    async def elicit(_context: Any, params: Any) -> Any:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": approve})

    async def main() -> Any:
        async with Client(build_mcp_server(router), elicitation_callback=elicit) as client:
            return await client.call_tool(
                "file_write", {"path": "notes.txt", "content": "approved\n", "overwrite": True}
            )

    result = anyio.run(main)
    assert len(asked) == 1
    assert "file_write" in asked[0]
    assert result.is_error is (not approve)
    assert ((workspace / "notes.txt").read_text() == "approved\n") is approve
