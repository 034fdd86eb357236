"""Structured output: asking for JSON that matches a pydantic model, and repairing it.

Three ways to ask, chosen per model (``llm.structured_mode``):

- ``json_schema``: the provider's native ``response_format`` with the JSON schema
  (OpenAI, Gemini, llama.cpp's server, ...);
- ``tool``: a single forced tool call whose parameters are the schema;
- ``prompt``: the schema in a system message and "reply with JSON only".

Whatever the mode, the reply is parsed leniently (code fences and prose around
the object are tolerated) and validated with pydantic. An invalid reply is fed
back with the validation error so the model can correct itself.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from magray.llm._types import Completion

__all__ = [
    "ParseFailure",
    "extract_json",
    "parse_reply",
    "repair_messages",
    "request_params",
    "schema_of",
]

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


class ParseFailure(Exception):
    """A reply that is not valid for the schema; ``raw`` is what the model said."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema (pydantic's, with the title kept as the name)."""
    return model.model_json_schema()


def _name(model: type[BaseModel]) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", model.__name__)[:64] or "Output"


def request_params(
    model: type[BaseModel], mode: str, messages: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Messages and extra litellm params that ask for ``model`` in ``mode``."""
    schema = schema_of(model)
    if mode == "json_schema":
        return messages, {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": _name(model), "schema": schema, "strict": False},
            }
        }
    if mode == "tool":
        tool = {
            "type": "function",
            "function": {
                "name": _name(model),
                "description": (model.__doc__ or f"Return a {model.__name__}.").strip(),
                "parameters": schema,
            },
        }
        choice = {"type": "function", "function": {"name": _name(model)}}
        return messages, {"tools": [tool], "tool_choice": choice}
    instruction = (
        "Reply with a single JSON object and nothing else (no prose, no code fences). "
        f"It must validate against this JSON schema:\n{json.dumps(schema, separators=(',', ':'))}"
    )
    return [{"role": "system", "content": instruction}, *messages], {}


def extract_json(text: str) -> Any:
    """Parse JSON from a reply, tolerating code fences and prose around one object.

    Raises:
        ValueError: No JSON value could be found.
    """
    stripped = text.strip()
    candidates = [stripped]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        candidates.append(stripped[start : end + 1])
    last: Exception | None = None
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            last = exc
    raise ValueError(f"reply is not JSON: {last}" if last else "reply is empty")


def _raw_reply(completion: Completion, mode: str) -> str:
    if mode == "tool" and completion.tool_calls:
        return completion.tool_calls[0].raw_arguments
    if completion.text:
        return completion.text
    if completion.tool_calls:  # some servers answer with a tool call in other modes too
        return completion.tool_calls[0].raw_arguments
    return ""


def parse_reply(completion: Completion, model: type[T], mode: str) -> T:
    """Validate the reply against ``model``.

    Raises:
        ParseFailure: With a message meant to be shown to the model.
    """
    raw = _raw_reply(completion, mode)
    try:
        data = extract_json(raw)
    except ValueError as exc:
        raise ParseFailure(str(exc), raw) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ParseFailure(f"JSON does not match the schema: {problems}", raw) from None


def repair_messages(raw: str, problem: str) -> list[dict[str, Any]]:
    """The turn that shows the model its invalid reply and what was wrong."""
    return [
        {"role": "assistant", "content": raw or "(empty reply)"},
        {
            "role": "user",
            "content": f"That reply was invalid: {problem}. Reply again with only the corrected "
            "JSON object matching the schema.",
        },
    ]
