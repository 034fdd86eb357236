"""The answer path with a language model: the messages, the tool rounds, streaming, usage.

:meth:`Router.ask <magray.router.Router.ask>` gathers what an answer needs (memory passages,
the conversation, the tools' schemas, a tool call the rules already made) and hands it here;
this module talks to the :class:`~magray.llm.LLMClient` and to nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from magray.common.errors import LLMError
from magray.router._prompts import chat_system
from magray.router._types import Event, EventKind, EventSink, Passage, ToolOutcome

if TYPE_CHECKING:
    from magray.llm import Completion, LLMClient

__all__ = ["Answer", "answer", "chat_messages", "complete"]

_STDIN_LIMIT = 100_000  # characters of piped input sent to the model
_RULES_CALL_ID = "call_rules_1"


@dataclass
class Answer:
    """What the model said after its tool rounds.

    Attributes:
        text: The final answer.
        model: The model that gave it (a fallback if the primary failed).
        tools: The tool calls the model made, in order.
        usage: Token counts and cost summed over all calls.
    """

    text: str = ""
    model: str | None = None
    tools: list[ToolOutcome] = field(default_factory=list)
    usage: dict[str, Any] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None}
    )


def chat_messages(
    request: str,
    stdin: str | None,
    passages: Sequence[Passage],
    history: Sequence[dict[str, Any]],
    *,
    tools: bool,
    system_prompt: str | None,
    first: ToolOutcome | None = None,
) -> list[dict[str, Any]]:
    """The messages of one request: system (with passages), history, the request.

    ``first`` is a tool call the rules already made: it is written as the model's own
    call and its result, so the model answers from it.
    """
    content = request
    if stdin:
        piped = stdin[:_STDIN_LIMIT]
        cut = "\n[... input truncated]" if len(stdin) > _STDIN_LIMIT else ""
        content = f"{request}\n\n<stdin>\n{piped}{cut}\n</stdin>"
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": chat_system(passages, tools=tools, extra=system_prompt)},
        *history,
        {"role": "user", "content": content},
    ]
    if first is not None:
        prefilled: dict[str, Any] = {
            "id": _RULES_CALL_ID,
            "type": "function",
            "function": {"name": first.tool, "arguments": json.dumps(first.args)},
        }
        messages.append({"role": "assistant", "content": None, "tool_calls": [prefilled]})
        messages.append({"role": "tool", "tool_call_id": _RULES_CALL_ID, "content": first.content})
    return messages


def answer(
    llm: LLMClient,
    messages: list[dict[str, Any]],
    schemas: Sequence[dict[str, Any]],
    emit: EventSink,
    *,
    run_tool: Callable[[str, dict[str, Any], EventSink], ToolOutcome],
    model: str | None,
    max_rounds: int,
    stream: bool,
) -> Answer:
    """Call the model, run the tools it asks for, and call it again, up to ``max_rounds``.

    The last round offers no tools, so the model must answer. ``messages`` grows with
    the model's calls and their results.
    """
    result = Answer()
    for round_ in range(max_rounds + 1):
        last_round = round_ == max_rounds
        offer = None if last_round else (schemas or None)
        completion = complete(llm, messages, offer, emit, model=model, stream=stream)
        result.model = completion.model
        _add_usage(result.usage, completion)
        result.text = completion.text or ""
        if not completion.tool_calls or last_round:
            break
        messages.append(completion.message())
        for call in completion.tool_calls:
            if call.error:
                outcome = ToolOutcome(
                    call.name, {}, False, f"error: {call.error}", {"message": call.error}
                )
            else:
                outcome = run_tool(call.name, call.arguments, emit)
            result.tools.append(outcome)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": outcome.content})
    return result


def complete(
    llm: LLMClient,
    messages: list[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None,
    emit: EventSink,
    *,
    model: str | None,
    stream: bool,
) -> Completion:
    """One LLM call; streamed as token events.

    A stream that breaks before its first token is retried once without streaming
    (which has retries and fallbacks).
    """
    if not stream:
        completion = llm.complete(messages, tools=tools, model=model)
        _note_fallback(completion, emit)
        if completion.text:
            emit(Event(EventKind.TOKEN, completion.text))
        return completion
    handle = llm.complete(messages, tools=tools, stream=True, model=model)
    got_text = False
    try:
        for delta in handle:
            if delta.text:
                got_text = True
                emit(Event(EventKind.TOKEN, delta.text))
    except LLMError as exc:
        if got_text:
            raise
        emit(Event(EventKind.RETRY, f"stream failed ({exc.code}); retrying without streaming"))
        return complete(llm, messages, tools, emit, model=model, stream=False)
    assert handle.completion is not None
    _note_fallback(handle.completion, emit)
    return handle.completion


def _note_fallback(completion: Completion, emit: EventSink) -> None:
    failed = [a for a in completion.attempts if a.get("outcome") != "ok"]
    if failed:
        models = sorted({str(a.get("model")) for a in failed})
        emit(
            Event(
                EventKind.RETRY,
                f"recovered after {len(failed)} failed attempt(s) on {', '.join(models)}; "
                f"answered by {completion.model}",
                {"attempts": completion.attempts, "model": completion.model},
            )
        )


def _add_usage(usage: dict[str, Any], completion: Completion) -> None:
    usage["prompt_tokens"] += completion.usage.prompt_tokens
    usage["completion_tokens"] += completion.usage.completion_tokens
    if completion.usage.cost_usd is not None:
        usage["cost_usd"] = (usage["cost_usd"] or 0.0) + completion.usage.cost_usd
