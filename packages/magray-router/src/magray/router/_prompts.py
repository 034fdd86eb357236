"""The router's prompts (versioned: bump ``PROMPT_VERSION`` when the wording changes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from magray.router._types import Passage

__all__ = ["PLAN_REFERENCES", "PROMPT_VERSION", "chat_system", "summary_messages"]

PROMPT_VERSION = 2

#: Appended to the goal sent to magray-llm's planner (its prompt lives there).
PLAN_REFERENCES = """How steps pass results: an argument may be "{{s1.output}}" (the whole text
result of step s1), "{{s1.first_line}}", "{{s1.lines}}" (a list), "{{s1.items}}" (a list of what the
tool found: grep matches, file paths, commits, ...) or "{{s1.count}}"; the step must list s1 in
depends_on. Use these instead of guessing values an earlier step will produce; use
todo_add_many with titles "{{sN.items}}" to turn findings into tasks."""

_CHAT = """You are magray, a local-first assistant in the user's terminal.
Answer concisely and accurately. Use markdown only where it helps (lists, code).
When you use a memory passage, cite it with its label exactly as given, e.g. [mem:1a2b3c].
Never invent labels. If the passages do not help, answer from your own knowledge or say you
do not know."""

_TOOLS = """You can call tools to read files, inspect git, fetch web pages or run commands in
the user's workspace; every call goes through the user's sandbox policy. Call a tool only when
the request needs it, then answer from its result."""


def chat_system(passages: Sequence[Passage], *, tools: bool, extra: str | None) -> str:
    """The system message: instructions, then the memory passages with their labels."""
    parts = [_CHAT]
    if tools:
        parts.append(_TOOLS)
    if extra:
        parts.append(extra.strip())
    if passages:
        lines = ["Memory passages (most relevant first):"]
        for p in passages:
            lines.append(f"{p.label} ({p.layer}, score {p.score:.2f}): {p.text}")
        parts.append("\n".join(lines))
    else:
        parts.append("No memory passages matched this request.")
    return "\n\n".join(parts)


def summary_messages(goal: str, results: str) -> list[dict[str, Any]]:
    """Messages asking the LLM to summarise a plan's results for the user."""
    return [
        {
            "role": "system",
            "content": "You are magray. Summarise for the user what was done and what was "
            "found, concisely, in markdown. Mention failed steps plainly.",
        },
        {"role": "user", "content": f"Goal: {goal}\n\nStep results:\n{results}"},
    ]
