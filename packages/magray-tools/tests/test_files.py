"""File tools on real files in a temp workspace."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from magray.tools import Policy, ToolContext, ToolRegistry


def call(registry: ToolRegistry, ctx: ToolContext, name: str, **args: object):  # type: ignore[no-untyped-def]
    return registry.call(name, args, ctx)


# ---------------------------------------------------------------------- read
def test_read_whole_file_and_lines(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    whole = call(registry, ctx, "file_read", path="a.txt")
    assert whole.ok
    assert whole.content.startswith("line 1\n")
    assert whole.data["encoding"] == "utf-8"
    part = call(registry, ctx, "file_read", path="a.txt", start_line=3, end_line=4)
    assert part.content == "line 3\nline 4\n"
    assert (part.data["start_line"], part.data["end_line"]) == (3, 4)
    tail = call(registry, ctx, "file_read", path=str(workspace / "a.txt"), start_line=10)
    assert tail.content == "line 10\n"
    bad = call(registry, ctx, "file_read", path="a.txt", start_line=5, end_line=2)
    assert not bad.ok


def test_read_caps_size(registry: ToolRegistry, ctx: ToolContext, workspace: Path) -> None:
    (workspace / "big.txt").write_text("é" * 10_000)
    result = call(registry, ctx, "file_read", path="big.txt", max_bytes=1001)
    assert result.truncated
    assert result.content.startswith("é" * 500)
    assert "cut at 1001 bytes" in result.content


def test_read_refuses_binary_and_non_regular(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    (workspace / "img.bin").write_bytes(b"\x89PNG\x00\x00\x01")
    binary = call(registry, ctx, "file_read", path="img.bin")
    assert binary.error["code"] == "tool.file.binary"  # type: ignore[index]
    os.mkfifo(workspace / "fifo")
    fifo = call(registry, ctx, "file_read", path="fifo")
    assert "not a regular file" in fifo.error["message"]  # type: ignore[index]
    missing = call(registry, ctx, "file_read", path="nope.txt")
    assert missing.error["code"] == "not_found"  # type: ignore[index]
    directory = call(registry, ctx, "file_read", path=".")
    assert "directory" in directory.error["message"]  # type: ignore[index]


def test_read_encoding_fallback(registry: ToolRegistry, ctx: ToolContext, workspace: Path) -> None:
    (workspace / "latin.txt").write_bytes("café\n".encode("cp1252"))
    (workspace / "u16.txt").write_bytes("hé\n".encode("utf-16"))
    (workspace / "bom.txt").write_bytes(b"\xef\xbb\xbfbom\n")
    latin = call(registry, ctx, "file_read", path="latin.txt")
    assert latin.content == "café\n"
    assert latin.data["encoding"] == "cp1252"
    assert call(registry, ctx, "file_read", path="u16.txt").content == "hé\n"
    assert call(registry, ctx, "file_read", path="bom.txt").content == "bom\n"


# ---------------------------------------------------------------------- write
def test_write_creates_parents_and_returns_diff(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    result = call(registry, ctx, "file_write", path="new/dir/f.txt", content="a\nb\n")
    assert result.ok, result.content
    assert (workspace / "new/dir/f.txt").read_text() == "a\nb\n"
    assert "+a" in result.data["diff"]
    assert result.content.startswith("created new/dir/f.txt")
    no_parents = call(
        registry, ctx, "file_write", path="other/f.txt", content="x", create_parents=False
    )
    assert no_parents.error["code"] == "not_found"  # type: ignore[index]
    assert not (workspace / "other").exists()


def test_write_refuses_overwrite_without_flag(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    target = workspace / "f.txt"
    target.write_text("old\n")
    target.chmod(0o640)
    refused = call(registry, ctx, "file_write", path="f.txt", content="new\n")
    assert refused.error["code"] == "conflict.exists"  # type: ignore[index]
    assert target.read_text() == "old\n"
    asked = call(registry, ctx, "file_write", path="f.txt", content="new\n", overwrite=True)
    assert asked.error["code"] == "permission.unconfirmed"  # type: ignore[index]
    assert "tools.allow_overwrite" in asked.error["message"]  # type: ignore[index]
    assert target.read_text() == "old\n"
    target.chmod(0o750)
    allowed = ToolContext(policy=replace(ctx.policy, allow_overwrite=True))
    done = call(registry, allowed, "file_write", path="f.txt", content="new\n", overwrite=True)
    assert done.ok
    assert target.read_text() == "new\n"
    assert "-old" in done.data["diff"]
    assert "+new" in done.data["diff"]
    assert target.stat().st_mode & 0o777 == 0o640  # mode kept, the executable bit dropped
    leftovers = [p.name for p in workspace.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_write_through_symlink_replaces_target_inside(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    real = workspace / "real.txt"
    real.write_text("x")
    (workspace / "alias").symlink_to(real)
    ctx = ToolContext(policy=replace(ctx.policy, allow_overwrite=True))
    result = call(registry, ctx, "file_write", path="alias", content="y", overwrite=True)
    assert result.ok
    assert real.read_text() == "y"
    assert (workspace / "alias").is_symlink()


# ---------------------------------------------------------------------- edit
def test_edit_unique_and_ambiguous(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    target = workspace / "code.py"
    target.write_text("a = 1\nb = 1\na = 1\n")
    ambiguous = call(registry, ctx, "file_edit", path="code.py", old_text="a = 1", new_text="a = 2")
    assert ambiguous.error["code"] == "conflict.ambiguous"  # type: ignore[index]
    assert "2 times" in ambiguous.error["message"]  # type: ignore[index]
    unique = call(registry, ctx, "file_edit", path="code.py", old_text="b = 1", new_text="b = 3")
    assert unique.ok
    assert target.read_text() == "a = 1\nb = 3\na = 1\n"
    assert "-b = 1" in unique.data["diff"]
    every = call(
        registry, ctx, "file_edit", path="code.py", old_text="a = 1", new_text="a = 0",
        replace_all=True,
    )  # fmt: skip
    assert every.data["replacements"] == 2
    missing = call(registry, ctx, "file_edit", path="code.py", old_text="zzz", new_text="y")
    assert missing.error["code"] == "not_found"  # type: ignore[index]
    empty = call(registry, ctx, "file_edit", path="code.py", old_text="", new_text="y")
    assert empty.error["code"] == "validation.tool_args"  # type: ignore[index]


def test_edit_keeps_non_utf8_files_readable(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    (workspace / "l.txt").write_bytes("café\n".encode("cp1252"))
    result = call(registry, ctx, "file_edit", path="l.txt", old_text="caf", new_text="CAF")
    assert result.ok
    assert (workspace / "l.txt").read_text("utf-8") == "CAFé\n"


# ---------------------------------------------------------------------- list / glob
@pytest.fixture
def tree(workspace: Path) -> Path:
    (workspace / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    for rel in ["src/a.py", "src/pkg/b.py", "src/pkg/c.txt", "build/out.py", "x.log", "keep.log",
                ".hidden/h.py", "docs/readme.md"]:  # fmt: skip
        path = workspace / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    (workspace / "src" / ".gitignore").write_text("c.txt\n")
    return workspace


def test_list_is_gitignore_aware(registry: ToolRegistry, ctx: ToolContext, tree: Path) -> None:
    result = call(registry, ctx, "file_list", path=".", depth=5)
    paths = {e["path"] for e in result.data["entries"]}
    assert {"src/a.py", "src/pkg/b.py", "keep.log", "docs/readme.md"} <= paths
    assert not paths & {"build", "build/out.py", "x.log", "src/pkg/c.txt", ".hidden/h.py"}
    assert "  src/" in result.content
    everything = call(
        registry, ctx, "file_list", depth=5, include_hidden=True, respect_gitignore=False
    )
    all_paths = {e["path"] for e in everything.data["entries"]}
    assert {"build/out.py", "x.log", ".hidden/h.py", "src/pkg/c.txt"} <= all_paths
    shallow = call(registry, ctx, "file_list", depth=1)
    assert "src/a.py" not in {e["path"] for e in shallow.data["entries"]}
    capped = call(registry, ctx, "file_list", depth=5, max_entries=2)
    assert capped.truncated


def test_list_does_not_follow_symlinked_dirs(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path, outside: Path
) -> None:
    (workspace / "out").symlink_to(outside)
    result = call(registry, ctx, "file_list", depth=5)
    assert [e for e in result.data["entries"] if e["path"].startswith("out/")] == []
    assert {"path": "out", "type": "symlink"} in result.data["entries"]


def test_glob(registry: ToolRegistry, ctx: ToolContext, tree: Path) -> None:
    deep = call(registry, ctx, "file_glob", pattern="**/*.py")
    assert deep.data["matches"] == ["src/a.py", "src/pkg/b.py"]
    top = call(registry, ctx, "file_glob", pattern="*.log")
    assert top.data["matches"] == ["keep.log"]
    alt = call(registry, ctx, "file_glob", pattern="**/*.{md,txt}", respect_gitignore=False)
    assert alt.data["matches"] == ["docs/readme.md", "src/pkg/c.txt"]
    none = call(registry, ctx, "file_glob", pattern="*.rs")
    assert none.ok
    assert "no files match" in none.content


# ---------------------------------------------------------------------- grep
def test_grep_with_context_and_filters(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    (workspace / "a.py").write_text("one\ntwo\nTarget here\nfour\nfive\n")
    (workspace / "b.txt").write_text("target\n")
    (workspace / "bin.dat").write_bytes(b"target\x00\x01")
    result = call(registry, ctx, "file_grep", pattern="target", ignore_case=True, context=1)
    assert result.data["count"] == 2
    assert "a.py-2-two" in result.content
    assert "a.py:3:Target here" in result.content
    assert "a.py-4-four" in result.content
    assert "b.txt:1:target" in result.content
    assert "bin.dat" not in result.content
    only_py = call(registry, ctx, "file_grep", pattern="target", ignore_case=True, glob="*.py")
    assert [m["path"] for m in only_py.data["matches"]] == ["a.py"]
    single = call(registry, ctx, "file_grep", pattern="^f", path="a.py")
    assert [m["line"] for m in single.data["matches"]] == [4, 5]
    capped = call(registry, ctx, "file_grep", pattern=".", max_matches=3)
    assert capped.truncated
    assert capped.data["count"] == 3


def test_grep_bad_regex_and_no_match(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("abc\n")
    bad = call(registry, ctx, "file_grep", pattern="(unclosed")
    assert bad.error["code"] == "validation"  # type: ignore[index]
    none = call(registry, ctx, "file_grep", pattern="zzz")
    assert none.ok
    assert "no matches" in none.content


def test_grep_catastrophic_regex_hits_the_deadline(registry: ToolRegistry, workspace: Path) -> None:
    (workspace / "a.txt").write_text("x" * 5000 + "\n")
    ctx = ToolContext(policy=Policy.for_workspace(workspace, timeout=0.3))
    result = registry.call("file_grep", {"pattern": "(x+x+)+y"}, ctx)
    assert not result.ok
    assert result.error["code"] in {"tool.file.regex_timeout", "timeout.tool"}  # type: ignore[index]
