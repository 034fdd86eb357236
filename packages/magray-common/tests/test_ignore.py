"""magray.common.ignore against git itself: the same tree, the same verdicts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from magray.common.ignore import IgnoreRules, glob_regex, repo_root

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

ROOT_IGNORE = """\
# comment
*.log
!keep.log
build/
/top-only.txt
docs/**/draft-*.md
\\#literal-hash
trailing-space.txt{SPACES}
[Tt]emp*
""".replace("{SPACES}", "   ")

SUB_IGNORE = """\
*.tmp
!important.log
"""

FILES = [
    "a.log",
    "keep.log",
    "src/b.log",
    "src/important.log",
    "src/x.tmp",
    "x.tmp",
    "build/out.bin",
    "src/build/out.bin",
    "top-only.txt",
    "src/top-only.txt",
    "docs/draft-1.md",
    "docs/guide/draft-2.md",
    "docs/guide/final.md",
    "#literal-hash",
    "trailing-space.txt",
    "Temp1",
    "temp2/file.txt",
    "plain.py",
]


def _tree(root: Path) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text(ROOT_IGNORE)
    (root / "src").mkdir()
    (root / "src" / ".gitignore").write_text(SUB_IGNORE)
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("plain.py\n")
    for rel in FILES:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def _git_ignored(root: Path, rel: str) -> bool:
    proc = subprocess.run(
        ["git", "-C", str(root), "check-ignore", "-q", "--no-index", rel], check=False
    )
    return proc.returncode == 0


def _walk_verdict(root: Path, rel: str) -> bool:
    """Walk from the root as a walker does: ignored if the path or a parent is."""
    rules = IgnoreRules.above(root).below(root)
    current = root
    parts = rel.split("/")
    for i, part in enumerate(parts):
        path = current / part
        is_dir = i < len(parts) - 1
        if rules.ignored(path, is_dir=is_dir):
            return True
        if is_dir:
            rules = rules.below(path)
        current = path
    return False


def test_verdicts_match_git_check_ignore(tmp_path: Path) -> None:
    _tree(tmp_path)
    ours = {rel: _walk_verdict(tmp_path, rel) for rel in FILES}
    git = {rel: _git_ignored(tmp_path, rel) for rel in FILES}
    assert ours == git
    assert sum(git.values()) >= 10  # the tree exercises ignoring, not only keeping


def test_rules_above_a_subdirectory_come_from_the_repository(tmp_path: Path) -> None:
    _tree(tmp_path)
    rules = IgnoreRules.above(tmp_path / "src").below(tmp_path / "src")
    assert rules.ignored(tmp_path / "src" / "b.log", is_dir=False)
    assert not rules.ignored(tmp_path / "src" / "important.log", is_dir=False)
    # ``allowed`` stops the climb: nothing above src is read
    fenced = IgnoreRules.above(tmp_path / "src", allowed=lambda p: p != tmp_path)
    assert not fenced.below(tmp_path / "src").ignored(tmp_path / "src" / "b.log", is_dir=False)


def test_outside_a_repository_parents_do_not_apply(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.log\n")
    (tmp_path / "sub").mkdir()
    assert not IgnoreRules.above(tmp_path / "sub")
    assert IgnoreRules().below(tmp_path).ignored(tmp_path / "sub" / "a.log", is_dir=False)
    assert repo_root(tmp_path / "sub") is None


def test_unreadable_or_odd_ignore_files_give_no_rules(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").mkdir()  # a directory, not a file
    (tmp_path / ".git").write_text("gitdir: elsewhere\n")  # a worktree's .git file
    assert not IgnoreRules().below(tmp_path)


@pytest.mark.parametrize(
    ("pattern", "anywhere", "path", "matches"),
    [
        ("*.md", True, "docs/a.md", True),
        ("*.md", False, "docs/a.md", False),
        ("*.md", False, "a.md", True),
        ("docs/**/*.md", True, "docs/a.md", True),
        ("docs/**/*.md", True, "docs/x/y/a.md", True),
        ("docs/**/*.md", True, "src/docs/a.md", False),
        ("/top.txt", True, "top.txt", True),
        ("?.py", False, "a.py", True),
        ("?.py", False, "a/b.py", False),
        ("[!a]*.py", False, "b.py", True),
        ("[!a]*.py", False, "a.py", False),
        ("[a-c].txt", False, "b.txt", True),
        ("*.{py,md}", False, "x.md", True),
        ("*.{py,md}", False, "x.txt", False),
        ("\\*.txt", False, "*.txt", True),
        ("\\*.txt", False, "a.txt", False),
        ("src/**", False, "src/a/b", True),
        ("a+b(c).txt", False, "a+b(c).txt", True),
    ],
)
def test_glob_regex(pattern: str, anywhere: bool, path: str, matches: bool) -> None:
    assert bool(glob_regex(pattern, anywhere=anywhere).match(path)) is matches
