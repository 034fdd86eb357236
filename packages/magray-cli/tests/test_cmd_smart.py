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


def test_dry_run_shows_the_references_between_steps(ws: Path) -> None:
    task = "find the TODOs in src and make a task list"
    result = CliRunner().invoke(cli, ["smart", "--dry-run", "--plain", "--no-memory", task])
    assert result.exit_code == 0, result.output
    assert '{"titles": "{{s1.items}}"}' in result.stdout
    assert "uses s1.items" in result.stdout


def test_second_step_turns_the_first_steps_matches_into_tasks(ws: Path) -> None:
    task = "find the TODOs in src and make a task list"
    result = CliRunner().invoke(cli, ["smart", "--json", "--no-memory", "--yes", task])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [s["tool"] for s in data["steps"]] == ["file_grep", "todo_add_many"]
    assert data["steps"][1]["args"] == {"titles": ["app.py:1: x = 1 # TODO: handle errors"]}
    listed = CliRunner().invoke(cli, ["todo", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "app.py:1: x = 1 # TODO: handle errors" in listed.stdout


def test_a_step_whose_dependency_failed_says_why_it_did_not_run(ws: Path) -> None:
    task = "read missing.txt and remember its first line"
    result = CliRunner().invoke(cli, ["smart", "--json", "--yes", task])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["steps"][0]["status"] == "failed"
    assert data["steps"][1]["error"] == "not run: it needs s1 (file_read), which failed"


def test_dry_run_of_a_plan_that_cannot_run_exits_2_after_showing_it(ws: Path) -> None:
    from magray.router import PlanInvalidError

    task = "read the file then list the files"
    result = CliRunner().invoke(cli, ["smart", "--dry-run", "--plain", "--no-memory", task])
    assert result.exit_code != 0
    assert isinstance(result.exception, PlanInvalidError)
    assert result.exception.details["problems"] == ["step s1 (file_read) lacks path"]
    assert "Cannot run: step s1 (file_read) lacks path" in result.stdout  # the plan is shown
    # the same task without --dry-run is refused with the same problems
    real = CliRunner().invoke(cli, ["smart", "--no-memory", task])
    assert isinstance(real.exception, PlanInvalidError)
    assert real.exception.details["problems"] == result.exception.details["problems"]


@pytest.mark.parametrize("task", ["", "   "])
def test_an_empty_task_is_a_usage_error_that_says_so(ws: Path, task: str) -> None:
    from magray.router import EmptyRequestError

    result = CliRunner().invoke(cli, ["smart", "--no-memory", task])
    assert isinstance(result.exception, EmptyRequestError)
    assert "the task is empty" in result.exception.message
