"""docs/cli-reference.md is generated from the click commands and must be current."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "gen_cli_reference.py"


def test_cli_reference_is_current() -> None:
    if not SCRIPT.exists():
        pytest.skip("not running from the repository")
    render = runpy.run_path(str(SCRIPT))["render"]
    expected = render()
    current = (ROOT / "docs" / "cli-reference.md").read_text(encoding="utf-8")
    assert current == expected, "docs/cli-reference.md is stale: run scripts/gen_cli_reference.py"
    for group in ("memory", "todo", "tools", "models", "llm", "chat", "smart", "mcp", "config"):
        assert f"`magray {group}`" in current, group
