"""``magray todo list|show|graph``: the task list as a table or tree, one task, the DAG."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from magray.cli._context import AppContext, json_option, pass_app
from magray.cli.commands._todo_helpers import (
    STATUSES,
    emit_json_data,
    open_todo,
    status_option,
    styled,
)

if TYPE_CHECKING:
    from magray.todo import Task

__all__ = ["todo_list", "todo_show", "todo_graph"]


@click.command("list")
@status_option("Only these statuses (repeatable).")
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
    with open_todo(app) as store:
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
        emit_json_data([{**t.to_dict(), "depends_on": sorted(deps.get(t.id, []))} for t in tasks])
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
        status = styled(task.status.value)
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
        line.append_text(styled(task.status.value))
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


@click.command("show")
@click.argument("task_id", type=int)
@json_option
@pass_app
def todo_show(app: AppContext, task_id: int) -> None:
    """Show everything about one task."""
    with open_todo(app) as store:
        task = store.get(task_id)
        depends_on = store.dependencies(task_id)
        dependents = store.dependents(task_id)
        titles = {t.id: t for t in store.tasks(ids=[*depends_on, *dependents])}
    if app.json:
        emit_json_data({**task.to_dict(), "depends_on": depends_on, "dependents": dependents})
        return
    from rich.text import Text

    from magray.cli._output import console

    out = console()
    head = Text(f"#{task.id} ")
    head.append(task.title, style="bold")
    out.print(head)
    rows: list[tuple[str, Any]] = [
        ("status", styled(task.status.value)),
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
                line.append_text(styled(titles[other].status.value))
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


@click.command("graph")
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
    with open_todo(app) as store:
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
            emit_json_data(path.to_dict())
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
            emit_json_data({"format": fmt, "path": str(output), "tasks": len(graph)})
        else:
            click.echo(f"wrote {len(graph)} tasks as {fmt} to {output}", err=True)
        return
    if app.json and fmt != "json":
        emit_json_data({"format": fmt, "text": text})
    else:
        click.echo(text, nl=False)
