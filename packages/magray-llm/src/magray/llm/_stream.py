"""Turning litellm responses and stream chunks into magray's typed results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from magray.llm._types import Completion, StreamDelta, ToolCall, ToolCallDelta, Usage

__all__ = ["StreamAssembler", "completion_from_response", "delta_from_chunk", "usage_from"]


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def usage_from(obj: Any, *, cost_usd: float | None = None) -> Usage:
    """Read a provider ``usage`` object (or dict); missing numbers are 0."""
    if obj is None:
        return Usage(cost_usd=cost_usd)
    prompt = int(_get(obj, "prompt_tokens", 0) or 0)
    completion = int(_get(obj, "completion_tokens", 0) or 0)
    total = int(_get(obj, "total_tokens", 0) or 0) or prompt + completion
    return Usage(prompt, completion, total, cost_usd)


def completion_from_response(
    response: Any, *, model: str, cost_usd: float | None = None
) -> Completion:
    """A :class:`Completion` from a non-streamed litellm ``ModelResponse``."""
    choices = _get(response, "choices") or []
    message = _get(choices[0], "message") if choices else None
    finish = _get(choices[0], "finish_reason") if choices else None
    calls: list[ToolCall] = []
    for i, call in enumerate(_get(message, "tool_calls") or []):
        function = _get(call, "function")
        calls.append(
            ToolCall.parse(
                id=str(_get(call, "id") or f"call_{i}"),
                name=str(_get(function, "name") or ""),
                raw_arguments=str(_get(function, "arguments") or ""),
            )
        )
    content = _get(message, "content")
    return Completion(
        text=content if isinstance(content, str) else None,
        tool_calls=calls,
        model=model,
        finish_reason=str(finish) if finish is not None else None,
        usage=usage_from(_get(response, "usage"), cost_usd=cost_usd),
    )


def delta_from_chunk(chunk: Any) -> StreamDelta:
    """One litellm stream chunk as a :class:`StreamDelta`."""
    choices = _get(chunk, "choices") or []
    usage_obj = _get(chunk, "usage")
    usage = usage_from(usage_obj) if usage_obj is not None else None
    if not choices:
        return StreamDelta(usage=usage)
    choice = choices[0]
    delta = _get(choice, "delta")
    fragments = []
    for fallback_index, call in enumerate(_get(delta, "tool_calls") or []):
        function = _get(call, "function")
        index = _get(call, "index")
        fragments.append(
            ToolCallDelta(
                index=int(index) if index is not None else fallback_index,
                id=_get(call, "id"),
                name=_get(function, "name"),
                arguments=str(_get(function, "arguments") or ""),
            )
        )
    text = _get(delta, "content")
    finish = _get(choice, "finish_reason")
    return StreamDelta(
        text=text if isinstance(text, str) else "",
        tool_calls=tuple(fragments),
        finish_reason=str(finish) if finish else None,
        usage=usage,
    )


@dataclass
class _PartialCall:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamAssembler:
    """Accumulates :class:`StreamDelta` objects into one :class:`Completion`.

    Text fragments are concatenated; tool-call fragments are grouped by their
    ``index`` (the id and name arrive once, the arguments in pieces).
    """

    def __init__(self, *, model: str) -> None:
        self.model = model
        self._text: list[str] = []
        self._calls: dict[int, _PartialCall] = {}
        self._finish: str | None = None
        self._usage: Usage | None = None

    def add(self, delta: StreamDelta) -> None:
        if delta.text:
            self._text.append(delta.text)
        for fragment in delta.tool_calls:
            partial = self._calls.setdefault(fragment.index, _PartialCall())
            if fragment.id:
                partial.id = fragment.id
            # Some servers repeat the name in every fragment; others send it in pieces.
            if fragment.name and not partial.name.endswith(fragment.name):
                partial.name += fragment.name
            if fragment.arguments:
                partial.arguments.append(fragment.arguments)
        if delta.finish_reason:
            self._finish = delta.finish_reason
        if delta.usage is not None:
            self._usage = delta.usage

    @property
    def usage(self) -> Usage | None:
        return self._usage

    def completion(self, *, cost_usd: float | None = None) -> Completion:
        """The assembled result so far."""
        calls = [
            ToolCall.parse(
                id=partial.id or f"call_{index}",
                name=partial.name,
                raw_arguments="".join(partial.arguments),
            )
            for index, partial in sorted(self._calls.items())
        ]
        usage = self._usage or Usage()
        if cost_usd is not None:
            usage = Usage(
                usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, cost_usd
            )
        text = "".join(self._text)
        return Completion(
            text=text if text or not calls else None,
            tool_calls=calls,
            model=self.model,
            finish_reason=self._finish,
            usage=usage,
        )
