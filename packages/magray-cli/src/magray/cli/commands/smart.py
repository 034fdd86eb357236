"""``magray smart TASK``: plan a task into tool steps (a todo DAG) and run them."""

from __future__ import annotations

import sys

import click

from magray.cli._complete import complete_llm_models
from magray.cli._context import AppContext, json_option, pass_app


@click.command()
@click.argument("task", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Show the plan only; run nothing.")
@click.option("-y", "--yes", is_flag=True, help="Approve tool calls the sandbox asks about.")
@click.option("--no-memory", is_flag=True, help="Do not store this task in memory.")
@click.option(
    "--model",
    default=None,
    shell_complete=complete_llm_models,
    help="Plan with only this configured model.",
)
@click.option("--plain", is_flag=True, help="Print raw text, no markdown rendering.")
@json_option
@pass_app
def smart(
    app: AppContext,
    *,
    task: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    no_memory: bool,
    model: str | None,
    plain: bool,
) -> None:
    """Plan TASK into tool steps and run them, in parallel where independent.

    The steps become tasks with dependencies (tagged `smart`) in their own
    task database (router.plan_db, default <data>/smart.db). Failed steps are
    retried; with a language model a failed plan is remade once. Progress goes
    to stderr, the summary to stdout. Exit code 1 when a step still failed, 2
    when the task is empty or its plan cannot run (with --dry-run too).
    """
    from magray.cli._output import emit_json
    from magray.cli.commands._assist import Renderer, build_router

    text = " ".join(task).strip()
    markdown = not plain and sys.stdout.isatty()
    renderer = Renderer(stream=False, markdown=markdown, quiet=app.json)
    with build_router(app, no_memory=no_memory, yes=yes, model=model) as router:
        renderer.start("planning…")
        try:
            report = router.smart(text, dry_run=dry_run, on_event=renderer)
        finally:
            renderer.abort()
        summary = router.summarize(report)
        if not dry_run and router.store_interactions:
            router.remember(
                f"Task: {text}\nOutcome: {summary}"[:4000],
                metadata={"kind": "smart", "ok": report.ok},
            )
    if app.json:
        emit_json({**report.to_dict(), "summary": summary})
    elif markdown:
        from rich.markdown import Markdown

        from magray.cli._output import console

        console().print(Markdown(summary))
    else:
        click.echo(summary)
    if dry_run:  # a plan the real run would refuse exits 2 here too
        report.raise_for_problems()
    if report.executed and not report.ok:
        sys.exit(1)
