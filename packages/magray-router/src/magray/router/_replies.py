"""Replies built without a model, and the exchanges the router stores in memory.

The texts of the no-LLM routes (memory as the answer, a memory listing, open tasks, a
tool's result) and what one stored exchange holds: its text, its metadata, and how a
passage is recognised as the transcript of the question being answered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from magray.router._types import Decision, Passage, Reply, Route, ToolOutcome

if TYPE_CHECKING:
    from magray.todo import Task

__all__ = [
    "CONFIGURE_LLM_COMMAND",
    "EXCHANGE_KIND",
    "exchange_record",
    "memory_answer",
    "memory_listing",
    "missing_arguments",
    "one_line",
    "task_listing",
    "tool_result",
    "transcript_of",
]

#: The one command that turns no-LLM mode into LLM mode (quoted in notices).
CONFIGURE_LLM_COMMAND = "magray config set llm.model openai/gpt-4o-mini"
_NO_LLM_NOTICE = (
    "No language model is configured, so this answer is the most relevant memory; an LLM "
    f"would give a fuller answer. Configure one with `{CONFIGURE_LLM_COMMAND}` "
    "(and set OPENAI_API_KEY), or any litellm model string."
)
#: ``metadata["kind"]`` of a stored chat exchange.
EXCHANGE_KIND = "exchange"
_ASKED = "User asked: "
_USER = "User: "
_STORE_LIMIT = 4_000  # characters of one stored exchange
_SHOW_LIMIT = 2_000  # characters of a tool result shown in a no-LLM answer


# ------------------------------------------------------------ no-LLM replies


def memory_answer(
    request: str,
    stdin: str | None,
    decision: Decision,
    found: Sequence[Passage],
    *,
    floor: float,
    use_memory: bool,
) -> Reply:
    """Memory as the answer: the passages of ``found`` scoring at least ``floor``."""
    passages = [p for p in found if p.score >= floor]
    if passages:
        lines = ["Most relevant memory:"]
        lines += [f"- {p.label} ({p.layer}, {p.score:.2f}) {one_line(p.text)}" for p in passages]
        text = "\n".join(lines)
    elif not use_memory:
        text = "Memory is off for this request, and no language model is configured."
    else:
        best = f" (best match {found[0].score:.2f}, below {floor:.2f})" if found else ""
        text = (
            f"Nothing relevant in memory for this request{best}. Store what you know with "
            f'`magray memory add "..."`, then ask again.'
        )
    if stdin:
        text += f"\n\n(Read {len(stdin)} characters from stdin; only an LLM can analyse them.)"
    return Reply(
        request,
        text,
        Route.ANSWER,
        decision,
        "no-llm",
        context=passages,
        citations=[p.id for p in passages],
        notice=_NO_LLM_NOTICE,
    )


def memory_listing(
    request: str, decision: Decision, passages: list[Passage], *, mode: str, use_memory: bool
) -> Reply:
    """The memory route: the passages found, one line each."""
    if passages:
        text = "\n".join(
            f"- {p.label} ({p.layer}, {p.score:.2f}) {one_line(p.text)}" for p in passages
        )
    else:
        text = "Nothing in memory matches." if use_memory else "Memory is off."
    return Reply(
        request,
        text,
        Route.MEMORY,
        decision,
        mode,
        context=passages,
        citations=[p.id for p in passages],
    )


def task_listing(
    request: str,
    decision: Decision,
    tasks: Sequence[Task],
    counts: Mapping[str, int],
    *,
    mode: str,
) -> Reply:
    """The todo route: the open tasks and the counts per status."""
    if tasks:
        text = "Open tasks:\n" + "\n".join(f"- #{t.id} [{t.status}] {t.title}" for t in tasks)
    else:
        text = "No open tasks."
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)
    if summary:
        text += f"\n({summary})"
    return Reply(request, text, Route.TODO, decision, mode)


def missing_arguments(request: str, decision: Decision, *, mode: str) -> Reply:
    """The tool route when the rules could not fill every required argument."""
    text = decision.question or (
        f"To run {decision.tool} I need: {', '.join(decision.missing or ())}."
    )
    return Reply(request, text, Route.TOOL, decision, mode)


def tool_result(outcome: ToolOutcome) -> str:
    """A tool's result as a no-LLM answer: its status and (the start of) its output."""
    head = f"{outcome.tool} {'ok' if outcome.ok else 'failed'}"
    body = outcome.content.strip()
    if len(body) > _SHOW_LIMIT:
        lines = body[:_SHOW_LIMIT].splitlines()
        body = "\n".join(lines[:-1] or lines) + f"\n[... {len(outcome.content)} characters in all]"
    return f"{head}:\n{body}" if body else head


# ------------------------------------------------------------ stored exchanges


def exchange_record(reply: Reply) -> tuple[str, dict[str, Any]]:
    """The text and metadata one answered request is stored in memory with."""
    if reply.mode == "no-llm" and reply.route in (Route.ANSWER, Route.MEMORY):
        text = f"{_ASKED}{reply.request}"  # the answer was memory itself: do not copy it
    elif reply.mode == "no-llm" and reply.tools:  # keep the gist, not whole tool outputs
        calls = "; ".join(
            f"{t.tool}({json.dumps(t.args)}) {'ok' if t.ok else 'failed'}" for t in reply.tools
        )
        text = f"{_USER}{reply.request}\nmagray ran {calls}: {one_line(reply.text, 300)}"
    else:
        text = f"{_USER}{reply.request}\nmagray: {reply.text}"
    meta = {
        "kind": EXCHANGE_KIND,
        "request": reply.request[:_STORE_LIMIT],
        "route": reply.route.value,
        "mode": reply.mode,
        "model": reply.model,
        "citations": reply.citations,
    }
    return text[:_STORE_LIMIT], meta


def transcript_of(passage: Passage, query: str) -> bool:
    """True when ``passage`` is a stored exchange of the question ``query``."""
    if passage.metadata.get("kind") != EXCHANGE_KIND:
        return False
    asked = passage.metadata.get("request")
    if not isinstance(asked, str):  # stored before the request was kept in metadata
        first = passage.text.split("\n", 1)[0]
        asked = first.removeprefix(_ASKED).removeprefix(_USER)
    return _normalized(asked) == _normalized(query)


def one_line(text: str, limit: int = 240) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _normalized(text: str) -> str:
    return " ".join(text.split()).casefold().rstrip("?!. ")
