"""`magray smart` in-process with the rule-based planner (no LLM configured)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from magray.cli import cli


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("x = 1  # TODO: handle errors\n")
    monkeypatch.setenv("MAGRAY_TOOLS__WORKSPACE", json.dumps([str(root)]))
    return root


def test_dry_run_shows_the_plan(ws: Path) -> None:
    result = CliRunner().invoke(
        cli, ["smart", "--dry-run", "--json", "--no-memory", "grep TODO then list the files"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["executed"] is False
    assert [s["tool"] for s in data["plan"]["steps"]] == ["file_grep", "file_list"]
    assert data["plan"]["steps"][1]["depends_on"] == ["s1"]


def test_runs_the_steps_as_todo_tasks(ws: Path) -> None:
    result = CliRunner().invoke(
        cli, ["smart", "--json", "--no-memory", "grep TODO then list the files"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    assert [s["status"] for s in data["steps"]] == ["done", "done"]
    assert "TODO: handle errors" in data["steps"][0]["content"]
    assert "s1 [done]" in data["summary"]


def test_a_task_no_tool_fits_is_a_clear_error(ws: Path) -> None:
    from magray.router import PlanInvalidError

    result = CliRunner().invoke(cli, ["smart", "--no-memory", "frobnicate the quux"])
    assert isinstance(result.exception, PlanInvalidError)
    assert "magray config set llm.model" in (result.exception.hint or "")
