"""``magray todo check``: find (and with ``--repair`` rebuild) a damaged task database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from magray.cli._context import AppContext, json_option, pass_app
from magray.cli.commands._todo_helpers import emit_json_data

__all__ = ["todo_check"]


@click.command("check")
@click.option(
    "--repair",
    is_flag=True,
    help="Copy every readable task into a new database (same ids) and keep the damaged "
    "file beside it as todo.db.damaged-<time>.",
)
@json_option
@pass_app
def todo_check(app: AppContext, repair: bool) -> None:
    """Check the task database for damage.

    Runs SQLite's integrity_check on a private copy (the database is only read).
    With --repair a damaged database is rebuilt from what still reads: tasks on a
    damaged page are lost and reported, dependencies on them are dropped, and the
    statuses of the rest settle again. Stop `magray todo run` first. Exits with
    status 1 while the database is damaged.

    \b
    Examples:
      magray todo check
      magray todo check --repair --json
    """
    from magray.todo import check_database, default_path, repair_database

    db = click.get_current_context().find_root().meta.get("magray.todo.db")
    path = Path(db) if db is not None else default_path(app.settings.todo)
    found = check_database(path)
    report: dict[str, Any] = {"check": found.to_dict(), "repair": None}
    ok = found.ok
    if repair and not found.ok:
        repaired = repair_database(path, policy=app.settings.todo.on_failure)
        report["repair"] = repaired.to_dict()
        ok = check_database(path).ok
    report["ok"] = ok
    if app.json:
        emit_json_data(report)
    else:
        _render(report)
    if not ok:
        click.get_current_context().exit(1)


def _render(report: dict[str, Any]) -> None:
    check, repair = report["check"], report["repair"]
    click.echo(f"database  {check['path']}")
    if not check["exists"]:
        click.echo("result    ok (no task database yet; created on first use)")
        return
    tasks = "unreadable" if check["tasks"] is None else check["tasks"]
    click.echo(f"tasks     {tasks}")
    for problem in check["problems"][:5]:
        click.echo(f"problem   {problem}")
    if repair is not None:
        click.echo(
            f"repaired  {repair['tasks_saved']} task(s) kept, {repair['tasks_lost']} lost; "
            f"{repair['dependencies_saved']} dependencies kept, "
            f"{repair['dependencies_dropped']} dropped"
        )
        if repair["lost_ids"]:
            spans = ", ".join(f"#{a}" if a == b else f"#{a}-#{b}" for a, b in repair["lost_ids"])
            click.echo(f"lost ids  {spans}")
        click.echo(f"kept      the damaged file as {repair['damaged_file']}")
    if report["ok"]:
        click.echo("result    ok")
    elif repair is None:
        click.echo("result    damaged: `magray todo check --repair` keeps every task that reads")
    else:
        click.echo("result    still damaged: restore the database from a backup")
