"""Rules for the memory and todo tools: search and save memories, add, list and close tasks."""

from __future__ import annotations

import re

from magray.router.rules._match import Refined

__all__ = ["memory_add", "memory_search", "todo_add", "todo_done"]

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


def memory_search(clause: str, tool: str | None) -> Refined | None:
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


def memory_add(clause: str, tool: str | None) -> Refined | None:
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


def todo_done(clause: str, tool: str | None) -> Refined | None:
    """ "mark task 3 done", "complete task #3", "task 3 is finished", "mark 'write docs' done"."""
    m = _TODO_DONE_ID.search(clause)
    if m is not None:
        task = m.group("a") or m.group("b") or m.group("c")
        return Refined("todo_done", {"task": task}, "task done", keep=False)
    m = _TODO_DONE_TITLE.search(clause)
    if m is not None:
        return Refined("todo_done", {"task": m.group("t").strip()}, "task done", keep=False)
    return None


def todo_add(clause: str, tool: str | None) -> Refined | None:
    m = _TODO_ADD.search(clause)
    if m is not None:
        return Refined("todo_add", {"title": m.group("t").strip()}, "add todo", keep=False)
    m = _TODO_STATUS.search(clause)
    if m is not None and re.search(r"\b(?:show|list|what|which|see)\b", clause, re.I):
        word = m.group("s").lower()
        status = {"completed": "done", "finished": "done"}.get(word, word)
        return Refined("todo_list", {"status": status}, "tasks by status", keep=False)
    return None
