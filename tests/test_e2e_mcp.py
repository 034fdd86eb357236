"""End to end: `magray mcp serve` over stdio, driven by the official MCP SDK's client."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio


def _script() -> str:
    candidate = Path(sys.executable).parent / "magray"
    assert candidate.exists(), "the magray console script is not installed"
    return str(candidate)


def test_stdio_server_lists_tools_and_searches_memory(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    (tmp_path / "notes.txt").write_text("TODO: ship the MCP server\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGRAY_LLM")}
    env["MAGRAY_TOOLS__WORKSPACE"] = json.dumps([str(tmp_path)])
    params = StdioServerParameters(
        command=_script(), args=["mcp", "serve"], env=env, cwd=str(tmp_path)
    )

    async def main() -> Any:
        async with Client(params) as client:
            listed = await client.list_tools()
            await client.call_tool("memory_add", {"text": "The office wifi is called Gulls"})
            found = await client.call_tool("memory_search", {"query": "office wifi name"})
            read = await client.call_tool("file_read", {"path": "notes.txt"})
            return listed, found, read

    listed, found, read = anyio.run(main)
    names = {t.name for t in listed.tools}
    assert {"memory_search", "memory_add", "file_read", "git_status"} <= names
    assert "Gulls" in found.content[0].text
    assert "ship the MCP server" in read.content[0].text
