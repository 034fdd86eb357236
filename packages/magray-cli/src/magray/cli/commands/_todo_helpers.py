"""What the ``magray todo`` commands share: opening the store, parsing options, printing
tasks and changes, the task options of ``add`` and ``edit``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from magray.cli._context import AppContext

if TYPE_CHECKING:
    from magray.todo import Change, Task, TodoStore

__all__ = [
    "STATUSES",
    "STYLE",
    "TASK_OPTIONS",
    "changes_json",
    "check_tool",
    "emit_json_data",
    "open_todo",
    "parse_action",
    "parse_due",
    "parse_json",
    "parse_seconds",
    "print_changes",
    "print_task_line",
    "status_option",
    "styled",
    "with_task_options",
]

STATUSES = ["pending", "ready", "running", "done", "failed", "cancelled", "blocked", "skipped"]
STYLE = {
    "pending": "dim",
    "ready": "cyan",
    "running": "yellow",
    "done": "green",
    "failed": "bold red",
    "cancelled": "dim strike",
    "blocked": "red",
    "skipped": "magenta",
}


def open_todo(app: AppContext) -> TodoStore:
    from magray.todo import TodoStore

    db = click.get_current_context().find_root().meta.get("magray.todo.db")
    return TodoStore(db, settings=app.settings.todo)


def emit_json_data(data: Any) -> None:
    from magray.cli._output import emit_json

    emit_json(data)


def changes_json(changes: list[Change]) -> list[dict[str, Any]]:
    return [{"task_id": c.task_id, "from": c.old.value, "to": c.new.value} for c in changes]


def styled(status: str) -> Any:
    from rich.text import Text

    return Text(status, style=STYLE.get(status, ""))


def parse_json(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        from magray.todo import TodoInputError

        raise TodoInputError(
            f"{what} is not valid JSON: {exc.msg} (at character {exc.pos})",
            hint="""quote it for the shell, e.g. '{"path": "README.md"}'""",
        ) from None


def parse_due(value: str | None) -> datetime | None:
    if value is None or value.lower() == "none":
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        from magray.todo import TodoInputError

        raise TodoInputError(
            f"cannot read the date {value!r}",
            hint="use ISO 8601: 2026-12-01 or 2026-12-01T17:30 (local time unless it has +HH:MM)",
        ) from None


def parse_seconds(value: str | None, what: str) -> float | None:
    if value is None or value.lower() == "none" or (what == "--timeout" and value == "0"):
        return None
    try:
        return float(value)
    except ValueError:
        from magray.todo import TodoInputError

        raise TodoInputError(f"{what} must be seconds (e.g. 30 or 2.5) or 'none'") from None


def parse_action(tool: str | None, args: str | None) -> Any:
    from magray.todo import Action, TodoInputError

    if tool is None:
        if args is not None:
            raise TodoInputError("--args needs --action TOOL")
        return None
    parsed = parse_json(args, "--args") if args is not None else {}
    if not isinstance(parsed, dict):
        raise TodoInputError("--args must be a JSON object", hint="""e.g. '{"path": "x"}'""")
    check_tool(tool, parsed)
    return Action(tool, parsed)


def check_tool(name: str, args: dict[str, Any]) -> None:
    """Refuse an action the tool registry cannot run: an unknown tool or arguments it rejects.

    Checked when the task is added or edited, so a typo fails now with a
    suggestion rather than at ``todo run``.
    """
    from difflib import get_close_matches

    from magray.todo import TodoInputError
    from magray.tools import ToolRegistry
    from magray.tools.errors import ToolArgsError

    registry = ToolRegistry.from_entry_points()
    if name not in registry:
        names = registry.names()
        close = get_close_matches(name, names, n=3)
        if close:
            options = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
            hint = f"did you mean {options}? (`magray tools list` describes every tool)"
        else:
            hint = f"the tools are {', '.join(names)} (`magray tools list` describes them)"
        raise TodoInputError(
            f"--action: no tool named {name!r}",
            hint=hint,
            details={"tool": name, "close": close},
        )
    try:
        registry.validate_args(name, args)
    except ToolArgsError as exc:
        problems = list(exc.details.get("problems") or [exc.message])
        raise TodoInputError(
            f"--args for {name}: {'; '.join(problems)}",
            hint=f"`magray tools describe {name}` shows its arguments",
            details={"tool": name, "problems": problems},
        ) from None


def print_task_line(verb: str, task: Task) -> None:
    from rich.text import Text

    from magray.cli._output import console

    line = Text(f"{verb} #{task.id} ")
    line.append(task.title, style="bold")
    line.append(" [")
    line.append_text(styled(task.status.value))
    line.append("]")
    console().print(line)


def print_changes(changes: list[Change], *, skip: int | None = None) -> None:
    from rich.text import Text

    from magray.cli._output import console

    out = console()
    for change in changes:
        if change.task_id == skip:
            continue
        line = Text(f"  #{change.task_id}: {change.old.value} -> ")
        line.append_text(styled(change.new.value))
        out.print(line)


TASK_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("-d", "--description", default=None, help="Longer notes."),
    click.option("-p", "--priority", type=int, default=None, help="Higher runs first."),
    click.option("-t", "--tag", "tags", multiple=True, help="Label (repeatable)."),
    click.option("--due", default=None, help="Deadline, ISO 8601 (2026-12-01[T17:30])."),
    click.option("--timeout", default=None, help="Seconds one attempt may run ('none')."),
    click.option("--estimate", default=None, help="Expected seconds (for the critical path)."),
    click.option("--max-attempts", type=int, default=None, help="Attempts before failing."),
    click.option("--action", "tool", default=None, help="Tool to run (makes it automatic)."),
    click.option("--args", "args", default=None, help="Tool arguments as a JSON object."),
]


def with_task_options(func: Any) -> Any:
    for option in reversed(TASK_OPTIONS):
        func = option(func)
    return func


def status_option(text: str) -> Callable[[Any], Any]:
    """``-s/--status`` (repeatable, one of :data:`STATUSES`) into ``statuses``."""
    return click.option(
        "-s", "--status", "statuses", type=click.Choice(STATUSES), multiple=True, help=text
    )
