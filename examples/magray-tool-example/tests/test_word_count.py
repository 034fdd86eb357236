"""The example plugin works directly and, once installed, through the entry point."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from magray_tool_example import WordCount

from magray.tools import Policy, ToolContext, ToolRegistry


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "poem.txt").write_text("roses are red\nviolets are blue\n")
    (tmp_path / "secret.txt").write_text("outside the workspace\n")
    return ToolContext(policy=Policy.for_workspace(ws))


def test_counts_through_a_registry(ctx: ToolContext) -> None:
    registry = ToolRegistry()
    registry.register(WordCount())
    result = registry.call("word_count", {"path": "poem.txt"}, ctx)
    assert result.ok, result.content
    assert result.data == {"lines": 2, "words": 6, "chars": 31}


def test_the_sandbox_applies_to_plugins(ctx: ToolContext) -> None:
    registry = ToolRegistry()
    registry.register(WordCount())
    result = registry.call("word_count", {"path": "../secret.txt"}, ctx)
    assert not result.ok
    assert result.error is not None
    assert result.error["code"] == "permission.policy"


def test_installed_plugin_is_discovered_by_entry_point(ctx: ToolContext) -> None:
    try:
        importlib.metadata.distribution("magray-tool-example")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("not installed: pip install -e examples/magray-tool-example")
    registry = ToolRegistry.from_entry_points()
    assert registry.origin("word_count") == "magray-tool-example:word_count"
    assert "file_read" in registry  # built-ins load through the same group
    names = {s["function"]["name"] for s in registry.schemas(ctx)}
    assert "word_count" in names
    assert registry.call("word_count", {"path": "poem.txt"}, ctx).data["words"] == 6
