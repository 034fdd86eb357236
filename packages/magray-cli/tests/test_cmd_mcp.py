"""`magray mcp`: the tool list (serving over stdio is tested end to end in tests/)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from magray.cli import cli


def test_mcp_tools_lists_memory_and_workspace_tools() -> None:
    result = CliRunner().invoke(cli, ["mcp", "tools", "--json"])
    assert result.exit_code == 0, result.output
    names = {t["name"] for t in json.loads(result.output)["tools"]}
    assert {"memory_search", "memory_add", "todo_list", "file_read"} <= names


def test_mcp_serve_help_names_the_transport() -> None:
    result = CliRunner().invoke(cli, ["mcp", "serve", "--help"])
    assert result.exit_code == 0
    assert "stdin/stdout" in result.output
