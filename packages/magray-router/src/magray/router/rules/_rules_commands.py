"""Rules for git and the shell: status, diff, log; running tests and commands."""

from __future__ import annotations

import re
from pathlib import Path

from magray.router.rules._match import NOT_PATHS, Refined, count_word

__all__ = [
    "fill_free_text",
    "git_diff",
    "git_log",
    "git_status",
    "run_tests",
    "run_with",
    "test_command",
]

_LAST_COMMITS = re.compile(
    r"\b(?:last|latest|recent|past|previous)\s+(?P<n>\d+|[a-z]+)\s+commits?\b"
    r"|\b(?P<m>\d+|[a-z]+)\s+(?:most\s+)?(?:recent|latest|last|newest)\s+commits?\b",
    re.IGNORECASE,
)
_GIT_LOG = re.compile(r"\bgit\s+log\b|\bcommit\s+history\b|\bhistory\s+of\s+commits\b", re.I)


_GIT_STATUS = re.compile(
    r"\buncommitted\b|\bworking\s+(?:tree|copy)\b|\bmodified\s+files\b|\bunstaged\b"
    r"|\b(?:is|are)\s+(?:the\s+)?(?:repo|repository|tree)\s+clean\b",
    re.IGNORECASE,
)


def git_status(clause: str, tool: str | None) -> Refined | None:
    if _GIT_STATUS.search(clause):
        return Refined("git_status", {}, "uncommitted changes → status", keep=False)
    return None


_DIFF_REF = re.compile(
    r"\bdiff(?:erences?)?\s+(?:against|with|to|from|vs\.?|versus)\s+(?P<ref>[\w.\-/~^]+)", re.I
)


def git_diff(clause: str, tool: str | None) -> Refined | None:
    m = _DIFF_REF.search(clause)
    if m is None or m.group("ref").lower() in NOT_PATHS:
        return None
    return Refined("git_diff", {"ref": m.group("ref")}, "diff against a revision")


def git_log(clause: str, tool: str | None) -> Refined | None:
    m = _LAST_COMMITS.search(clause)
    count = count_word(m.group("n") or m.group("m")) if m else None
    if count:
        return Refined("git_log", {"max_count": count}, "last N commits")
    if _GIT_LOG.search(clause):
        return Refined("git_log", {}, "git log")
    return None


_RUN_WITH = re.compile(
    r"^\s*(?:run|execute)\s+(?:the\s+)?(?:tests?|test\s+suite|linter|build)\s+(?:with|using)\s+"
    r"(?P<cmd>[\w.\-]+)\s*$",
    re.IGNORECASE,
)


_RUN_COMMAND = re.compile(
    r"^\s*(?:please\s+)?(?:run|execute)\s+(?:the\s+command\s+)?`?(?P<cmd>(?!(?:the|a|an|my|all|"
    r"tests?|it|this|that)\b)[\w.\-/]+(?:\s+[^\s`]+)*)`?\s*$",
    re.IGNORECASE,
)


_RUN_TESTS = re.compile(
    r"^\s*(?:please\s+)?(?:run|execute|start)\s+(?:the\s+|all\s+(?:the\s+)?|my\s+|our\s+)?"
    r"(?:unit\s+)?(?:tests?|test\s+suite|testsuite|specs)\s*[.!]?\s*$",
    re.IGNORECASE,
)


def test_command(root: Path) -> str | None:
    """The command that runs the tests of the project at ``root``, from its files."""
    if (root / "Makefile").is_file():
        try:
            if re.search(r"^test\s*:", (root / "Makefile").read_text(errors="replace"), re.M):
                return "make test"
        except OSError:
            pass
    if (root / "package.json").is_file():
        return "npm test"
    if (root / "Cargo.toml").is_file():
        return "cargo test"
    if (root / "go.mod").is_file():
        return "go test ./..."
    python = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py")
    if any((root / name).is_file() for name in python) or any(root.glob("tests/test_*.py")):
        return "python -m pytest"
    return None


def run_tests(clause: str, tool: str | None) -> Refined | None:
    """ "run the tests": the project's test command, found from its files (a question when
    none is recognised, never a command named ``tests``)."""
    if not _RUN_TESTS.search(clause):
        return None
    command = test_command(Path.cwd())
    args = {"command": command} if command else {}
    return Refined("shell_run", args, "run the project's tests", keep=False)


def run_with(clause: str, tool: str | None) -> Refined | None:
    m = _RUN_WITH.search(clause)
    if m:
        return Refined("shell_run", {"command": m.group("cmd")}, "run with")
    m = _RUN_COMMAND.search(clause)
    if m and tool != "shell_run":
        return Refined("shell_run", {"command": m.group("cmd")}, "run a command", keep=False)
    return None


_BARE_COMMAND = re.compile(
    r"^\s*(?P<cmd>(?:ls|pwd|cat|head|tail|wc|du|df|echo|make|pytest|npm|cargo|uv|pip|python3?|"
    r"docker|go|node|tree|which|env|date|uname)\b.*)$",
    re.IGNORECASE,
)
_QUESTION_LEAD = re.compile(
    r"^\s*(?:please\s+)?(?:what(?:'s|\s+is|\s+are)?|who(?:'s|\s+is)?|when\s+is|where\s+is|"
    r"tell\s+me|find\s+out|look\s+up|search(?:\s+the\s+web)?\s+for)\s+(?:the\s+)?",
    re.IGNORECASE,
)


def fill_free_text(clause: str, tool: str | None) -> Refined | None:
    """A command typed as it is ("ls src"); a web question with no query found."""
    if tool == "shell_run":
        m = _BARE_COMMAND.search(clause)
        if m:
            return Refined(
                "shell_run", {"command": m.group("cmd").strip()}, "bare command", fill=True
            )
    if tool == "web_search":
        query = _QUESTION_LEAD.sub("", clause).strip(" ?.!")
        if query:
            return Refined("web_search", {"query": query}, "web question", fill=True)
    return None
