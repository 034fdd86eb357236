"""``magray todo ...``: the task DAG from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from magray.cli import cli


def todo(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["todo", *args], input=input)


def ok(*args: str) -> Any:
    result = todo(*args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.output)


def test_add_list_show(magray_home: Path) -> None:
    a = ok("add", "fetch data", "-p", "2", "-t", "work", "--estimate", "5")
    b = ok("add", "write [WIP] summary", "--after", str(a["id"]), "-d", "notes")
    assert (a["status"], b["status"]) == ("ready", "pending")
    assert (magray_home / "data" / "todo.db").exists()  # default location
    listed = ok("list")
    assert [t["title"] for t in listed] == ["fetch data", "write [WIP] summary"]
    assert listed[1]["depends_on"] == [a["id"]]
    shown = ok("show", str(b["id"]))
    assert shown["depends_on"] == [a["id"]]
    assert shown["description"] == "notes"
    assert ok("show", str(a["id"]))["dependents"] == [b["id"]]
    assert [t["id"] for t in ok("list", "--status", "ready")] == [a["id"]]
    assert [t["id"] for t in ok("list", "--tag", "work")] == [a["id"]]
    text = todo("list", "--tree")
    assert text.exit_code == 0
    assert "#1 ready fetch data" in text.output
    assert "└── #2 pending write [WIP] summary" in text.output  # brackets are not markup
    table = todo("list")
    assert "fetch data" in table.output
    assert "1 pending, 1 ready" in table.output
    human = todo("show", str(b["id"]))
    assert "after      #1 ready fetch data" in human.output


def test_transitions_and_cascades(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    a = ok("--db", db, "add", "a")["id"]
    b = ok("--db", db, "add", "b", "--after", str(a))["id"]
    failed = ok("--db", db, "fail", str(a), "--error", "broken")
    assert failed["task"]["status"] == "failed"
    assert failed["task"]["error"] == "broken"
    assert failed["changes"] == [
        {"task_id": a, "from": "ready", "to": "failed"},
        {"task_id": b, "from": "pending", "to": "blocked"},
    ]
    reopened = ok("--db", db, "retry", str(a))
    assert {c["task_id"]: c["to"] for c in reopened["changes"]} == {a: "ready", b: "pending"}
    done = ok("--db", db, "done", str(a), "--result", '{"rows": 3}')
    assert done["task"]["result"] == {"rows": 3}
    assert done["changes"][-1] == {"task_id": b, "from": "pending", "to": "ready"}
    cancelled = ok("--db", db, "cancel", str(b))
    assert cancelled["task"]["status"] == "cancelled"
    human = todo("--db", db, "retry", str(b))
    assert "re-opened #2 b [ready]" in human.output


def test_dependencies_and_cycles(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    ids = [ok("--db", db, "add", name)["id"] for name in ("a", "b", "c")]
    out = ok("--db", db, "dep", "add", str(ids[2]), str(ids[0]), str(ids[1]))
    assert out["depends_on"] == [ids[0], ids[1]]
    assert out["task"]["status"] == "pending"
    result = todo("--db", db, "dep", "add", str(ids[0]), str(ids[2]))
    assert result.exit_code != 0
    assert "cycle #1 -> #3 -> #1" in str(result.exception)
    removed = ok("--db", db, "dep", "rm", str(ids[2]), str(ids[1]))
    assert removed["removed"] is True
    assert removed["depends_on"] == [ids[0]]


def test_edit(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    a = ok("--db", db, "add", "a")["id"]
    edited = ok(
        "--db", db, "edit", str(a), "--title", "A", "-p", "3", "--action", "file_read",
        "--args", '{"path": "x"}', "--timeout", "10", "--idempotent",
    )  # fmt: skip
    assert (edited["title"], edited["priority"], edited["timeout"]) == ("A", 3, 10.0)
    assert edited["action"] == {"tool": "file_read", "args": {"path": "x"}}
    assert edited["idempotent"] is True
    cleared = ok("--db", db, "edit", str(a), "--no-action", "--timeout", "none")
    assert cleared["action"] is None
    assert cleared["timeout"] is None
    nothing = todo("--db", db, "edit", str(a))
    assert "nothing to change" in str(nothing.exception)


def test_graph_exports(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    a = ok("--db", db, "add", "a", "--estimate", "10")["id"]
    b = ok("--db", db, "add", 'say "hi"', "--after", str(a))["id"]
    ok("--db", db, "add", "lone")
    mermaid = todo("--db", db, "graph")
    assert mermaid.output.startswith("flowchart TD")
    assert f"t{a} --> t{b}" in mermaid.output
    dot = todo("--db", db, "graph", "-f", "dot")
    assert dot.output.startswith("digraph todo {")
    assert f"t{a} -> t{b};" in dot.output
    data = json.loads(todo("--db", db, "graph", "-f", "json").output)
    assert data["edges"] == [{"task": b, "depends_on": a}]
    assert len(data["nodes"]) == 3
    sub = json.loads(todo("--db", db, "graph", "-f", "json", "--root", str(a)).output)
    assert [n["id"] for n in sub["nodes"]] == [a, b]
    assert ok("--db", db, "graph", "-f", "mermaid")["format"] == "mermaid"
    assert ok("--db", db, "graph", "--critical") == {"tasks": [a, b], "weight": 11.0}
    target = tmp_path / "plan.dot"
    todo("--db", db, "graph", "-f", "dot", "-o", str(target))
    assert target.read_text() == dot.output


def test_run_executes_actions_and_leaves_manual_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from magray.tools import ToolRegistry

    if "file_read" not in ToolRegistry.from_entry_points():
        pytest.skip("magray-tools provides no file_read tool")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("the quick brown fox\n")
    db = str(tmp_path / "t.db")
    read = ok("--db", db, "add", "read", "--action", "file_read", "--args", '{"path": "notes.txt"}')
    review = ok("--db", db, "add", "review by hand", "--after", str(read["id"]))
    after = ok(
        "--db", db, "add", "after review", "--after", str(review["id"]), "--action", "file_read",
        "--args", '{"path": "notes.txt"}',
    )  # fmt: skip
    report = ok("--db", db, "run", "--quiet")
    assert report["succeeded"] == 1
    assert report["ok"]
    assert not report["complete"]
    assert report["waiting"] == [review["id"]]
    done = ok("--db", db, "show", str(read["id"]))
    assert done["status"] == "done"
    assert "quick brown fox" in json.dumps(done["result"])
    assert ok("--db", db, "show", str(after["id"]))["status"] == "pending"
    ok("--db", db, "done", str(review["id"]))
    second = todo("--db", db, "run")
    assert second.exit_code == 0, second.output
    assert "1 done, 0 failed" in second.output
    assert ok("--db", db, "show", str(after["id"]))["status"] == "done"


def test_run_fails_on_a_broken_action(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from magray.todo import Action, TodoStore

    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "t.db")
    # The CLI refuses unknown tools; a task stored through the library (or whose
    # plugin was uninstalled since) still fails cleanly at run time.
    with TodoStore(db) as store:
        bad = store.add("bad", action=Action("no_such_tool")).to_dict()
    result = todo("--db", db, "run")
    assert result.exit_code == 1
    assert "1 failed" in result.output
    task = ok("--db", db, "show", str(bad["id"]))
    assert task["status"] == "failed"
    assert "no_such_tool" in task["error"]
    assert task["attempts"] == 1  # "no such tool" cannot be fixed by retrying


def test_clear(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    a = ok("--db", db, "add", "a")["id"]
    ok("--db", db, "add", "b")
    ok("--db", db, "done", str(a))
    assert ok("--db", db, "clear") == {"deleted": 1}
    refused = todo("--db", db, "clear", "--all", input="n\n")
    assert refused.exit_code == 1
    assert ok("--db", db, "clear", "--all", "--yes") == {"deleted": 1}
    assert "no tasks yet" in todo("--db", db, "list").output


def test_errors_are_one_line_with_hints(tmp_path: Path, run_magray: Any) -> None:
    db = str(tmp_path / "t.db")
    proc = run_magray("todo", "--db", db, "show", "7")
    assert proc.returncode == 3
    assert proc.stderr.splitlines()[0] == "error[todo.not_found]: no task #7"
    assert proc.stderr.splitlines()[1].startswith("hint: ")
    run_magray("todo", "--db", db, "add", "a")
    run_magray("todo", "--db", db, "add", "b", "--after", "1")
    proc = run_magray("todo", "--db", db, "done", "2")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error[todo.transition]: task #2 still waits on #1 (ready)")
    proc = run_magray("todo", "--db", db, "add", "c", "--action", "x", "--args", "{oops")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error[todo.invalid]: --args is not valid JSON")


def test_add_refuses_an_unknown_tool_with_did_you_mean(tmp_path: Path) -> None:
    from magray.todo import TodoInputError

    def refused(*args: str) -> TodoInputError:
        result = todo("--db", db, *args)
        assert isinstance(result.exception, TodoInputError), result.output
        return result.exception

    db = str(tmp_path / "t.db")
    typo = refused("add", "x", "--action", "shell_rnu")
    assert typo.message == "--action: no tool named 'shell_rnu'"
    assert (typo.hint or "").startswith("did you mean shell_run?")
    unknown = refused("add", "x", "--action", "nonexistent_tool")
    assert "file_read" in (unknown.hint or "")  # no close match: the hint lists the tools
    bad_args = refused("add", "x", "--action", "file_read", "--args", '{"pth": "a"}')
    assert "--args for file_read: path: Field required" in bad_args.message
    assert ok("--db", db, "list", "--all") == []  # nothing was stored
    a = ok("--db", db, "add", "a")["id"]
    edit = refused("edit", str(a), "--action", "git_stauts")
    assert (edit.hint or "").startswith("did you mean git_status?")
    assert ok("--db", db, "show", str(a))["action"] is None


def test_unknown_tool_error_through_the_installed_cli(tmp_path: Path, run_magray: Any) -> None:
    proc = run_magray("todo", "--db", str(tmp_path / "t.db"), "add", "x", "--action", "shell_rnu")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0] == "error[todo.invalid]: --action: no tool named 'shell_rnu'"
    assert lines[1].startswith("hint: did you mean shell_run?")


@pytest.mark.parametrize("n", [1000, 5000])
def test_tree_of_a_long_chain_prints_every_task(tmp_path: Path, n: int) -> None:
    from magray.todo import TaskSpec, TodoStore

    db = str(tmp_path / "t.db")
    with TodoStore(db) as store:
        store.add_many(
            [TaskSpec(f"step {i}") for i in range(n)], edges=[(i, i - 1) for i in range(1, n)]
        )
    result = todo("--db", db, "list", "--tree")
    assert result.exit_code == 0, result.exception
    lines = result.output.splitlines()
    assert len(lines) == n + 1  # every task once, then the summary
    assert lines[0] == "#1 ready step 0"
    assert lines[1] == "└── #2 pending step 1"
    assert lines[n - 1].endswith(f"↳ [{n - 1}] #{n} pending step {n - 1}")
    assert [int(line.split("#")[1].split()[0]) for line in lines[:n]] == list(range(1, n + 1))


def test_tree_shows_a_shared_dependent_under_each_parent_once_expanded(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    a = ok("--db", db, "add", "a")["id"]
    b = ok("--db", db, "add", "b")["id"]
    c = ok("--db", db, "add", "c", "--after", str(a), "--after", str(b))["id"]
    ok("--db", db, "add", "d", "--after", str(c))
    lines = todo("--db", db, "list", "--tree").output.splitlines()
    assert lines[:5] == [
        "#1 ready a",
        "└── #3 pending c",
        "    └── #4 pending d",
        "#2 ready b",
        "└── #3 pending c  (shown above)",
    ]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_run_hands_the_task_lock_to_the_tools_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While a process the task started lives, it holds the task's lock, so a later
    # run (after this one is killed) cannot start the task next to it.
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "t.db")
    probe = ok(
        "--db", db, "add", "probe", "--action", "shell_run",
        "--args", '{"command": "ls -l /proc/self/fd"}',
    )  # fmt: skip
    report = ok("--db", db, "run", "--yes", "--quiet")
    assert report["succeeded"] == 1, report
    stdout = ok("--db", db, "show", str(probe["id"]))["result"]["data"]["stdout"]
    assert "t.db.tasks.lock" in stdout
