"""References from a plan step's arguments to the outputs of the steps it depends on.

A step argument may hold ``{{s1.items}}``: when the step runs, the reference is
replaced by that field of step ``s1``'s result. A value that is exactly one
reference takes the field's own type (a list stays a list); a reference inside
longer text is spliced in as text (a list as one item per line). Fields, the same
for every tool:

======================  ====================================================
``output``              the step's whole text result
``first_line``          its first non-empty line
``lines``               its non-empty lines (a list)
``items``               the things the tool found, one line each (a list): grep
                        matches as ``path:line: text``, glob/list paths, commits,
                        memory passages, tasks, search hits; for tools with no
                        list in their structured result, the non-empty lines
``count``               how many items
======================  ====================================================

Before anything runs, :func:`reference_problems` rejects a reference to a step
that is not among the step's dependencies (direct or indirect) and to an
unknown field. ``{{name.field}}`` is a reference only when ``name`` is a step id
of the plan or looks like one (``s`` and a number); other double-brace text (a
template in a file being written) is left alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from magray.router._types import Plan

__all__ = [
    "FIELDS",
    "StepRef",
    "find_refs",
    "reference_problems",
    "resolve_args",
    "step_output",
]

FIELDS: dict[str, str] = {
    "output": "the step's whole text result",
    "first_line": "its first non-empty line",
    "lines": "its non-empty lines (a list)",
    "items": "what the tool found, one line each (a list)",
    "count": "how many items",
}

_REF = re.compile(r"\{\{\s*([A-Za-z_][\w-]*)\.([A-Za-z_]\w*)\s*\}\}")
_STEP_LIKE = re.compile(r"s\d+")
_OUTPUT_LIMIT = 64_000  # characters of a step's text kept for later steps
_ITEM_LIMIT = 1_000  # items kept for later steps
_ITEM_CHARS = 500  # characters of one item


class StepRef:
    """One reference found in a step's arguments."""

    __slots__ = ("field", "step", "text")

    def __init__(self, step: str, field: str, text: str) -> None:
        self.step = step
        self.field = field
        self.text = text

    def __repr__(self) -> str:
        return f"StepRef({self.text!r})"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def find_refs(args: Mapping[str, Any], step_ids: Sequence[str] = ()) -> list[StepRef]:
    """The references in ``args`` (nested values included), in order.

    ``{{x.y}}`` counts when ``x`` is one of ``step_ids`` or looks like a step id (``s2``).
    """
    known = set(step_ids)
    refs = []
    for text in _strings(dict(args)):
        for m in _REF.finditer(text):
            if m.group(1) in known or _STEP_LIKE.fullmatch(m.group(1)):
                refs.append(StepRef(m.group(1), m.group(2), m.group(0)))
    return refs


def _ancestors(plan: Plan) -> dict[str, set[str]]:
    parents = {s.id: set(s.depends_on) for s in plan.steps}
    out: dict[str, set[str]] = {}

    def walk(step: str, seen: set[str]) -> set[str]:
        if step in out:
            return out[step]
        found: set[str] = set()
        for parent in parents.get(step, ()):
            if parent in seen:  # a cycle: reported elsewhere
                continue
            found |= {parent} | walk(parent, seen | {parent})
        out[step] = found
        return found

    for step in parents:
        walk(step, {step})
    return out


def reference_problems(plan: Plan) -> list[str]:
    """Why references in ``plan`` cannot be resolved (empty when all can)."""
    ids = [s.id for s in plan.steps]
    ancestors = _ancestors(plan)
    problems = []
    for step in plan.steps:
        for ref in find_refs(step.args, ids):
            if ref.step == step.id:
                problems.append(f"step {step.id} refers to its own output ({ref.text})")
            elif ref.step not in ids:
                problems.append(f"step {step.id} refers to unknown step {ref.step!r} ({ref.text})")
            elif ref.step not in ancestors.get(step.id, set()):
                problems.append(
                    f"step {step.id} uses the output of {ref.step} ({ref.text}) but does not "
                    f"depend on it; add {ref.step!r} to its depends_on"
                )
            if ref.field not in FIELDS:
                problems.append(
                    f"step {step.id}: {ref.text} names no output field; use one of "
                    + ", ".join(FIELDS)
                )
    return problems


# ------------------------------------------------------------------ outputs


def _item_text(item: Any) -> str:
    if isinstance(item, str):
        text = item
    elif isinstance(item, Mapping):
        if "path" in item and "line" in item and "text" in item:
            text = f"{item['path']}:{item['line']}: {str(item['text']).strip()}"
        elif "title" in item and "url" in item:
            text = f"{item['title']} — {item['url']}"
        elif "sha" in item and "subject" in item:
            text = f"{str(item['sha'])[:10]} {item['subject']}"
        else:
            for key in ("text", "title", "path", "name"):
                if key in item:
                    text = str(item[key])
                    break
            else:
                text = json.dumps(item, sort_keys=True, default=str)
    else:
        text = json.dumps(item, default=str)
    flat = " ".join(text.split())
    return flat[:_ITEM_CHARS]


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def step_output(content: str, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """What later steps may use of one step's result (stored with the step's task)."""
    lists = [v for v in (data or {}).values() if isinstance(v, list)]
    if len(lists) == 1:
        items = [_item_text(item) for item in lists[0]]
        items = [i for i in items if i]
    else:
        items = _lines(content)
    return {"output": content[:_OUTPUT_LIMIT], "items": items[:_ITEM_LIMIT]}


def _field(output: Mapping[str, Any], name: str) -> Any:
    text = str(output.get("output") or "")
    if name == "output":
        return text
    lines = _lines(text)
    if name == "lines":
        return lines
    if name == "first_line":
        return lines[0].strip() if lines else ""
    items = list(output.get("items") or [])
    if name == "items":
        return items
    if name == "count":
        return len(items)
    raise KeyError(name)


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def _coerce(value: Any, schema: Mapping[str, Any] | None) -> Any:
    """Fit a whole-value reference to the parameter's JSON-schema type."""
    kinds = _types(schema or {})
    if isinstance(value, list) and "array" not in kinds and "string" in kinds:
        return _as_text(value)
    if isinstance(value, str) and "array" in kinds and "string" not in kinds:
        return _lines(value)
    if isinstance(value, int) and "integer" not in kinds and "string" in kinds:
        return str(value)
    return value


def _types(schema: Mapping[str, Any]) -> set[str]:
    kinds: set[str] = set()
    kind = schema.get("type")
    if isinstance(kind, str):
        kinds.add(kind)
    elif isinstance(kind, list):
        kinds |= {str(k) for k in kind}
    for option in schema.get("anyOf", []) or []:
        if isinstance(option, Mapping):
            kinds |= _types(option)
    return kinds


def _substitute(value: Any, outputs: Mapping[str, Mapping[str, Any]], ids: Sequence[str]) -> Any:
    if isinstance(value, str):
        whole = _REF.fullmatch(value.strip())
        if whole and _is_ref(whole.group(1), ids):
            return _field(outputs[whole.group(1)], whole.group(2))

        def splice(m: re.Match[str]) -> str:
            if not _is_ref(m.group(1), ids):
                return m.group(0)
            return _as_text(_field(outputs[m.group(1)], m.group(2)))

        return _REF.sub(splice, value)
    if isinstance(value, Mapping):
        return {k: _substitute(v, outputs, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, outputs, ids) for v in value]
    return value


def _is_ref(name: str, ids: Sequence[str]) -> bool:
    return name in ids or bool(_STEP_LIKE.fullmatch(name))


def resolve_args(
    args: Mapping[str, Any],
    outputs: Mapping[str, Mapping[str, Any]],
    *,
    step_ids: Sequence[str],
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``args`` with every reference replaced by the referenced step's output.

    Args:
        args: The step's arguments as planned.
        outputs: Step id → :func:`step_output` of each finished dependency.
        step_ids: The plan's step ids (what counts as a reference).
        parameters: The tool's JSON schema, to fit whole-value references to its types.

    Raises:
        KeyError: A referenced step has no output (validation prevents this).
    """
    props = dict((parameters or {}).get("properties") or {})
    out: dict[str, Any] = {}
    for name, value in args.items():
        resolved = _substitute(value, outputs, step_ids)
        whole = _REF.fullmatch(value.strip()) if isinstance(value, str) else None
        if whole and _is_ref(whole.group(1), step_ids):
            resolved = _coerce(resolved, props.get(name))
        out[name] = resolved
    return out
