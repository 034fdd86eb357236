"""Typed results of LLM calls: completions, tool calls, usage and stream deltas."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Completion",
    "Message",
    "StreamDelta",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "normalize_messages",
]

Message = Mapping[str, Any]
"""An OpenAI-style chat message: ``{"role": "user", "content": "..."}``."""


def normalize_messages(messages: str | Sequence[Message]) -> list[dict[str, Any]]:
    """Accept a plain string (one user message) or a list of message dicts."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out = [dict(m) for m in messages]
    for i, message in enumerate(out):
        if "role" not in message:
            from magray.common.errors import InvalidInputError

            raise InvalidInputError(
                f"message {i} has no 'role'",
                hint='messages look like {"role": "user", "content": "..."}',
            )
    return out


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for.

    Attributes:
        id: The provider's call id (echo it back in the ``tool`` message).
        name: The function name.
        arguments: The parsed JSON arguments (``{}`` when they did not parse).
        raw_arguments: The arguments exactly as the model wrote them.
        error: Why ``raw_arguments`` did not parse as a JSON object, else ``None``.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str
    error: str | None = None

    @classmethod
    def parse(cls, *, id: str, name: str, raw_arguments: str) -> ToolCall:
        """Build from raw JSON text; invalid JSON is kept with ``error`` set."""
        text = raw_arguments.strip() or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return cls(id, name, {}, raw_arguments, f"invalid JSON arguments: {exc}")
        if not isinstance(value, dict):
            return cls(id, name, {}, raw_arguments, "arguments are not a JSON object")
        return cls(id, name, value, raw_arguments)

    def to_message(self) -> dict[str, Any]:
        """This call as an entry of an assistant message's ``tool_calls``."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.raw_arguments},
        }


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of one call (``cost_usd`` is ``None`` when the price is unknown)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None

    def __add__(self, other: Usage) -> Usage:
        if self.cost_usd is None and other.cost_usd is None:
            cost = None
        else:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            cost,
        )


@dataclass
class Completion:
    """The result of :meth:`LLMClient.complete`.

    Attributes:
        text: The assistant's text (``None`` when it only called tools).
        tool_calls: Tool calls the model asked for, in order.
        model: The model that answered (a fallback if the primary failed).
        finish_reason: ``"stop"``, ``"length"``, ``"tool_calls"``, ... as the provider said.
        usage: Tokens and cost, summed over every request this call made.
        latency_ms: Wall time of the whole call including retries.
        attempts: One entry per request: model, outcome and error code if any.
        parsed: The validated ``response_model`` instance for structured output.
    """

    text: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    model: str = ""
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    parsed: Any = None

    def message(self) -> dict[str, Any]:
        """The reply as an assistant message, to append to the conversation."""
        out: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            out["tool_calls"] = [call.to_message() for call in self.tool_calls]
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (``parsed`` dumped if it is a pydantic model)."""
        parsed = self.parsed
        if hasattr(parsed, "model_dump"):
            parsed = parsed.model_dump(mode="json")
        return {
            "text": self.text,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments, "error": c.error}
                for c in self.tool_calls
            ],
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total_tokens,
                "cost_usd": self.usage.cost_usd,
            },
            "latency_ms": round(self.latency_ms, 3),
            "attempts": self.attempts,
            "parsed": parsed,
        }


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of a streamed tool call; fragments with the same ``index`` concatenate."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class StreamDelta:
    """One streamed increment: some text, a tool-call fragment, or the final usage."""

    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
