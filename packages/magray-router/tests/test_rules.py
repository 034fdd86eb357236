"""No-LLM routing regression table: realistic requests → route, tool and key arguments.

Each row is what a user would type; the expectation is what a careful person would
do with it. ``args`` lists the arguments that must be extracted (others may be
there too); a plan row lists its steps as ``(tool, args)``. :func:`accuracy` is the
figure quoted in docs/router.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from magray.router import Route


@dataclass(frozen=True)
class Case:
    text: str
    route: str
    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    steps: tuple[tuple[str, dict[str, Any]], ...] = ()


def tool(request: str, name: str, **args: Any) -> Case:
    return Case(request, "tool", name, args)


def answer(text: str) -> Case:
    return Case(text, "answer")


def plan(text: str, *steps: tuple[str, dict[str, Any]]) -> Case:
    return Case(text, "plan", steps=steps)


CASES = [
    # files
    tool("read notes.txt", "file_read", path="notes.txt"),
    tool("show me the contents of README.md", "file_read", path="README.md"),
    tool("open src/app.py", "file_read", path="src/app.py"),
    tool("cat the file config.toml", "file_read", path="config.toml"),
    tool("print pyproject.toml", "file_read", path="pyproject.toml"),
    tool("list the files in src", "file_list", path="src"),
    tool("what files are in the docs folder", "file_list", path="docs"),
    tool("show the directory tree of packages", "file_list", path="packages"),
    tool("what is in the tests directory", "file_list", path="tests"),
    tool("list files", "file_list"),
    tool("find all python files", "file_glob", pattern="**/*.py"),
    tool("find files matching *.md in docs", "file_glob", pattern="**/*.md", path="docs"),
    tool("list the markdown files under docs", "file_glob", pattern="**/*.md", path="docs"),
    tool("grep for FIXME in the code", "file_grep", pattern="FIXME"),
    tool('search for "def main" in src', "file_grep", pattern="def main", path="src"),
    tool("where is TODO mentioned", "file_grep", pattern="TODO"),
    tool("find the TODOs in src", "file_grep", pattern="TODO", path="src"),
    tool("show me all the FIXMEs", "file_grep", pattern="FIXME"),
    tool("show me what's inside notes.txt", "file_read", path="notes.txt"),
    tool("display the file src/main.rs", "file_read", path="src/main.rs"),
    tool("list everything in the scripts folder", "file_list", path="scripts"),
    tool("find every yaml file in .github", "file_glob", pattern="**/*.{yaml,yml}", path=".github"),
    tool('search the code for "import numpy"', "file_grep", pattern="import numpy"),
    tool("which files mention FIXME", "file_grep", pattern="FIXME"),
    tool("show README.md", "file_read", path="README.md"),
    tool("what does src/app.py contain", "file_read", path="src/app.py"),
    tool("give me a tree of the repo", "file_list"),
    tool("list all json files", "file_glob", pattern="**/*.json"),
    tool('search src for "import os"', "file_grep", pattern="import os", path="src"),
    tool(
        "grep -i error in logs/app.log",
        "file_grep",
        pattern="error",
        ignore_case=True,
        path="logs/app.log",
    ),
    # git
    tool("show git status", "git_status"),
    tool("what's the status of the repo", "git_status"),
    tool("what changed in the repo", "git_diff"),
    tool("show the diff", "git_diff"),
    tool("show the last 3 commits", "git_log", max_count=3),
    tool("list the five most recent commits", "git_log", max_count=5),
    tool("show me the git log", "git_log"),
    tool("what branch am I on", "git_branch"),
    tool("are there uncommitted changes", "git_status"),
    tool("show the commit history", "git_log"),
    tool("how many commits are there", "git_log"),
    tool("diff against main", "git_diff", ref="main"),
    tool("show staged changes", "git_diff", staged=True),
    tool('commit with message "fix typo"', "git_commit", message="fix typo"),
    # memory
    tool("remember that the staging db is orca", "memory_add", text="the staging db is orca"),
    tool(
        "note that the deploy key rotates monthly",
        "memory_add",
        text="the deploy key rotates monthly",
    ),
    tool(
        "save this to memory: the VPN uses port 51820",
        "memory_add",
        text="the VPN uses port 51820",
    ),
    tool(
        "remember that we read and write files in utf-8",
        "memory_add",
        text="we read and write files in utf-8",
    ),
    tool("search memory for orca", "memory_search", query="orca"),
    tool(
        "search my memories about the release process", "memory_search", query="the release process"
    ),
    tool("what do you remember about the staging db", "memory_search", query="the staging db"),
    tool("do you remember anything about the VPN", "memory_search", query="the VPN"),
    tool("look up orca in memory", "memory_search", query="orca"),
    tool("recall what we decided about caching", "memory_search", query="caching"),
    tool("what do you know about the deploy key", "memory_search", query="the deploy key"),
    tool("jot down that the demo is on friday", "memory_add", text="the demo is on friday"),
    tool("what did I say about the demo", "memory_search", query="the demo"),
    tool("anything in memory about postgres?", "memory_search", query="postgres"),
    tool("what do we know about orca", "memory_search", query="orca"),
    tool("search memory: vpn port", "memory_search", query="vpn port"),
    tool(
        "forget nothing: the api key lives in vault",
        "memory_add",
        text="the api key lives in vault",
    ),
    # todo
    tool("remind me to write the release notes", "todo_add", title="write the release notes"),
    tool("add a task to fix the login bug", "todo_add", title="fix the login bug"),
    tool("add todo: update the changelog", "todo_add", title="update the changelog"),
    tool("what are my open tasks", "todo_list", status="open"),
    tool("show my todo list", "todo_list"),
    tool("list my tasks", "todo_list"),
    tool('put "renew the TLS cert" on my todo list', "todo_add", title="renew the TLS cert"),
    tool("what's on my todo list", "todo_list"),
    tool("todo: call the plumber", "todo_add", title="call the plumber"),
    tool("show completed tasks", "todo_list", status="done"),
    tool("mark task 3 as done", "todo_done", task="3"),
    tool("complete task #7", "todo_done", task="7"),
    tool("task 2 is finished", "todo_done", task="2"),
    tool("tick off task 4", "todo_done", task="4"),
    tool('mark "renew the TLS cert" done', "todo_done", task="renew the TLS cert"),
    # shell
    tool("run ls -la", "shell_run", command="ls -la"),
    tool("execute `pytest -q`", "shell_run", command="pytest -q"),
    tool("run the tests with pytest", "shell_run", command="pytest"),
    tool("run `make build`", "shell_run", command="make build"),
    tool("run git --version", "shell_run", command="git --version"),
    tool("run make test", "shell_run", command="make test"),
    tool("ls src", "shell_run", command="ls src"),
    # web
    tool(
        "search the web for python 3.13 release notes",
        "web_search",
        query="python 3.13 release notes",
    ),
    tool("google rust async traits", "web_search", query="rust async traits"),
    tool('look up "pydantic v2 migration" on the web', "web_search", query="pydantic v2 migration"),
    tool("get https://httpbin.org/json", "web_fetch", url="https://httpbin.org/json"),
    tool("what's the weather in Berlin", "web_search", query="weather in Berlin"),
    tool("fetch https://example.com", "web_fetch", url="https://example.com"),
    tool(
        "download https://example.com/data.json", "web_fetch", url="https://example.com/data.json"
    ),
    # conversation
    answer("what is the capital of France?"),
    answer("explain how a hash map works"),
    answer("why is the sky blue?"),
    answer("hello"),
    answer("thanks!"),
    answer("what do people eat in Paris"),
    answer("explain what is in the password file"),
    answer("what is a monad"),
    answer("tell me a joke"),
    answer("summarize the pros and cons of rust"),
    # several steps
    plan("grep TODO then list the files", ("file_grep", {"pattern": "TODO"}), ("file_list", {})),
    plan(
        "read README.md and remember its first line",
        ("file_read", {"path": "README.md"}),
        ("memory_add", {"text": "{{s1.first_line}}"}),
    ),
    plan(
        "find the TODOs in src and make a task list",
        ("file_grep", {"pattern": "TODO", "path": "src"}),
        ("todo_add_many", {"titles": "{{s1.items}}"}),
    ),
    plan(
        "find the TODOs in src then add them to my todo list",
        ("file_grep", {"pattern": "TODO", "path": "src"}),
        ("todo_add_many", {"titles": "{{s1.items}}"}),
    ),
    plan(
        "search for FIXME in src and save the results to fixme.txt",
        ("file_grep", {"pattern": "FIXME", "path": "src"}),
        ("file_write", {"path": "fixme.txt", "content": "{{s1.output}}"}),
    ),
    plan(
        "read CHANGELOG.md then search the web for the latest release",
        ("file_read", {"path": "CHANGELOG.md"}),
        ("web_search", {"query": "the latest release"}),
    ),
    plan(
        "read missing.txt and remember its first line",
        ("file_read", {"path": "missing.txt"}),
        ("memory_add", {"text": "{{s1.first_line}}"}),
    ),
    plan(
        "show the last 2 commits and remember them",
        ("git_log", {"max_count": 2}),
        ("memory_add", {"text": "{{s1.output}}"}),
    ),
]


def check(case: Case, decision: Any) -> list[str]:
    """What is wrong with ``decision`` for ``case`` (empty when right)."""
    wrong = []
    if decision.route.value != case.route:
        return [f"route {decision.route.value}, expected {case.route}"]
    if case.route == "tool":
        if decision.tool != case.tool:
            return [f"tool {decision.tool}, expected {case.tool}"]
        for key, value in case.args.items():
            got = (decision.args or {}).get(key)
            if got != value:
                wrong.append(f"{key}={got!r}, expected {value!r}")
        if decision.missing:
            wrong.append(f"missing {list(decision.missing)}")
    if case.route == "plan":
        steps = decision.plan.steps if decision.plan else []
        got = [s.tool for s in steps]
        want = [t for t, _ in case.steps]
        if got != want:
            return [f"steps {got}, expected {want}"]
        for step, (_, args) in zip(steps, case.steps, strict=True):
            for key, value in args.items():
                if step.args.get(key) != value:
                    wrong.append(f"{step.id}.{key}={step.args.get(key)!r}, expected {value!r}")
            if step.missing:
                wrong.append(f"{step.id} missing {step.missing}")
    return wrong


def accuracy(router: Any) -> tuple[int, int, dict[str, list[str]]]:
    """(right, total, failures) of the table with ``router``'s tools."""
    from magray.router import rules

    schemas = router.tool_schemas()
    failures = {}
    for case in CASES:
        problems = check(case, rules.decide(case.text, schemas))
        if problems:
            failures[case.text] = problems
    return len(CASES) - len(failures), len(CASES), failures


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    from magray.common.settings import Settings
    from magray.router import Router

    ws = tmp_path_factory.mktemp("ws")
    settings = Settings(tools={"workspace": [str(ws)]})
    with Router(settings, use_memory=False) as router:
        return router.tool_schemas()


def test_the_table_is_large_and_covers_every_area() -> None:
    assert len(CASES) >= 40
    tools = {c.tool for c in CASES if c.tool}
    for prefix in ("file_", "git_", "memory_", "todo_", "shell_", "web_"):
        assert sum(1 for t in tools if t.startswith(prefix)) >= 1, prefix
    assert sum(1 for c in CASES if c.route == "answer") >= 5
    assert sum(1 for c in CASES if c.route == "plan") >= 5


@pytest.mark.parametrize("case", CASES, ids=[c.text for c in CASES])
def test_rule_routing(case: Case, schemas: list[dict[str, Any]]) -> None:
    from magray.router import rules

    decision = rules.decide(case.text, schemas)
    assert check(case, decision) == []
    if case.route == "tool":
        assert decision.route is Route.TOOL


def test_decisions_name_the_router_rule_that_corrected_them(schemas) -> None:
    from magray.router import rules

    decision = rules.decide("list the files in src", schemas)
    assert any(s.startswith("router rule:") for s in decision.signals)
    # --explain shows the whole decision, the tool-aware rule included, in one trace
    assert "- tool rules [rules" in (decision.explain or "")
    assert "file_list {'path': 'src'}" in (decision.explain or "")
    planned = rules.decide("grep TODO then list the files", schemas)
    assert "- plan rules [rules, 0.0 ms]: 2 step(s)" in (planned.explain or "")


@pytest.mark.parametrize(
    ("files", "command"),
    [
        ({"Makefile": "build:\n\techo\ntest:\n\tpytest\n"}, "make test"),
        ({"Makefile": "build:\n\techo\n", "pyproject.toml": "[project]\n"}, "python -m pytest"),
        ({"package.json": "{}"}, "npm test"),
        ({"Cargo.toml": "[package]\n"}, "cargo test"),
        ({"go.mod": "module x\n"}, "go test ./..."),
        ({"tests/test_a.py": "def test_a(): pass\n"}, "python -m pytest"),
    ],
)
def test_run_the_tests_uses_the_projects_test_command(
    files: dict[str, str],
    command: str,
    schemas: list[dict[str, Any]],
    tmp_path: Any,
    monkeypatch: Any,
) -> None:
    from magray.router import rules

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    for request in ("run the tests", "run tests", "please run all the tests", "run the test suite"):
        decision = rules.decide(request, schemas)
        assert (decision.tool, decision.args.get("command")) == ("shell_run", command), request


def test_run_the_tests_asks_when_no_project_is_recognised(
    schemas: list[dict[str, Any]], tmp_path: Any, monkeypatch: Any
) -> None:
    from magray.router import rules

    monkeypatch.chdir(tmp_path)
    decision = rules.decide("run the tests", schemas)
    assert decision.tool == "shell_run"
    assert "command" not in decision.args  # never a command named "tests"
    assert "command" in decision.missing
