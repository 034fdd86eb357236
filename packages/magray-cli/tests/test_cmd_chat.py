"""`magray chat` in-process (CliRunner) in no-LLM mode; LLM mode is covered end to end
in tests/test_e2e_chat.py against a loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from magray.cli import cli


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("TODO: write the docs\n")
    monkeypatch.setenv("MAGRAY_TOOLS__WORKSPACE", json.dumps([str(root)]))
    return root


def test_file_request_in_no_llm_mode(ws: Path) -> None:
    result = CliRunner().invoke(cli, ["chat", "--json", "--no-memory", "read notes.txt"])
    assert result.exit_code == 0, repr(result.exception)
    data = json.loads(result.output)
    assert data["mode"] == "no-llm"
    assert data["route"] == "tool"
    assert data["tools"][0]["tool"] == "file_read"
    assert "TODO: write the docs" in data["text"]


def test_stdin_alone_is_the_question(ws: Path) -> None:
    result = CliRunner().invoke(cli, ["chat", "--json", "--no-memory"], input="read notes.txt\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["request"] == "read notes.txt"


def test_plain_text_output_and_notice(ws: Path) -> None:
    result = CliRunner().invoke(cli, ["chat", "--no-memory", "why is the sky blue?"])
    assert result.exit_code == 0
    assert "Memory is off" in result.output
    assert "magray config set llm.model" in result.output  # the notice (stderr is mixed in)


def test_empty_request_is_a_usage_error(ws: Path) -> None:
    from magray.router import EmptyRequestError

    result = CliRunner().invoke(cli, ["chat", "--no-memory"], input="")
    assert isinstance(result.exception, EmptyRequestError)


def test_forced_todo_route(ws: Path) -> None:
    result = CliRunner().invoke(cli, ["chat", "--json", "--route", "todo", "anything"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["route"] == "todo"


def test_unknown_model_is_refused(ws: Path) -> None:
    from magray.llm import LLMModelNotFoundError

    result = CliRunner().invoke(cli, ["chat", "--model", "openai/nope", "hi"])
    assert isinstance(result.exception, LLMModelNotFoundError)
    assert result.exception.code == "llm.model_not_found"


def test_failed_tool_exits_1(ws: Path) -> None:
    result = CliRunner().invoke(cli, ["chat", "--json", "--no-memory", "read missing.txt"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False


def test_docs_cli_md_lists_every_option_of_chat_smart_and_mcp() -> None:
    """docs/cli.md is checked against the click commands (a renamed option fails here)."""
    import click

    root = Path(__file__).resolve().parents[3]
    text = (root / "docs" / "cli.md").read_text()
    ctx = click.Context(cli)
    commands = [cli.get_command(ctx, "chat"), cli.get_command(ctx, "smart")]
    mcp = cli.get_command(ctx, "mcp")
    assert isinstance(mcp, click.Group)
    commands += [mcp.get_command(ctx, "serve"), mcp.get_command(ctx, "tools")]
    for command in commands:
        assert command is not None
        assert f"`magray {command.name}" in text or f"mcp {command.name}" in text, command.name
        for param in command.params:
            if isinstance(param, click.Option):
                for opt in param.opts:
                    if opt.startswith("--") and opt != "--help":
                        assert opt in text, f"{command.name} {opt} is not in docs/cli.md"
