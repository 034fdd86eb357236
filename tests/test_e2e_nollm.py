"""End to end: no-LLM mode is a real mode. With no model configured, the installed
`magray` answers file, git, memory and todo requests through tools and memory
search, plans simple multi-step tasks with rules, and never prints a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import magray_router_e2ekit as kit  # loaded by tests/conftest.py
import pytest


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "notes.txt").write_text("alpha\nTODO: write the docs\n")
    (root / "src" / "app.py").write_text("def main():\n    pass  # TODO: handle errors\n")
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=Test"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "first commit"], cwd=root, check=True)
    return root


def chat(ws: Path, *args: str, input: str | None = None) -> Any:
    result = kit.run_magray("chat", *args, cwd=ws, input=input)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_file_request_runs_the_file_tool(ws: Path) -> None:
    result = chat(ws, "read notes.txt")
    assert result.returncode == 0, result.stderr
    assert "file_read ok" in result.stdout
    assert "TODO: write the docs" in result.stdout


def test_git_requests_run_git_tools(ws: Path) -> None:
    result = chat(ws, "--json", "show the last 3 commits")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["mode"] == "no-llm"
    assert data["tools"][0]["tool"] == "git_log"
    assert "first commit" in data["tools"][0]["content"]
    result = chat(ws, "show git status")
    assert result.returncode == 0
    assert "git_status ok" in result.stdout


def test_memory_requests_store_and_recall(ws: Path) -> None:
    result = chat(ws, "remember that the staging database is called orca")
    assert result.returncode == 0, result.stderr
    assert "remembered as [mem:" in result.stdout
    result = chat(ws, "what do you remember about the staging database")
    assert result.returncode == 0, result.stderr
    assert "orca" in result.stdout


def test_todo_requests_add_and_list(ws: Path) -> None:
    result = chat(ws, "--no-memory", "remind me to write the release notes")
    assert result.returncode == 0, result.stderr
    assert "added task #" in result.stdout
    result = chat(ws, "--no-memory", "what are my open tasks")
    assert "write the release notes" in result.stdout


def test_free_form_question_answers_from_memory_and_says_how_to_add_an_llm(ws: Path) -> None:
    chat(ws, "remember that the sky looks blue because of Rayleigh scattering")
    result = chat(ws, "why is the sky blue?")
    assert result.returncode == 0, result.stderr
    assert "Rayleigh scattering" in result.stdout
    assert "magray config set llm.model" in result.stderr


def test_smart_task_plans_with_rules_and_runs(ws: Path) -> None:
    result = kit.run_magray("smart", "grep TODO then list the files", cwd=ws)
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert "s1 [done]" in result.stdout
    assert "TODO: handle errors" in result.stdout


def test_smart_task_whose_second_step_uses_the_first_steps_output(ws: Path) -> None:
    result = kit.run_magray(
        "smart", "--json", "--yes", "find the TODOs in src and make a task list", cwd=ws
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["plan"]["steps"][1]["args"] == {"titles": "{{s1.items}}"}
    assert data["steps"][1]["args"] == {"titles": ["app.py:2: pass # TODO: handle errors"]}
    listed = kit.run_magray("todo", "list", "--json", cwd=ws)
    assert "app.py:2: pass # TODO: handle errors" in listed.stdout
    # asked in plain words, the list question now names the directory it is about
    listed = chat(ws, "--json", "list the files in src")
    reply = json.loads(listed.stdout)
    assert reply["tools"][0]["args"] == {"path": "src"}
    assert "app.py" in reply["text"]


def test_errors_are_one_line_with_a_hint(ws: Path) -> None:
    result = chat(ws, input="")
    assert result.returncode == 2
    assert result.stderr.startswith("error[router.empty]")
    assert "hint:" in result.stderr
    result = kit.run_magray("smart", "frobnicate the quux", cwd=ws)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert result.stderr.startswith("error[router.plan_invalid]")


def test_smart_dry_run_exits_2_when_the_plan_cannot_run(ws: Path) -> None:
    result = kit.run_magray("smart", "--dry-run", "read the file then list the files", cwd=ws)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert "Cannot run: step s1 (file_read) lacks path" in result.stdout
    assert "error[router.plan_invalid]: the plan cannot run" in result.stderr  # after progress
    ok = kit.run_magray("smart", "--dry-run", "grep TODO then list the files", cwd=ws)
    assert ok.returncode == 0, ok.stderr


def test_smart_with_an_empty_task_says_it_is_empty(ws: Path) -> None:
    result = kit.run_magray("smart", "", cwd=ws)
    assert result.returncode == 2
    assert result.stderr.startswith("error[router.empty]: nothing to plan: the task is empty")
    assert "no step" not in result.stderr


def test_chat_never_answers_a_question_with_its_own_transcript(ws: Path) -> None:
    first = chat(ws, "--json", "what is the staging database called?")
    assert first.returncode == 0, first.stderr
    second = chat(ws, "--json", "what is the staging database called?")
    reply = json.loads(second.stdout)
    assert reply["context"] == []
    assert "User asked" not in reply["text"]
    assert reply["text"].startswith("Nothing relevant in memory for this request")
    assert 'magray memory add "..."' in reply["text"]


def test_an_unrelated_question_says_nothing_relevant_and_how_to_add(ws: Path) -> None:
    chat(ws, "remember that the release train leaves every second Tuesday")
    result = chat(ws, "what is the capital of Australia?")
    assert result.returncode == 0, result.stderr
    assert "Nothing relevant in memory for this request (best match" in result.stdout
    assert "magray memory add" in result.stdout
    assert "release train" not in result.stdout
    relevant = chat(ws, "when does the release train leave?")
    assert "every second Tuesday" in relevant.stdout


def test_explain_shows_the_rule_that_settled_the_route(ws: Path) -> None:
    result = chat(ws, "--explain", "list the files in src")
    assert result.returncode == 0, result.stderr
    assert "- intent [rules" in result.stderr
    assert "- tool rules [rules" in result.stderr
    assert "file_list {'path': 'src'}" in result.stderr
    assert "app.py" in result.stdout
