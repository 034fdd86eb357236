"""``magray todo run``: run ready tasks through the tools, with live progress."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from magray.cli._context import AppContext, json_option, pass_app
from magray.cli.commands._todo_helpers import (
    emit_json_data,
    open_todo,
    parse_seconds,
)

if TYPE_CHECKING:
    from magray.todo import ProgressEvent, Task

__all__ = ["todo_run"]


@click.command("run")
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
        kwargs["default_timeout"] = parse_seconds(timeout, "--timeout")
    with open_todo(app) as store:
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
        emit_json_data(report.to_dict())
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
