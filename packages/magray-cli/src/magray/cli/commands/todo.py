"""``magray todo add|list|show|edit|done|fail|cancel|retry|dep|graph|run|clear``.

A thin wrapper over :mod:`magray.todo`: the library is imported inside the
command bodies so ``magray --help`` stays fast.

Tasks without an action are manual: ``run`` never executes them; it leaves
them ready (and everything after them pending) and lists them, so you finish
them with ``magray todo done ID``. Tasks with an action are run through the
magray-tools registry under the ``[tools]`` sandbox policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from magray.cli._context import AppContext, json_option, pass_app

if TYPE_CHECKING:
    from magray.todo import Change, ProgressEvent, Task, TodoStore

STATUSES = ["pending", "ready", "running", "done", "failed", "cancelled", "blocked", "skipped"]
_STYLE = {
    "pending": "dim",
    "ready": "cyan",
    "running": "yellow",
    "done": "green",
    "failed": "bold red",
    "cancelled": "dim strike",
    "blocked": "red",
    "skipped": "magenta",
}


# ---------------------------------------------------------------- helpers
def _open(app: AppContext) -> TodoStore:
    from magray.todo import TodoStore

    db = click.get_current_context().find_root().meta.get("magray.todo.db")
    return TodoStore(db, settings=app.settings.todo)


def _emit(data: Any) -> None:
    from magray.cli._output import emit_json

    emit_json(data)


def _changes(changes: list[Change]) -> list[dict[str, Any]]:
    return [{"task_id": c.task_id, "from": c.old.value, "to": c.new.value} for c in changes]


def _styled(status: str) -> Any:
    from rich.text import Text

    return Text(status, style=_STYLE.get(status, ""))


def _parse_json(value: str | None, what: str) -> Any:
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


def _parse_due(value: str | None) -> datetime | None:
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


def _parse_seconds(value: str | None, what: str) -> float | None:
    if value is None or value.lower() == "none" or (what == "--timeout" and value == "0"):
        return None
    try:
        return float(value)
    except ValueError:
        from magray.todo import TodoInputError

        raise TodoInputError(f"{what} must be seconds (e.g. 30 or 2.5) or 'none'") from None


def _action(tool: str | None, args: str | None) -> Any:
    from magray.todo import Action, TodoInputError

    if tool is None:
        if args is not None:
            raise TodoInputError("--args needs --action TOOL")
        return None
    parsed = _parse_json(args, "--args") if args is not None else {}
    if not isinstance(parsed, dict):
        raise TodoInputError("--args must be a JSON object", hint="""e.g. '{"path": "x"}'""")
    _check_tool(tool, parsed)
    return Action(tool, parsed)


def _check_tool(name: str, args: dict[str, Any]) -> None:
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


def _print_task_line(verb: str, task: Task) -> None:
    from rich.text import Text

    from magray.cli._output import console

    line = Text(f"{verb} #{task.id} ")
    line.append(task.title, style="bold")
    line.append(" [")
    line.append_text(_styled(task.status.value))
    line.append("]")
    console().print(line)


def _print_changes(changes: list[Change], *, skip: int | None = None) -> None:
    from rich.text import Text

    from magray.cli._output import console

    out = console()
    for change in changes:
        if change.task_id == skip:
            continue
        line = Text(f"  #{change.task_id}: {change.old.value} -> ")
        line.append_text(_styled(change.new.value))
        out.print(line)


# ---------------------------------------------------------------- group
@click.group()
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Task database (default: todo.path setting, else <data dir>/todo.db).",
)
@click.pass_context
def todo(ctx: click.Context, db: Path | None) -> None:
    """A persistent task DAG: add tasks with dependencies, then run or tick them off.

    \b
    magray todo add "fetch data" --action web_fetch --args '{"url": "https://example.org"}'
    magray todo add "write summary" --after 1
    magray todo list --tree
    magray todo run
    magray todo done 2
    """
    if db is not None:
        ctx.find_root().meta["magray.todo.db"] = db.expanduser()


_task_options: list[Callable[[Any], Any]] = [
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


def _with_task_options(func: Any) -> Any:
    for option in reversed(_task_options):
        func = option(func)
    return func


@todo.command("add")
@click.argument("title")
@_with_task_options
@click.option("-a", "--after", "after", type=int, multiple=True, help="Depends on ID (repeatable).")
@click.option("--idempotent", is_flag=True, help="Safe to re-run after a crash interrupted it.")
@json_option
@pass_app
def todo_add(
    app: AppContext,
    *,
    title: str,
    description: str | None,
    priority: int | None,
    tags: tuple[str, ...],
    due: str | None,
    timeout: str | None,
    estimate: str | None,
    max_attempts: int | None,
    tool: str | None,
    args: str | None,
    after: tuple[int, ...],
    idempotent: bool,
) -> None:
    """Add a task (ready at once unless it depends on unfinished tasks)."""
    with _open(app) as store:
        task = store.add(
            title,
            description=description or "",
            priority=priority or 0,
            tags=tags,
            due=_parse_due(due),
            timeout=_parse_seconds(timeout, "--timeout"),
            estimate=_parse_seconds(estimate, "--estimate"),
            max_attempts=max_attempts,
            action=_action(tool, args),
            idempotent=idempotent,
            depends_on=after,
        )
    if app.json:
        _emit(task.to_dict())
    else:
        _print_task_line("added", task)


@todo.command("list")
@click.option(
    "-s",
    "--status",
    "statuses",
    type=click.Choice(STATUSES),
    multiple=True,
    help="Only these statuses (repeatable).",
)
@click.option("-t", "--tag", default=None, help="Only tasks with this tag.")
@click.option("--all", "show_all", is_flag=True, help="Include done and cancelled tasks.")
@click.option("--tree", is_flag=True, help="Show dependencies as a tree.")
@click.option("--limit", type=int, default=None, help="At most this many tasks.")
@json_option
@pass_app
def todo_list(
    app: AppContext,
    *,
    statuses: tuple[str, ...],
    tag: str | None,
    show_all: bool,
    tree: bool,
    limit: int | None,
) -> None:
    """List tasks (unfinished and failed ones unless --all or --status)."""
    with _open(app) as store:
        wanted: list[str] | None = list(statuses) or None
        if wanted is None and not show_all:
            wanted = [s for s in STATUSES if s not in ("done", "cancelled")]
        tasks = store.tasks(status=wanted, tag=tag, limit=limit)
        edges = store.edges()
        counts = store.counts()
    deps: dict[int, list[int]] = {}
    for task_id, dep in edges:
        deps.setdefault(task_id, []).append(dep)
    if app.json:
        _emit([{**t.to_dict(), "depends_on": sorted(deps.get(t.id, []))} for t in tasks])
        return
    from magray.cli._output import console

    out = console()
    if not tasks:
        total = sum(counts.values())
        hint = " (--all shows finished ones)" if total and not show_all else ""
        out.print(f"no tasks{hint}" if total else "no tasks yet: `magray todo add TITLE`")
        return
    if tree:
        _print_tree(tasks, edges)
    else:
        _print_table(tasks, deps)
    summary = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    out.print(f"[dim]{summary}[/]")


def _print_table(tasks: list[Task], deps: dict[int, list[int]]) -> None:
    from rich.table import Table
    from rich.text import Text

    from magray.cli._output import console

    table = Table(show_edge=False, header_style="bold")
    for column in ("id", "status", "pri", "title", "after", "tags", "action"):
        table.add_column(column, overflow="fold")
    for task in tasks:
        status = _styled(task.status.value)
        if task.not_before is not None and task.status.value == "ready":
            status.append(" (retry)", style="dim")
        table.add_row(
            str(task.id),
            status,
            str(task.priority) if task.priority else "",
            Text(task.title),
            Text(" ".join(f"#{d}" for d in sorted(deps.get(task.id, [])))),
            Text(", ".join(task.tags)),
            Text(task.action.tool if task.action else "manual", style="dim"),
        )
    console().print(table)


def _print_tree(tasks: list[Task], edges: list[tuple[int, int]]) -> None:
    """Each task under the tasks it depends on; one with several parents shows under each.

    Rendered without recursion, so a chain of any length prints. Past a depth
    that would leave the titles no room, lines stop indenting and carry their
    depth instead (``↳ [57] #58 ...``).
    """
    from rich.text import Text

    from magray.cli._output import console

    out = console()
    shown = {t.id: t for t in tasks}
    children: dict[int, list[int]] = {}
    has_parent: set[int] = set()
    for task_id, dep in sorted(edges):
        if task_id in shown and dep in shown:
            children.setdefault(dep, []).append(task_id)
            has_parent.add(task_id)
    max_indent = max(16, out.width - 40)  # leave the titles at least 40 columns
    lines: list[Text] = []
    expanded: set[int] = set()
    roots = [t.id for t in tasks if t.id not in has_parent]
    # (task, prefix of its guide, last among its siblings, depth)
    stack: list[tuple[int, str, bool, int]] = [(r, "", True, 0) for r in reversed(roots)]
    while stack:
        task_id, prefix, last, depth = stack.pop()
        again = task_id in expanded
        if depth == 0:
            guide, below = "", ""
        elif len(prefix) >= max_indent:
            guide, below = f"{prefix}↳ [{depth}] ", prefix
        else:
            guide = prefix + ("└── " if last else "├── ")
            below = prefix + ("    " if last else "│   ")
        line = Text(guide, style="dim")
        task = shown[task_id]
        line.append(f"#{task.id} ")
        line.append_text(_styled(task.status.value))
        line.append(" ")
        line.append(task.title)
        if again:
            line.append("  (shown above)", style="dim")
        lines.append(line)
        if again:
            continue
        expanded.add(task_id)
        kids = children.get(task_id, [])
        for index in range(len(kids) - 1, -1, -1):
            stack.append((kids[index], below, index == len(kids) - 1, depth + 1))
    out.print(Text("\n").join(lines), soft_wrap=True)


@todo.command("show")
@click.argument("task_id", type=int)
@json_option
@pass_app
def todo_show(app: AppContext, task_id: int) -> None:
    """Show everything about one task."""
    with _open(app) as store:
        task = store.get(task_id)
        depends_on = store.dependencies(task_id)
        dependents = store.dependents(task_id)
        titles = {t.id: t for t in store.tasks(ids=[*depends_on, *dependents])}
    if app.json:
        _emit({**task.to_dict(), "depends_on": depends_on, "dependents": dependents})
        return
    from rich.text import Text

    from magray.cli._output import console

    out = console()
    head = Text(f"#{task.id} ")
    head.append(task.title, style="bold")
    out.print(head)
    rows: list[tuple[str, Any]] = [
        ("status", _styled(task.status.value)),
        ("priority", task.priority),
        ("tags", ", ".join(task.tags)),
        ("action", f"{task.action.tool} {json.dumps(task.action.args)}" if task.action else ""),
        ("attempts", f"{task.attempts}/{task.max_attempts}"),
        ("timeout", f"{task.timeout:g}s" if task.timeout else ""),
        ("estimate", f"{task.estimate:g}s" if task.estimate is not None else ""),
        ("idempotent", "yes" if task.idempotent else ""),
        ("due", task.due.astimezone().isoformat(timespec="minutes") if task.due else ""),
        ("created", _when(task.created)),
        ("started", _when(task.started)),
        ("finished", _when(task.finished)),
        ("retry at", _when(task.not_before)),
        (
            "cause",
            f"#{task.cause} (its failure or cancellation stopped this one)" if task.cause else "",
        ),
        ("error", task.error or ""),
        (
            "result",
            _short(json.dumps(task.result, ensure_ascii=False)) if task.result is not None else "",
        ),
    ]
    for key, value in rows:
        if value in ("", None):
            continue
        line = Text(f"  {key:<11}", style="dim")
        line.append_text(value if isinstance(value, Text) else Text(str(value)))
        out.print(line)
    for name, ids in (("after", depends_on), ("before", dependents)):
        for other in ids:
            line = Text(f"  {name:<11}", style="dim")
            line.append(f"#{other} ")
            if other in titles:
                line.append_text(_styled(titles[other].status.value))
                line.append(f" {titles[other].title}")
            out.print(line)
    if task.description:
        out.print(Text(task.description))


def _short(text: str, limit: int = 400) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters; --json shows all)"


def _when(value: datetime | None) -> str:
    return value.astimezone().isoformat(timespec="seconds") if value else ""


@todo.command("edit")
@click.argument("task_id", type=int)
@click.option("--title", default=None, help="New title.")
@_with_task_options
@click.option("--idempotent/--not-idempotent", default=None, help="Safe to re-run after a crash.")
@click.option("--no-action", is_flag=True, help="Remove the action (make it manual).")
@json_option
@pass_app
def todo_edit(
    app: AppContext,
    *,
    task_id: int,
    title: str | None,
    description: str | None,
    priority: int | None,
    tags: tuple[str, ...],
    due: str | None,
    timeout: str | None,
    estimate: str | None,
    max_attempts: int | None,
    tool: str | None,
    args: str | None,
    idempotent: bool | None,
    no_action: bool,
) -> None:
    """Change a task's fields (only those given; 'none' clears --due/--timeout/--estimate)."""
    from magray.todo import TodoInputError

    changes: dict[str, Any] = {}
    if title is not None:
        changes["title"] = title
    if description is not None:
        changes["description"] = description
    if priority is not None:
        changes["priority"] = priority
    if tags:
        changes["tags"] = tags
    if due is not None:
        changes["due"] = _parse_due(due)
    if timeout is not None:
        changes["timeout"] = _parse_seconds(timeout, "--timeout")
    if estimate is not None:
        changes["estimate"] = _parse_seconds(estimate, "--estimate")
    if max_attempts is not None:
        changes["max_attempts"] = max_attempts
    if idempotent is not None:
        changes["idempotent"] = idempotent
    if no_action:
        if tool is not None:
            raise TodoInputError("--no-action and --action contradict each other")
        changes["action"] = None
    elif tool is not None:
        changes["action"] = _action(tool, args)
    elif args is not None:
        with _open(app) as store:
            current = store.get(task_id).action
        if current is None:
            raise TodoInputError(f"task #{task_id} has no action", hint="give --action TOOL too")
        changes["action"] = _action(current.tool, args)
    if not changes:
        raise TodoInputError("nothing to change", hint="`magray todo edit --help` lists options")
    with _open(app) as store:
        task = store.update(task_id, **changes)
    if app.json:
        _emit(task.to_dict())
    else:
        _print_task_line("edited", task)


def _transition(app: AppContext, verb: str, task_id: int, call: Callable[[TodoStore], Any]) -> None:
    with _open(app) as store:
        changes = call(store)
        task = store.get(task_id)
    if app.json:
        _emit({"task": task.to_dict(), "changes": _changes(changes)})
        return
    _print_task_line(verb, task)
    _print_changes(changes, skip=task_id)


@todo.command("done")
@click.argument("task_id", type=int)
@click.option("--result", default=None, help="Result to record, as JSON.")
@json_option
@pass_app
def todo_done(app: AppContext, task_id: int, result: str | None) -> None:
    """Mark a task done; tasks waiting only on it become ready."""
    value = _parse_json(result, "--result")
    _transition(app, "done", task_id, lambda s: s.mark_done(task_id, result=value))


@todo.command("fail")
@click.argument("task_id", type=int)
@click.option("--error", default="failed by hand", help="Why it failed.")
@json_option
@pass_app
def todo_fail(app: AppContext, task_id: int, error: str) -> None:
    """Mark a task failed; its dependents are blocked (or skipped, by policy)."""
    _transition(app, "failed", task_id, lambda s: s.fail(task_id, error))


@todo.command("cancel")
@click.argument("task_id", type=int)
@json_option
@pass_app
def todo_cancel(app: AppContext, task_id: int) -> None:
    """Cancel a task and everything after it that has not finished."""
    _transition(app, "cancelled", task_id, lambda s: s.cancel(task_id))


@todo.command("retry")
@click.argument("task_id", type=int)
@json_option
@pass_app
def todo_retry(app: AppContext, task_id: int) -> None:
    """Re-open a failed/cancelled task and the chain it blocked (attempts restart)."""
    _transition(app, "re-opened", task_id, lambda s: s.retry(task_id))


@todo.group("dep")
def todo_dep() -> None:
    """Add or remove dependencies (cycles are refused)."""


@todo_dep.command("add")
@click.argument("task_id", type=int)
@click.argument("depends_on", type=int, nargs=-1, required=True)
@json_option
@pass_app
def todo_dep_add(app: AppContext, task_id: int, depends_on: tuple[int, ...]) -> None:
    """Make TASK_ID wait for each DEPENDS_ON task."""
    with _open(app) as store:
        changes = store.add_dependencies([(task_id, d) for d in depends_on])
        task = store.get(task_id)
        deps = store.dependencies(task_id)
    if app.json:
        _emit({"task": task.to_dict(), "depends_on": deps, "changes": _changes(changes)})
        return
    _print_task_line("updated", task)
    click.echo(f"  after: {' '.join(f'#{d}' for d in deps)}")


@todo_dep.command("rm")
@click.argument("task_id", type=int)
@click.argument("depends_on", type=int)
@json_option
@pass_app
def todo_dep_rm(app: AppContext, task_id: int, depends_on: int) -> None:
    """Remove the dependency of TASK_ID on DEPENDS_ON."""
    with _open(app) as store:
        removed = store.remove_dependency(task_id, depends_on)
        task = store.get(task_id)
        deps = store.dependencies(task_id)
    if app.json:
        _emit({"task": task.to_dict(), "depends_on": deps, "removed": removed})
        return
    if not removed:
        click.echo(f"#{task_id} did not depend on #{depends_on}", err=True)
    _print_task_line("updated", task)


@todo.command("graph")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "json"]),
    default="mermaid",
    show_default=True,
)
@click.option("--root", type=int, default=None, help="Only this task and what is connected.")
@click.option(
    "--direction",
    type=click.Choice(["down", "up", "both"]),
    default="down",
    show_default=True,
    help="With --root: its dependents (down), its dependencies (up) or both.",
)
@click.option("--all", "show_all", is_flag=True, help="Include done and cancelled tasks.")
@click.option("--critical", is_flag=True, help="Print the critical path instead.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@json_option
@pass_app
def todo_graph(
    app: AppContext,
    *,
    fmt: str,
    root: int | None,
    direction: str,
    show_all: bool,
    critical: bool,
    output: Path | None,
) -> None:
    """Export the task graph as Mermaid, Graphviz DOT or JSON.

    \b
    magray todo graph > plan.mmd
    magray todo graph -f dot | dot -Tsvg > plan.svg
    """
    with _open(app) as store:
        graph = store.graph()
    if root is not None:
        graph = graph.subgraph(root, direction=direction)  # type: ignore[arg-type]
    elif not show_all:
        from magray.todo import TaskGraph

        keep = [t for t in graph.tasks.values() if t.status.value not in ("done", "cancelled")]
        graph = TaskGraph(keep, graph.edges())
    if not len(graph):
        click.echo("no unfinished tasks (--all includes finished ones)", err=True)
    if critical:
        path = graph.critical_path(include_done=show_all)
        if app.json:
            _emit(path.to_dict())
            return
        if not path.tasks:
            return
        for task_id in path.tasks:
            task = graph.tasks[task_id]
            estimate = f"{task.estimate:g}s" if task.estimate is not None else "1 (no estimate)"
            click.echo(f"#{task_id} {task.title}  [{task.status.value}, {estimate}]")
        click.echo(f"total: {path.weight:g}")
        return
    text = graph.export(fmt)  # type: ignore[arg-type]
    if output is not None:
        from magray.common.fs import atomic_write_text

        atomic_write_text(output, text, mode=0o644)
        if app.json:
            _emit({"format": fmt, "path": str(output), "tasks": len(graph)})
        else:
            click.echo(f"wrote {len(graph)} tasks as {fmt} to {output}", err=True)
        return
    if app.json and fmt != "json":
        _emit({"format": fmt, "text": text})
    else:
        click.echo(text, nl=False)


@todo.command("run")
@click.option("-w", "--workers", type=int, default=None, help="Parallel tasks (todo.max_workers).")
@click.option("--task", "targets", type=int, multiple=True, help="Only this task and its deps.")
@click.option("--timeout", default=None, help="Seconds per attempt for tasks without their own.")
@click.option("--yes", is_flag=True, help="Approve tool calls the policy would ask about.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@json_option
@pass_app
def todo_run(
    app: AppContext,
    *,
    workers: int | None,
    targets: tuple[int, ...],
    timeout: str | None,
    yes: bool,
    quiet: bool,
) -> None:
    """Run every ready task that has an action, in parallel, until nothing more can run.

    Tasks without an action are manual: they are left for `magray todo done`
    (their dependents wait). A run that is killed resumes with `run` again:
    idempotent tasks it interrupted are re-run, others are marked failed
    with an explanation. Exit status 1 if any task failed or is blocked.
    """
    from magray.todo import Executor

    settings = app.settings
    runner = _tool_runner(settings, assume_yes=yes)
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["default_timeout"] = _parse_seconds(timeout, "--timeout")
    with _open(app) as store:
        executor = Executor(store, runner, max_workers=workers, with_action=True, **kwargs)
        display = None if quiet else _Progress(app.json)
        if display is not None:
            executor.subscribe(display)
        try:
            report = executor.run(tasks=targets or None)
        finally:
            if display is not None:
                display.close()
        waiting = store.tasks(ids=report.waiting) if report.waiting else []
    if app.json:
        _emit(report.to_dict())
    else:
        _print_report(report, waiting)
    if not report.ok:
        raise SystemExit(1)


def _tool_runner(settings: Any, *, assume_yes: bool) -> Callable[[Task], Any]:
    """Run a task's action as a magray-tools call under the sandbox policy."""
    from magray.todo import current_attempt
    from magray.tools import Policy, ToolContext, ToolRegistry, approve_all, deny_all

    registry = ToolRegistry.from_entry_points()
    policy = Policy.from_settings(settings.tools, cwd=Path.cwd(), assume_yes=assume_yes or None)
    confirm = approve_all if assume_yes else deny_all

    def run(task: Task) -> Any:
        assert task.action is not None  # the executor only claims tasks with actions
        attempt = current_attempt()
        # The task's lock goes to every process the tool starts: while one lives, no
        # later run starts this task again, even if this process is killed.
        fds = attempt.pass_fds if attempt is not None else ()
        ctx = ToolContext(policy=policy, confirm=confirm, pass_fds=fds)
        if attempt is not None:  # a timeout or Ctrl-C cancels the tool call too
            attempt.on_cancel(ctx.cancel.cancel)
        result = registry.call(task.action.tool, task.action.args, ctx).raise_for_error()
        return {"content": result.content, "data": result.data, "truncated": result.truncated}

    return run


class _Progress:
    """Progress on stderr: a live bar on a terminal, one line per event otherwise."""

    def __init__(self, as_json: bool) -> None:
        from magray.cli._output import console

        self.console = console(stderr=True)
        self.as_json = as_json
        self.bar: Any = None
        self.bar_task: Any = None
        if self.console.is_terminal and not as_json:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]todo[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.bar.start()
            self.bar_task = self.bar.add_task("run", total=None, info="")

    def __call__(self, event: ProgressEvent) -> None:
        from rich.text import Text

        kind = event.kind.value
        if self.bar is not None:
            running = event.counts.get("running", 0)
            self.bar.update(
                self.bar_task,
                total=event.total,
                completed=event.finished,
                info=f"{running} running",
                refresh=kind in ("run_started", "run_finished"),
            )
        task = event.task
        if task is None:
            return
        marks = {
            "task_started": ("▶", "yellow", ""),
            "task_succeeded": ("✓", "green", _secs(event.duration)),
            "task_retrying": ("↻", "yellow", f"retry in {_secs(event.retry_in)}: {event.error}"),
            "task_failed": ("✗", "red", event.error or ""),
            "task_reset": ("⟲", "magenta", "left running by a dead run; reset"),
            "task_discarded": ("–", "dim", "changed during the attempt; result dropped"),
            "task_held": ("⏸", "magenta", event.error or "held by another process"),
        }
        if kind not in marks or (kind == "task_started" and self.bar is None and self.as_json):
            return
        mark, style, note = marks[kind]
        line = Text(f"{mark} ", style=style)
        line.append(f"#{task.id} {task.title}")
        if note:
            line.append(f"  {note}", style="dim")
        if self.bar is not None:
            self.bar.console.print(line)
        else:
            self.console.print(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _secs(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"


def _print_report(report: Any, waiting: list[Task]) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in report.counts.items() if n)
    click.echo(
        f"run {report.run_id}: {report.succeeded} done, {report.failed} failed, "
        f"{report.retried} retried in {report.elapsed:.1f}s ({counts or 'no tasks'})"
    )
    if report.reset:
        click.echo(f"reset {report.reset} task(s) left running by an earlier run")
    if waiting:
        click.echo(f"{len(waiting)} manual task(s) wait for you (`magray todo done ID`):")
        for task in waiting:
            click.echo(f"  #{task.id} {task.title}")
    if report.stopped:
        click.echo("stopped before the end; `magray todo run` continues")


@todo.command("clear")
@click.option("--all", "everything", is_flag=True, help="Delete every task (asks first).")
@click.option(
    "-s",
    "--status",
    "statuses",
    type=click.Choice(STATUSES),
    multiple=True,
    help="Delete tasks in these statuses (default: done and cancelled).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
def todo_clear(app: AppContext, everything: bool, statuses: tuple[str, ...], yes: bool) -> None:
    """Delete finished tasks (done and cancelled), or every task with --all."""
    from magray.todo import TodoInputError

    if everything and statuses:
        raise TodoInputError("--all and --status contradict each other")
    with _open(app) as store:
        if everything and not yes:
            total = sum(store.counts().values())
            if not click.confirm(f"delete all {total} tasks in {store.path}?", err=True):
                raise click.Abort()
        deleted = store.clear(
            statuses=None if everything else (list(statuses) or ["done", "cancelled"])
        )
    if app.json:
        _emit({"deleted": deleted})
    else:
        click.echo(f"deleted {deleted} task(s)")
