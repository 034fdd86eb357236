"""Validation of task fields and conversion between rows and :class:`Task`."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from magray.todo._model import Action, Status, Task
from magray.todo.errors import TodoInputError

MAX_TITLE = 500


def status(value: Status | str) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise TodoInputError(
            f"unknown status {value!r}",
            hint=f"statuses: {', '.join(s.value for s in Status)}",
        ) from None


def check_title(title: str) -> str:
    if not isinstance(title, str) or not title.strip():
        raise TodoInputError("a task needs a non-empty title")
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise TodoInputError(
            f"title is {len(title)} characters; the limit is {MAX_TITLE}",
            hint="put details in the description",
        )
    return title


def check_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TodoInputError(f"{name} must be an integer, not {value!r}")
    return value


def check_positive(value: float | None, name: str, *, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    number = float(value)
    if math.isnan(number) or number < 0 or (number == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise TodoInputError(f"{name} must be {bound} seconds, not {value!r}")
    return number


def check_action(action: Action) -> Action:
    if not isinstance(action, Action) or not action.tool.strip():
        raise TodoInputError("an action needs a tool name", hint="e.g. Action('shell', {...})")
    if not isinstance(action.args, dict):
        raise TodoInputError(f"action args must be a JSON object, not {action.args!r}")
    try:
        json.dumps(action.args)
    except (TypeError, ValueError) as exc:
        raise TodoInputError(f"action args are not JSON-serialisable: {exc}") from None
    return action


def dump_tags(tags: Sequence[str]) -> str:
    clean = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            raise TodoInputError(f"tags must be non-empty strings, not {tag!r}")
        clean.append(tag.strip())
    return json.dumps(list(dict.fromkeys(clean)))


def epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TodoInputError(f"expected a datetime, not {value!r}")
    return value.timestamp()


def dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def to_task(m: Any) -> Task:
    tool = m["action_tool"]
    result = m["result"]
    return Task(
        id=int(m["id"]),
        title=m["title"],
        description=m["description"],
        status=Status(m["status"]),
        priority=int(m["priority"]),
        tags=tuple(json.loads(m["tags"])),
        created=dt(m["created"]),
        updated=dt(m["updated"]),
        started=dt(m["started"]),
        finished=dt(m["finished"]),
        due=dt(m["due"]),
        attempts=int(m["attempts"]),
        max_attempts=int(m["max_attempts"]),
        timeout=m["timeout"],
        estimate=m["estimate"],
        result=None if result is None else json.loads(result),
        error=m["error"],
        action=Action(tool, json.loads(m["action_args"] or "{}")) if tool else None,
        idempotent=bool(m["idempotent"]),
        not_before=dt(m["not_before"]),
        run_id=m["run_id"],
        cause=m["cause"],
    )
