"""Git tools against real repositories made in temp dirs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from magray.tools import Policy, ToolContext, ToolRegistry

from .conftest import git


def call(registry: ToolRegistry, ctx: ToolContext, tool: str, /, **args: object):  # type: ignore[no-untyped-def]
    return registry.call(tool, args, ctx)


def test_status_clean_and_dirty(registry: ToolRegistry, ctx: ToolContext, repo: Path) -> None:
    clean = call(registry, ctx, "git_status")
    assert clean.ok, clean.content
    assert clean.data["clean"]
    assert clean.data["branch"].startswith("main")
    (repo / "README.md").write_text("changed\n")
    (repo / "new.txt").write_text("n\n")
    git(repo, "mv", "src/app.py", "src/main.py")
    dirty = call(registry, ctx, "git_status", repo="src")
    entries = {e["path"]: e for e in dirty.data["entries"]}
    assert entries["README.md"]["worktree"] == "M"
    assert entries["new.txt"]["index"] == "?"
    assert entries["src/main.py"]["index"] == "R"
    assert entries["src/main.py"]["from"] == "src/app.py"


def test_diff_unstaged_staged_and_paths(
    registry: ToolRegistry, ctx: ToolContext, repo: Path
) -> None:
    (repo / "README.md").write_text("hello\nworld\n")
    (repo / "src/app.py").write_text("print('bye')\n")
    unstaged = call(registry, ctx, "git_diff")
    assert "+world" in unstaged.content
    assert "+print('bye')" in unstaged.content
    only_readme = call(registry, ctx, "git_diff", paths=["README.md"])
    assert "app.py" not in only_readme.content
    assert call(registry, ctx, "git_diff", staged=True).data["empty"]
    git(repo, "add", "README.md")
    staged = call(registry, ctx, "git_diff", staged=True)
    assert "+world" in staged.content
    assert "app.py" not in staged.content
    stat = call(registry, ctx, "git_diff", ref="HEAD", stat=True)
    assert "2 files changed" in stat.content


def test_log_and_show(registry: ToolRegistry, ctx: ToolContext, repo: Path) -> None:
    (repo / "README.md").write_text("v2\n")
    git(repo, "commit", "-qam", "second: update readme")
    log = call(registry, ctx, "git_log", max_count=5)
    subjects = [c["subject"] for c in log.data["commits"]]
    assert subjects == ["second: update readme", "initial commit"]
    assert log.data["commits"][0]["author"] == "Test Author"
    only_src = call(registry, ctx, "git_log", paths=["src"])
    assert [c["subject"] for c in only_src.data["commits"]] == ["initial commit"]
    show = call(registry, ctx, "git_show")
    assert "second: update readme" in show.content
    assert "+v2" in show.content
    old = call(registry, ctx, "git_show", rev="HEAD~1", path="README.md")
    assert old.content == "hello"


def test_empty_repository_log(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path, git_env: None
) -> None:
    git(workspace, "init", "-q")
    assert call(registry, ctx, "git_log").content == "no commits yet"


def test_branch_create_switch_list(registry: ToolRegistry, ctx: ToolContext, repo: Path) -> None:
    created = call(registry, ctx, "git_branch", action="create", name="feature/x")
    assert created.ok, created.content
    switched = call(registry, ctx, "git_branch", action="switch", name="feature/x")
    assert switched.ok, switched.content
    listed = call(registry, ctx, "git_branch")
    current = [b["name"] for b in listed.data["branches"] if b["current"]]
    assert current == ["feature/x"]
    bad = call(registry, ctx, "git_branch", action="create", name="bad..name")
    assert bad.error["code"] == "tool.git"  # type: ignore[index]
    missing = call(registry, ctx, "git_branch", action="switch")
    assert not missing.ok


def test_switch_never_discards_local_changes(
    registry: ToolRegistry, ctx: ToolContext, repo: Path
) -> None:
    git(repo, "switch", "-q", "-c", "other")
    (repo / "README.md").write_text("other branch\n")
    git(repo, "commit", "-qam", "other")
    git(repo, "switch", "-q", "main")
    (repo / "README.md").write_text("uncommitted work\n")
    result = call(registry, ctx, "git_branch", action="switch", name="other")
    assert not result.ok
    assert (repo / "README.md").read_text() == "uncommitted work\n"


def test_commit_asks_unless_allowed(registry: ToolRegistry, ctx: ToolContext, repo: Path) -> None:
    (repo / "new.txt").write_text("new\n")
    assert call(registry, ctx, "git_add", paths=["new.txt"]).ok
    head = git(repo, "rev-parse", "HEAD")
    asked = call(registry, ctx, "git_commit", message="x")
    assert asked.error["code"] == "permission.unconfirmed"  # type: ignore[index]
    assert "tools.allow_commit" in asked.error["message"]  # type: ignore[index]
    assert git(repo, "rev-parse", "HEAD") == head


def test_add_and_commit(registry: ToolRegistry, ctx: ToolContext, repo: Path) -> None:
    ctx = ToolContext(policy=replace(ctx.policy, allow_commit=True))
    (repo / "new.txt").write_text("new\n")
    nothing = call(registry, ctx, "git_commit", message="empty")
    assert nothing.error["code"] == "tool.git.nothing_staged"  # type: ignore[index]
    added = call(registry, ctx, "git_add", paths=["new.txt"])
    assert added.data["staged"] == ["new.txt"]
    blank = call(registry, ctx, "git_commit", message="   ")
    assert blank.error["code"] == "validation.tool_args"  # type: ignore[index]
    message = "add new.txt\n\nwith a body; and `quotes' $(not run)"
    committed = call(registry, ctx, "git_commit", message=message)
    assert committed.ok, committed.content
    assert git(repo, "log", "-1", "--format=%B").strip() == message
    assert committed.data["sha"] == git(repo, "rev-parse", "HEAD").strip()


def test_not_a_repository(registry: ToolRegistry, ctx: ToolContext, workspace: Path) -> None:
    result = call(registry, ctx, "git_status")
    assert result.error["code"] == "tool.git.not_a_repo"  # type: ignore[index]
    assert "git init" in result.error["hint"]  # type: ignore[index]


def test_git_missing(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(workspace))
    result = call(registry, ctx, "git_status")
    assert result.error["code"] == "tool.git.missing"  # type: ignore[index]


def test_write_tools_need_the_repo_top_inside_write_roots(
    registry: ToolRegistry, repo: Path
) -> None:
    # Workspace is a subdirectory of the repository: reading works, committing does not.
    ctx = ToolContext(policy=Policy.for_workspace(repo / "src"))
    assert registry.call("git_status", {}, ctx).ok
    (repo / "src" / "x.py").write_text("x\n")
    refused = registry.call("git_add", {"paths": ["x.py"]}, ctx)
    assert refused.error["code"] == "permission.policy"  # type: ignore[index]
    assert "outside the writable roots" in refused.error["message"]  # type: ignore[index]
