"""Tool schemas as the agents read them: names, parameters and argument validation.

Tools are OpenAI-style schemas (``{"type": "function", "function": {"name",
"description", "parameters"}}``; a bare ``{"name", ...}`` works too), so any tool
registry can be plugged in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from magray.common.errors import InvalidInputError

__all__ = ["ToolSpec", "tool_specs", "validate_arguments"]


@dataclass(frozen=True)
class ToolSpec:
    """The parts of a tool schema the agents use."""

    name: str
    description: str
    parameters: dict[str, Any]

    @property
    def required(self) -> list[str]:
        return [str(r) for r in self.parameters.get("required", [])]

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        props = self.parameters.get("properties", {})
        return props if isinstance(props, dict) else {}


def tool_specs(tools: Sequence[Mapping[str, Any]]) -> list[ToolSpec]:
    """Normalise OpenAI-style (or bare) tool schemas.

    Raises:
        InvalidInputError: A schema has no name.
    """
    specs = []
    for tool in tools:
        fn = tool.get("function", tool)
        name = fn.get("name")
        if not name:
            raise InvalidInputError(
                f"tool schema without a name: {json.dumps(tool)[:120]}",
                hint='tools look like {"type": "function", "function": {"name": ..., '
                '"description": ..., "parameters": {...}}}',
            )
        specs.append(
            ToolSpec(str(name), str(fn.get("description") or ""), dict(fn.get("parameters") or {}))
        )
    return specs


def _coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    """Gently convert strings to the schema's scalar type ("5" → 5, "yes" → True)."""
    kind = schema.get("type")
    if isinstance(value, str):
        text = value.strip()
        if kind == "integer" and re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if kind == "number" and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", text):
            return float(text)
        if kind == "boolean" and text.lower() in {"true", "yes", "1", "false", "no", "0"}:
            return text.lower() in {"true", "yes", "1"}
    return value


def validate_arguments(
    arguments: Mapping[str, Any], spec: ToolSpec
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Check arguments against the tool's schema.

    Returns:
        ``(valid_arguments, missing_required, errors)``: invalid values are
        dropped (and reported); unknown properties are dropped when the
        schema does not allow additional properties.
    """
    from jsonschema import Draft202012Validator

    props = spec.properties
    allow_extra = spec.parameters.get("additionalProperties", True) is not False and not props
    valid: dict[str, Any] = {}
    errors: list[str] = []
    for name, given in arguments.items():
        if given is None:
            continue
        schema = props.get(name)
        if schema is None:
            if allow_extra:
                valid[name] = given
            else:
                errors.append(f"{name}: not a parameter of {spec.name}")
            continue
        value = _coerce(given, schema)
        problems = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
        if problems:
            errors.append(f"{name}: {problems[0]}")
        else:
            valid[name] = value
    missing = [r for r in spec.required if r not in valid]
    return valid, missing, errors
