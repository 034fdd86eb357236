"""Rules that know magray's concrete tools, applied after the general rule agents.

The agents (:mod:`._intent`, :mod:`._select`, :mod:`._params`) are general: intent
keywords, a selector scoring tool descriptions, an argument extractor. These rules
know the router's concrete tools and settle what the general agents get wrong on
common requests, measured by the regression table in ``tests/test_rules.py``:

- :func:`refine` re-reads one clause: "list the files in src" keeps ``src``,
  "search memory for orca" keeps ``orca``, "find the TODOs in src" is a grep,
  "show the last 3 commits" asks git for 3;
- :func:`clauses` splits a request into steps at "then"/"and <verb>"
  (:func:`split_steps`, plus verbs such as "make" and "turn"), but leaves requests
  whose tail is content ("remember that we read and write files") whole;
- :func:`chain` makes a later step use an earlier step's output ("... and make a
  task list" → ``todo_add_many(titles="{{s1.items}}")``; "... and remember its first
  line" → ``memory_add(text="{{s1.first_line}}")``).

Every rule names a tool; it only applies when that tool is enabled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magray.router.rules._planner import split_steps
from magray.router.rules._text import NUMBER_WORDS

__all__ = ["Refined", "chain", "clauses", "path_in", "refine", "required"]

# ------------------------------------------------------------------ pieces

_PATHISH = r"[\w.\-~/]+"
_NOT_PATHS = {
    "the",
    "this",
    "that",
    "my",
    "our",
    "your",
    "a",
    "it",
    "code",
    "codebase",
    "repo",
    "repository",
    "project",
    "workspace",
    "here",
    "current",
    "folder",
    "directory",
    "dir",
    "memory",
    "memories",
    "web",
    "internet",
    "files",
    "file",
    "all",
    "git",
    "source",
}
_IN_PATH = re.compile(
    r"\b(?:in|under|inside|within|of|from)\s+(?:the\s+|my\s+)?(?P<path>"
    + _PATHISH
    + r")(?:\s+(?:folder|directory|dir|tree))?(?=$|[\s,.;:!?])(?!\s+files?\b)",
    re.IGNORECASE,
)
_FILE = r"(?P<file>[\w.\-~/]*\w\.[A-Za-z]\w{0,7})"
_MARKER = re.compile(r"\b(TODO|FIXME|XXX|HACK)(?:s|'s)?\b")
_LANGUAGES = {
    "python": "py",
    "markdown": "md",
    "rust": "rs",
    "javascript": "js",
    "typescript": "ts",
    "go": "go",
    "java": "java",
    "json": "json",
    "yaml": "{yaml,yml}",
    "toml": "toml",
    "text": "txt",
    "shell": "sh",
    "c": "c",
    "html": "html",
    "css": "css",
}
_PRONOUN = (
    r"(?:it|them|that|this|these|those|the results?|the output|the matches|what you found|"
    r"everything)"
)


def path_in(clause: str) -> str | None:
    """The directory or file a clause points into: "... in src" → ``src``."""
    for m in _IN_PATH.finditer(clause):
        path = m.group("path").rstrip(".")
        if path.lower() not in _NOT_PATHS and not path.isdigit():
            return path
    return None


def _count(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word.lower())


def _valid_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error:
        return re.escape(pattern)
    return pattern


# ------------------------------------------------------------------ one clause


@dataclass(frozen=True)
class Refined:
    """A rule's verdict on one clause: the tool and the arguments it found."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    rule: str = ""
    keep: bool = True  # keep the agents' other arguments when they picked the same tool
    fill: bool = False  # only fill arguments the agents left out (same tool only)


Rule = Callable[[str, str | None], Refined | None]


_GREP_COMMAND = re.compile(
    r"^\s*grep\s+(?P<flags>(?:-[a-zA-Z]+\s+)*)(?:[\"'](?P<q>[^\"']+)[\"']|(?P<w>\S+))"
    r"(?:\s+(?:in\s+)?(?P<path>" + _PATHISH + r"))?\s*$",
    re.IGNORECASE,
)


def _grep_command(clause: str, tool: str | None) -> Refined | None:
    """``grep -i error in logs/app.log``: a grep written like the command."""
    m = _GREP_COMMAND.search(clause)
    if m is None or (m.group("w") or "").lower() in ("for", "the"):
        return None
    args: dict[str, Any] = {"pattern": _valid_regex(m.group("q") or m.group("w"))}
    if "i" in (m.group("flags") or ""):
        args["ignore_case"] = True
    if m.group("path") and m.group("path").lower() not in _NOT_PATHS:
        args["path"] = m.group("path")
    return Refined("file_grep", args, "grep command", keep=False)


def _marker_grep(clause: str, tool: str | None) -> Refined | None:
    m = _MARKER.search(clause)
    if m is None:
        return None
    lowered = clause.lower()
    if re.match(r"\s*(?:add|create|remind|put|new)\b", lowered) or re.search(
        r"\bmy\s+(?:todo|task)", lowered
    ):
        return None
    args: dict[str, Any] = {"pattern": m.group(1)}
    path = path_in(clause)
    if path:
        args["path"] = path
    return Refined("file_grep", args, "code marker → grep")


_SEARCH_QUOTED = re.compile(
    r"\b(?:search|grep|look|find)\b[^\"'`“]*?[\"'`“](?P<q>[^\"'`”]+)[\"'`”]", re.IGNORECASE
)
_IN_CODE = re.compile(r"\b(?:code|codebase|repo|repository|project|sources?|files)\b", re.I)


def _quoted_grep(clause: str, tool: str | None) -> Refined | None:
    m = _SEARCH_QUOTED.search(clause)
    if m is None or re.search(r"\b(?:memory|memories|web|internet|online)\b", clause, re.I):
        return None
    path = path_in(clause)
    searched = re.search(r"\b(?:search|grep)\s+(?P<p>[\w.\-/]+)\s+for\b", clause, re.I)
    if path is None and searched and searched.group("p").lower() not in _NOT_PATHS:
        path = searched.group("p")
    if path is None and not _IN_CODE.search(clause):
        return None
    args: dict[str, Any] = {"pattern": _valid_regex(m.group("q"))}
    if path:
        args["path"] = path
    return Refined("file_grep", args, "grep for quoted text", keep=False)


_MEMORY_SEARCH = [
    re.compile(
        r"\b(?:search|look\s+(?:up|through|in)|query|check|grep)\s+(?:in\s+)?(?:my\s+|the\s+|your\s+)?"
        r"memor(?:y|ies)\s+(?:for|about|on)\s+(?P<q>.+)",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:look\s+up|search\s+for|find|recall)\s+(?P<q>.+?)\s+in\s+(?:my\s+|the\s+|your\s+)?"
        r"memor(?:y|ies)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\bwhat\s+do\s+(?:you|we|i)\s+know\s+about\s+(?P<q>.+)", re.IGNORECASE),
    re.compile(
        r"^\s*(?:search\s+)?(?:my\s+|the\s+|your\s+)?memor(?:y|ies)\s*:\s*(?P<q>.+)", re.IGNORECASE
    ),
    re.compile(
        r"\b(?:anything|something|what(?:'s|\s+is)?)\s+(?:is\s+)?in\s+(?:my\s+|your\s+|the\s+)?"
        r"memory\s+(?:about|on|for|regarding)\s+(?P<q>.+)",
        re.IGNORECASE,
    ),
]


def _memory_search(clause: str, tool: str | None) -> Refined | None:
    for pattern in _MEMORY_SEARCH:
        m = pattern.search(clause)
        if m:
            query = m.group("q").strip(" ?.!\"'")
            if query:
                return Refined("memory_search", {"query": query}, "memory search", keep=False)
    return None


_MEMORY_ADD = re.compile(
    r"^\s*(?:please\s+)?(?:save|store|put|add|write|keep)\s+(?:this|that|it)?\s*(?:to|in|into)\s+"
    r"(?:my\s+|the\s+|your\s+)?memory\s*[:,\-]?\s*(?P<text>.+)",
    re.IGNORECASE,
)


_NOTE_DOWN = re.compile(
    r"^\s*(?:please\s+)?(?:jot\s+down|write\s+down|keep\s+in\s+mind|make\s+a\s+note)\s*"
    r"(?:that\s+|:\s*)?(?P<text>.+)",
    re.IGNORECASE,
)


def _memory_add(clause: str, tool: str | None) -> Refined | None:
    m = _MEMORY_ADD.search(clause) or _NOTE_DOWN.search(clause)
    if m is None:
        return None
    return Refined("memory_add", {"text": m.group("text").strip()}, "save to memory", keep=False)


_TODO_ADD = re.compile(
    r"^\s*(?:(?:add|create|new)\s+(?:a\s+|an\s+)?)?(?:todo|task|to-do)(?:\s+item)?\s*[:\-]\s*"
    r"(?P<t>.+)",
    re.IGNORECASE,
)
_TODO_STATUS = re.compile(
    r"\b(?P<s>completed|finished|done|failed|all)\s+(?:my\s+)?(?:tasks|todos)\b", re.IGNORECASE
)


_DONE = r"(?:as\s+)?(?:done|complete[d]?|finished|closed)"
_TODO_DONE_ID = re.compile(
    r"^\s*(?:please\s+)?(?:(?:mark|set|tick(?:\s+off)?|check\s+off)\s+(?:the\s+)?"
    r"(?:task|todo|to-do)?\s*#?(?P<a>\d+)(?:\s+" + _DONE + r")?"
    r"|(?:complete|finish|close)\s+(?:the\s+)?(?:task|todo|to-do)\s*#?(?P<b>\d+)"
    r"|(?:task|todo|to-do)\s*#?(?P<c>\d+)\s+is\s+" + _DONE + r")\s*[.!]?\s*$",
    re.IGNORECASE,
)
_TODO_DONE_TITLE = re.compile(
    r"^\s*(?:please\s+)?mark\s+(?:the\s+)?(?:task|todo)?\s*[\"'“]?(?P<t>.+?)[\"'”]?\s+"
    + _DONE
    + r"\s*[.!]?\s*$",
    re.IGNORECASE,
)


def _todo_done(clause: str, tool: str | None) -> Refined | None:
    """ "mark task 3 done", "complete task #3", "task 3 is finished", "mark 'write docs' done"."""
    m = _TODO_DONE_ID.search(clause)
    if m is not None:
        task = m.group("a") or m.group("b") or m.group("c")
        return Refined("todo_done", {"task": task}, "task done", keep=False)
    m = _TODO_DONE_TITLE.search(clause)
    if m is not None:
        return Refined("todo_done", {"task": m.group("t").strip()}, "task done", keep=False)
    return None


def _todo_add(clause: str, tool: str | None) -> Refined | None:
    m = _TODO_ADD.search(clause)
    if m is not None:
        return Refined("todo_add", {"title": m.group("t").strip()}, "add todo", keep=False)
    m = _TODO_STATUS.search(clause)
    if m is not None and re.search(r"\b(?:show|list|what|which|see)\b", clause, re.I):
        word = m.group("s").lower()
        status = {"completed": "done", "finished": "done"}.get(word, word)
        return Refined("todo_list", {"status": status}, "tasks by status", keep=False)
    return None


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


def _git_status(clause: str, tool: str | None) -> Refined | None:
    if _GIT_STATUS.search(clause):
        return Refined("git_status", {}, "uncommitted changes → status", keep=False)
    return None


_DIFF_REF = re.compile(
    r"\bdiff(?:erences?)?\s+(?:against|with|to|from|vs\.?|versus)\s+(?P<ref>[\w.\-/~^]+)", re.I
)


def _git_diff(clause: str, tool: str | None) -> Refined | None:
    m = _DIFF_REF.search(clause)
    if m is None or m.group("ref").lower() in _NOT_PATHS:
        return None
    return Refined("git_diff", {"ref": m.group("ref")}, "diff against a revision")


def _git_log(clause: str, tool: str | None) -> Refined | None:
    m = _LAST_COMMITS.search(clause)
    count = _count(m.group("n") or m.group("m")) if m else None
    if count:
        return Refined("git_log", {"max_count": count}, "last N commits")
    if _GIT_LOG.search(clause):
        return Refined("git_log", {}, "git log")
    return None


_OPEN_FILE = re.compile(
    r"^\s*(?:please\s+)?(?:open|view|cat|print|display|show)\s+(?:me\s+)?(?:the\s+)?(?:file\s+)?"
    + _FILE
    + r"\s*$",
    re.IGNORECASE,
)


_INSIDE_FILE = re.compile(
    r"\b(?:what(?:'s|\s+is)\s+(?:inside|in)|contents?\s+of)\s+(?:the\s+)?(?:file\s+)?"
    + _FILE
    + r"|\bwhat\s+does\s+(?:the\s+)?(?:file\s+)?"
    + _FILE.replace("file>", "file2>")
    + r"\s+(?:contain|say|hold)\b",
    re.IGNORECASE,
)


def _open_file(clause: str, tool: str | None) -> Refined | None:
    m = _OPEN_FILE.search(clause) or _INSIDE_FILE.search(clause)
    if m is None:
        return None
    return Refined("file_read", {"path": m.group("file") or m.group("file2")}, "open file")


_LANG_FILES = re.compile(
    r"\b(?:find|list|show|which|what|all|get)\b.*?\b(?P<lang>"
    + "|".join(_LANGUAGES)
    + r")\s+files?\b",
    re.IGNORECASE,
)
_GLOB = re.compile(r"(?:^|\s)(?P<g>[\w.\-/]*\*[\w.*?\-/{},]*)")


def _glob(clause: str, tool: str | None) -> Refined | None:
    m = _GLOB.search(clause)
    if m and re.search(r"\b(?:find|list|show|files?|matching|named)\b", clause, re.I):
        pattern = m.group("g")
        if "/" not in pattern:
            pattern = f"**/{pattern}"
    else:
        lang = _LANG_FILES.search(clause)
        if lang is None:
            return None
        pattern = f"**/*.{_LANGUAGES[lang.group('lang').lower()]}"
    args: dict[str, Any] = {"pattern": pattern}
    path = path_in(clause)
    if path:
        args["path"] = path
    return Refined("file_glob", args, "glob", keep=False)


_LIST_DIR = re.compile(
    r"\b(?:list|show|display|ls|tree)\b.*\b(?:files?|contents?|director(?:y|ies)|folders?|tree)\b"
    r"|\b(?:what|which)\s+files\b"
    r"|\bwhat(?:'s|\s+is)\s+in\s+(?:the\s+)?[\w.\-/]+\s+(?:folder|directory|dir)\b",
    re.IGNORECASE,
)


def _list_dir(clause: str, tool: str | None) -> Refined | None:
    if re.search(
        r"\btree\s+of\s+(?:the\s+|this\s+)?(?:repo|repository|project|workspace)\b", clause, re.I
    ):
        return Refined("file_list", {}, "tree of the workspace", keep=False)
    if tool != "file_list" and not _LIST_DIR.search(clause):
        return None
    if re.search(r"\b(?:tasks?|todos?|commits?|memor(?:y|ies))\b", clause, re.I):
        return None
    path = path_in(clause)
    if path is None or re.search(r"\.[A-Za-z]\w{0,7}$", path):  # a file: not a listing
        return None
    return Refined("file_list", {"path": path}, "list a directory")


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


def _run_tests(clause: str, tool: str | None) -> Refined | None:
    """ "run the tests": the project's test command, found from its files (a question when
    none is recognised, never a command named ``tests``)."""
    if not _RUN_TESTS.search(clause):
        return None
    command = test_command(Path.cwd())
    args = {"command": command} if command else {}
    return Refined("shell_run", args, "run the project's tests", keep=False)


def _run_with(clause: str, tool: str | None) -> Refined | None:
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


def _fill_free_text(clause: str, tool: str | None) -> Refined | None:
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


#: In order: the first rule that matches decides.
RULES: tuple[Rule, ...] = (
    _memory_add,
    _memory_search,
    _todo_done,
    _todo_add,
    _grep_command,
    _quoted_grep,
    _marker_grep,
    _git_status,
    _git_diff,
    _git_log,
    _open_file,
    _glob,
    _list_dir,
    _run_tests,
    _run_with,
    _fill_free_text,
)


def refine(
    clause: str, tool: str | None, args: Mapping[str, Any], enabled: set[str]
) -> tuple[str | None, dict[str, Any], str | None]:
    """Apply the first matching rule to the agents' ``(tool, args)`` for ``clause``.

    Returns ``(tool, args, rule)``; ``rule`` is None when no rule applied.
    """
    for rule in RULES:
        found = rule(clause, tool)
        if found is None or found.tool not in enabled:
            continue
        if found.fill and found.tool == tool:
            missing = {k: v for k, v in found.args.items() if k not in args}
            if not missing:
                continue
            return tool, {**args, **missing}, found.rule
        merged = dict(args) if (found.keep and found.tool == tool) else {}
        merged.update(found.args)
        return found.tool, merged, found.rule
    return tool, dict(args), None


# ------------------------------------------------------------------ several clauses

_EXTRA_AND_VERB = re.compile(
    r"\s+and\s+(?=(?:make|turn|put|note|store|count|tell|create|then)\b)", re.IGNORECASE
)
_CONTENT_TOOLS = {"memory_add", "todo_add", "git_commit", "shell_run", "file_write", "file_edit"}
_CONTENT_START = re.compile(
    r"^\s*(?:please\s+)?(?:remember|note|remind|add|save|store|commit|run|execute|write|jot|keep|"
    r"put|create|make\s+a\s+note|don't\s+forget|edit|replace)\b",
    re.IGNORECASE,
)


def clauses(text: str, single_tool: str | None) -> list[str]:
    """The steps of a request; one clause when it is a single action.

    Args:
        text: The request.
        single_tool: The tool the agents chose for the whole request: when it takes
            free text (memory_add, todo_add, shell_run, ...) and the request starts with
            its verb, "and <verb>" inside that text is content, not a second step.
    """
    if (
        single_tool in _CONTENT_TOOLS
        and _CONTENT_START.match(text)
        and not re.search(r"\b(?:then|after that|afterwards|finally)\b|;|\n", text, re.IGNORECASE)
    ):
        return [text.strip()]
    return split_steps(_EXTRA_AND_VERB.sub(" then ", text))


_TASK_LIST = re.compile(r"\b(?:task\s*list|to-?do\s*list|tasks?|todos?)\b", re.IGNORECASE)
_MAKE_TASKS = re.compile(
    r"\b(?:make|create|turn|add|put|build|write)\b.*\b(?:task\s*list|to-?do\s*list|tasks?|todos?)\b",
    re.IGNORECASE,
)
_FIRST_LINE = re.compile(r"\b(?:its|the|their)\s+first\s+line\b", re.IGNORECASE)
_SAVE_TO_FILE = re.compile(
    r"\b(?:save|write|put|store|dump)\s+" + _PRONOUN + r"\s+(?:to|into|in|as)\s+" + _FILE,
    re.IGNORECASE,
)
_REMEMBER_IT = re.compile(
    r"\b(?:remember|memori[sz]e|note|store|save)\s+" + _PRONOUN + r"\b", re.IGNORECASE
)


def chain(
    clause: str, tool: str | None, args: Mapping[str, Any], previous: str, enabled: set[str]
) -> tuple[str | None, dict[str, Any], str | None]:
    """Make a step use the output of the step before it where the clause says so.

    Returns ``(tool, args, rule)``; ``rule`` is None when the step stays as it was.
    """
    if (
        "todo_add_many" in enabled
        and _MAKE_TASKS.search(clause)
        and not re.search(r"\b(?:list|show)\s+(?:my\s+)?(?:open\s+)?tasks\b", clause, re.I)
    ):
        ref = "{{" + previous + ".items}}"
        return "todo_add_many", {"titles": ref}, "tasks from the previous step"
    m = _SAVE_TO_FILE.search(clause)
    if m and "file_write" in enabled:
        ref = "{{" + previous + ".output}}"
        return "file_write", {"path": m.group("file"), "content": ref}, "save the previous output"
    if "memory_add" in enabled and (tool == "memory_add" or _REMEMBER_IT.search(clause)):
        if _FIRST_LINE.search(clause):
            return "memory_add", {"text": "{{" + previous + ".first_line}}"}, "remember first line"
        text = str(args.get("text") or "")
        if tool != "memory_add" or not text or re.fullmatch(_PRONOUN, text, re.IGNORECASE):
            return "memory_add", {"text": "{{" + previous + ".output}}"}, "remember the output"
    return tool, dict(args), None


def required(tools: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Tool name → its required parameters."""
    out = {}
    for schema in tools:
        function = schema.get("function", schema)
        params = function.get("parameters") or {}
        out[str(function["name"])] = list(params.get("required") or [])
    return out
