"""``magray todo add|list|show|edit|done|fail|cancel|retry|dep|graph|run|clear``.

A thin wrapper over :mod:`magray.todo`: the library is imported inside the
command bodies so ``magray --help`` stays fast.

Tasks without an action are manual: ``run`` never executes them; it leaves
them ready (and everything after them pending) and lists them, so you finish
them with ``magray todo done ID``. Tasks with an action are run through the
magray-tools registry under the ``[tools]`` sandbox policy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from magray.cli._context import AppContext, json_option, pass_app
from magray.cli.commands._todo_helpers import (
    STATUSES,
    changes_json,
    emit_json_data,
    open_todo,
    parse_action,
    parse_due,
    parse_json,
    parse_seconds,
    print_changes,
    print_task_line,
    status_option,
    with_task_options,
)
from magray.cli.commands.todo_check import todo_check
from magray.cli.commands.todo_run import todo_run
from magray.cli.commands.todo_views import todo_graph, todo_list, todo_show

if TYPE_CHECKING:
    from magray.todo import TodoStore

__all__ = ["STATUSES", "todo"]


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


@todo.command("add")
@click.argument("title")
@with_task_options
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
    with open_todo(app) as store:
        task = store.add(
            title,
            description=description or "",
            priority=priority or 0,
            tags=tags,
            due=parse_due(due),
            timeout=parse_seconds(timeout, "--timeout"),
            estimate=parse_seconds(estimate, "--estimate"),
            max_attempts=max_attempts,
            action=parse_action(tool, args),
            idempotent=idempotent,
            depends_on=after,
        )
    if app.json:
        emit_json_data(task.to_dict())
    else:
        print_task_line("added", task)


@todo.command("edit")
@click.argument("task_id", type=int)
@click.option("--title", default=None, help="New title.")
@with_task_options
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
        changes["due"] = parse_due(due)
    if timeout is not None:
        changes["timeout"] = parse_seconds(timeout, "--timeout")
    if estimate is not None:
        changes["estimate"] = parse_seconds(estimate, "--estimate")
    if max_attempts is not None:
        changes["max_attempts"] = max_attempts
    if idempotent is not None:
        changes["idempotent"] = idempotent
    if no_action:
        if tool is not None:
            raise TodoInputError("--no-action and --action contradict each other")
        changes["action"] = None
    elif tool is not None:
        changes["action"] = parse_action(tool, args)
    elif args is not None:
        with open_todo(app) as store:
            current = store.get(task_id).action
        if current is None:
            raise TodoInputError(f"task #{task_id} has no action", hint="give --action TOOL too")
        changes["action"] = parse_action(current.tool, args)
    if not changes:
        raise TodoInputError("nothing to change", hint="`magray todo edit --help` lists options")
    with open_todo(app) as store:
        task = store.update(task_id, **changes)
    if app.json:
        emit_json_data(task.to_dict())
    else:
        print_task_line("edited", task)


def _transition(app: AppContext, verb: str, task_id: int, call: Callable[[TodoStore], Any]) -> None:
    with open_todo(app) as store:
        changes = call(store)
        task = store.get(task_id)
    if app.json:
        emit_json_data({"task": task.to_dict(), "changes": changes_json(changes)})
        return
    print_task_line(verb, task)
    print_changes(changes, skip=task_id)


@todo.command("done")
@click.argument("task_id", type=int)
@click.option("--result", default=None, help="Result to record, as JSON.")
@json_option
@pass_app
def todo_done(app: AppContext, task_id: int, result: str | None) -> None:
    """Mark a task done; tasks waiting only on it become ready."""
    value = parse_json(result, "--result")
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
    with open_todo(app) as store:
        changes = store.add_dependencies([(task_id, d) for d in depends_on])
        task = store.get(task_id)
        deps = store.dependencies(task_id)
    if app.json:
        emit_json_data(
            {"task": task.to_dict(), "depends_on": deps, "changes": changes_json(changes)}
        )
        return
    print_task_line("updated", task)
    click.echo(f"  after: {' '.join(f'#{d}' for d in deps)}")


@todo_dep.command("rm")
@click.argument("task_id", type=int)
@click.argument("depends_on", type=int)
@json_option
@pass_app
def todo_dep_rm(app: AppContext, task_id: int, depends_on: int) -> None:
    """Remove the dependency of TASK_ID on DEPENDS_ON."""
    with open_todo(app) as store:
        removed = store.remove_dependency(task_id, depends_on)
        task = store.get(task_id)
        deps = store.dependencies(task_id)
    if app.json:
        emit_json_data({"task": task.to_dict(), "depends_on": deps, "removed": removed})
        return
    if not removed:
        click.echo(f"#{task_id} did not depend on #{depends_on}", err=True)
    print_task_line("updated", task)


@todo.command("clear")
@click.option("--all", "everything", is_flag=True, help="Delete every task (asks first).")
@status_option("Delete tasks in these statuses (default: done and cancelled).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
def todo_clear(app: AppContext, everything: bool, statuses: tuple[str, ...], yes: bool) -> None:
    """Delete finished tasks (done and cancelled), or every task with --all."""
    from magray.todo import TodoInputError

    if everything and statuses:
        raise TodoInputError("--all and --status contradict each other")
    with open_todo(app) as store:
        if everything and not yes:
            total = sum(store.counts().values())
            if not click.confirm(f"delete all {total} tasks in {store.path}?", err=True):
                raise click.Abort()
        deleted = store.clear(
            statuses=None if everything else (list(statuses) or ["done", "cancelled"])
        )
    if app.json:
        emit_json_data({"deleted": deleted})
    else:
        click.echo(f"deleted {deleted} task(s)")


for _command in (todo_list, todo_show, todo_graph, todo_run, todo_check):
    todo.add_command(_command)
