"""End to end: the installed `magray chat` and `magray smart` against a loopback LLM server.

Each test runs the real console script in a subprocess with the LLM set through
MAGRAY_LLM__* env vars to an OpenAI-compatible server on 127.0.0.1 that the
test scripts: streamed answers, tool calls, plans, 500s, timeouts, fallbacks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import magray_router_e2ekit as kit  # loaded by tests/conftest.py
import magray_router_loopback as loopback  # loaded by tests/conftest.py
import pytest

pytestmark = pytest.mark.network_stub


@pytest.fixture(scope="module")
def embedder() -> Any:
    from magray.memory import load_embedder

    return load_embedder("default")


@pytest.fixture
def server() -> Iterator[Any]:
    with loopback.LoopbackLLM() as srv:
        yield srv


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "notes.txt").write_text("alpha\nTODO: write the docs\n")
    (root / "src" / "app.py").write_text("def main():\n    pass  # TODO: handle errors\n")
    return root


def _seed(embedder: Any, *texts: str) -> list[str]:
    from magray.common import paths
    from magray.memory import MemoryStore

    with MemoryStore.open(paths.data_dir() / "memory", embedder=embedder) as store:
        return store.add(list(texts), layer="insights")


def _no_traceback(result: Any) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


def test_one_shot_answer_streams_and_cites_memory(server, ws, embedder) -> None:
    (mem_id,) = _seed(embedder, "The release train leaves every second Tuesday.")
    server.responder = lambda body: loopback.text(f"Every second Tuesday [mem:{mem_id}].")
    result = kit.run_magray(
        "chat", "when does the release train leave?", cwd=ws, env=kit.llm_env(server.api_base)
    )
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert f"Every second Tuesday [mem:{mem_id}]." in result.stdout
    assert f"cited: mem:{mem_id}" in result.stderr
    answer_request = server.requests[-1]
    assert answer_request["stream"] is True
    assert "release train leaves every second Tuesday" in answer_request["messages"][0]["content"]
    # the exchange is in the interact layer: `magray memory search` can find it
    from magray.common import paths
    from magray.memory import MemoryStore

    with MemoryStore.open(paths.data_dir() / "memory", embedder=embedder) as store:
        hits = store.search("release train", k=5, layers="interact")
    assert any("Every second Tuesday" in h.text for h in hits)


def test_stdin_pipe_is_the_context_of_the_question(server, ws) -> None:
    server.responder = lambda body: loopback.text("libfoo.so is missing: install libfoo.")
    log = "step 3/5\nerror: libfoo.so: cannot open shared object file\n"
    result = kit.run_magray(
        "chat",
        "--no-memory",
        "why did this fail?",
        cwd=ws,
        env=kit.llm_env(server.api_base),
        input=log,
    )
    _no_traceback(result)
    assert result.returncode == 0
    assert "install libfoo" in result.stdout
    user = server.requests[-1]["messages"][-1]["content"]
    assert "why did this fail?" in user
    assert "libfoo.so: cannot open shared object file" in user


@pytest.mark.slow  # each run of the CLI in LLM mode pays ~4 s of litellm import
def test_json_output_and_a_tool_call(server, ws) -> None:
    server.script(
        "test-model",
        loopback.tool_call("file_read", {"path": "notes.txt"}),
        loopback.text("One TODO: write the docs."),
    )
    result = kit.run_magray(
        "chat",
        "--json",
        "--no-memory",
        "explain what is in my notes",
        cwd=ws,
        env=kit.llm_env(server.api_base),
    )
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["text"] == "One TODO: write the docs."
    assert data["mode"] == "llm"
    assert data["tools"][0]["tool"] == "file_read"
    assert data["tools"][0]["ok"] is True
    assert "TODO: write the docs" in data["tools"][0]["content"]


@pytest.mark.slow  # two more LLM-mode runs; retries and timeouts are also tested in-process
def test_server_errors_and_a_timeout_are_retried(server, ws) -> None:
    server.script("test-model", loopback.error(500), loopback.text("after a 500"))
    result = kit.run_magray(
        "chat", "--no-memory", "hello", cwd=ws, env=kit.llm_env(server.api_base)
    )
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert "after a 500" in result.stdout
    assert "recovered after 1 failed attempt" in result.stderr
    server.script("test-model", loopback.hang(), loopback.text("after a timeout"))
    result = kit.run_magray(
        "chat", "--no-memory", "hello", cwd=ws, env=kit.llm_env(server.api_base, timeout=1.0)
    )
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert "after a timeout" in result.stdout


def test_fallback_model_takes_over(server, ws) -> None:
    server.script("test-model", loopback.error(500), loopback.error(500))
    server.script("backup", loopback.text("the backup model answers"))
    result = kit.run_magray(
        "chat",
        "--json",
        "--no-memory",
        "hello",
        cwd=ws,
        env=kit.llm_env(server.api_base, fallback=True),
    )
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["text"] == "the backup model answers"
    assert data["model"] == "openai/backup"
    # `magray status` shows per-model errors and latency from that run
    status = kit.run_magray("status", "--json", cwd=ws)
    metrics = json.loads(status.stdout)["metrics"]
    errors = [k for k in metrics["counters"] if k.startswith("llm.errors") and "test-model" in k]
    assert errors, metrics["counters"]
    assert any(k.startswith("llm.latency_ms") and "backup" in k for k in metrics["histograms"])


@pytest.mark.slow  # each run of the CLI in LLM mode pays ~4 s of litellm import
def test_all_models_failing_is_one_clear_error(server, ws) -> None:
    server.responder = lambda body: loopback.error(500)
    result = kit.run_magray(
        "chat", "--no-memory", "hello", cwd=ws, env=kit.llm_env(server.api_base)
    )
    _no_traceback(result)
    assert result.returncode == 1
    assert result.stderr.startswith("error[")
    assert "hint:" in result.stderr


THREE_STEPS = {
    "steps": [
        {"id": "s1", "tool": "file_grep", "args": {"pattern": "TODO"}, "description": "find TODOs"},
        {"id": "s2", "tool": "file_read", "args": {"path": "notes.txt"}, "description": "notes"},
        {
            "id": "s3",
            "tool": "todo_add",
            "args": {"title": "handle errors in src/app.py"},
            "description": "make the task",
            "depends_on": ["s1", "s2"],
        },
    ]
}


def _planner(plan: dict[str, Any], summary: str) -> Any:
    def respond(body: dict[str, Any]) -> Any:
        if loopback.schema_name(body) == "PlanReply":
            return loopback.plan_reply(plan)
        return loopback.text(summary)

    return respond


def test_smart_plans_three_steps_with_a_dependency_and_runs_them(server, ws) -> None:
    server.responder = _planner(THREE_STEPS, "Two TODOs found; one task added.")
    result = kit.run_magray(
        "smart",
        "--yes",
        "find the TODOs in src and make a task list",
        cwd=ws,
        env=kit.llm_env(server.api_base),
    )
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert "Two TODOs found; one task added." in result.stdout
    assert "plan (3 steps" in result.stderr
    assert "[3/3] s3 done" in result.stderr
    from magray.common import paths
    from magray.common.settings import TodoSettings
    from magray.todo import TodoStore, default_path

    with TodoStore(paths.data_dir() / "smart.db") as plans:  # the plan ran as a DAG here
        s3 = next(t for t in plans.tasks(tag="smart") if t.action and t.action.tool == "todo_add")
        assert len(plans.dependencies(s3.id)) == 2
        assert str(s3.status) == "done"
    with TodoStore(default_path(TodoSettings())) as todo:  # and its step added a user task
        (made,) = todo.tasks()
    assert made.title == "handle errors in src/app.py"
    assert str(made.status) == "ready"


@pytest.mark.slow  # each run of the CLI in LLM mode pays ~4 s of litellm import
def test_smart_dry_run_shows_the_plan_only(server, ws) -> None:
    server.responder = _planner(THREE_STEPS, "unused")
    result = kit.run_magray(
        "smart", "--dry-run", "--json", "find the TODOs", cwd=ws, env=kit.llm_env(server.api_base)
    )
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["executed"] is False
    assert [s["tool"] for s in data["plan"]["steps"]] == ["file_grep", "file_read", "todo_add"]
    assert data["plan"]["steps"][2]["depends_on"] == ["s1", "s2"]
