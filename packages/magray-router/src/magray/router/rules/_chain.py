"""Rules over several clauses: where a request splits into steps, and how a step uses
the output of the step before it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from magray.router.rules._match import FILE, PRONOUN
from magray.router.rules._planner import split_steps

__all__ = ["chain", "clauses", "required"]

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
    r"\b(?:save|write|put|store|dump)\s+" + PRONOUN + r"\s+(?:to|into|in|as)\s+" + FILE,
    re.IGNORECASE,
)
_REMEMBER_IT = re.compile(
    r"\b(?:remember|memori[sz]e|note|store|save)\s+" + PRONOUN + r"\b", re.IGNORECASE
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
        if tool != "memory_add" or not text or re.fullmatch(PRONOUN, text, re.IGNORECASE):
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
