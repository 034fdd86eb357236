"""``magray memory check``: find (and with ``--repair`` fix) damage in a memory store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from magray.cli._context import AppContext, json_option, pass_app
from magray.cli.commands._memory_helpers import shown, store_path

__all__ = ["memory_check"]


@click.command("check")
@click.option(
    "--repair",
    is_flag=True,
    help="Rebuild a damaged index from SQLite; accept a database that is missing or behind "
    "its index as it is and report what was lost.",
)
@json_option
@pass_app
def memory_check(app: AppContext, repair: bool) -> None:
    """Check the store for damage.

    Runs SQLite's integrity_check, verifies the checksum of every saved index file, and
    compares the index with the database record by record and vector by vector. Exits
    with status 1 while a problem remains.

    \b
    Examples:
      magray memory check
      magray memory check --repair --json
    """
    from magray.common.errors import NotFoundError
    from magray.memory import MemoryStore
    from magray.memory.errors import (
        DatabaseMissingError,
        DatabaseRegressedError,
        StoreCorruptError,
    )

    location = store_path(app)
    if isinstance(location, Path) and not (
        (location / "memory.db").exists() or (location / "index" / "manifest.json").exists()
    ):
        raise NotFoundError(
            f"no memory store at {location}",
            hint='add a memory first: magray memory add "some text"',
            code="memory.no_store",
        )
    try:
        store = MemoryStore.open(location, None, settings=app.settings.memory, recover=repair)
    except (DatabaseMissingError, DatabaseRegressedError) as exc:
        report: dict[str, Any] = {
            "path": shown(location),
            "ok": False,
            "problems": [exc.message],
            "error": exc.to_dict(),
            "repaired": [],
        }
    except StoreCorruptError as exc:
        report = _damaged_database(location, exc)
    else:
        try:
            with store:
                report = store.check(repair=repair)
        except StoreCorruptError as exc:
            report = _damaged_database(location, exc)
    _render(app, report, repair=repair)
    if not report["ok"]:
        click.get_current_context().exit(1)


def _damaged_database(location: Any, exc: Any) -> dict[str, Any]:
    """The report for a database SQLite says is damaged: its integrity_check findings,
    read from a private copy (the store's files are only read)."""
    from magray.common.salvage import damaged_copy, integrity_problems

    problems = [exc.message]
    database = Path(str(location)) / "memory.db"
    if database.is_file():
        with damaged_copy(database) as conn:
            problems += [f"integrity_check: {p}" for p in integrity_problems(conn, limit=10)]
    error = exc.to_dict()
    error["hint"] = (
        "the database file is damaged: restore memory.db from a backup (`magray memory "
        "backup` makes one); --repair cannot rebuild records from a damaged database yet"
    )
    return {
        "path": shown(location),
        "ok": False,
        "problems": problems,
        "error": error,
        "repaired": [],
    }


def _render(app: AppContext, report: dict[str, Any], *, repair: bool) -> None:
    from magray.cli._output import emit_json, print_table

    if app.json:
        emit_json(report)
        return
    click.echo(f"store      {report['path']}")
    error = report.get("error")
    if error is not None:
        click.echo(f"database   {error['code']}: {error['message']}")
        for problem in report.get("problems", [])[1:]:
            click.echo(f"problem    {problem}")
        click.echo(f"hint       {error['hint']}")
        return
    integrity = report.get("integrity", ["ok"])
    click.echo(f"database   integrity {'ok' if integrity == ['ok'] else integrity[0]}")
    status = report.get("index_status", {})
    reason = f" ({status['reason']})" if status.get("reason") else ""
    click.echo(f"index      {status.get('index', '-')}{reason}")
    checksums = report.get("checksums", [])
    click.echo(f"checksums  {'ok' if not checksums else f'{len(checksums)} file(s) damaged'}")
    recovered = report.get("recovered")
    if recovered:
        click.echo(
            f"recovered  {recovered['lost_records']} record(s) the index knew are not in the "
            f"database ({recovered['reason']})"
        )
    print_table(
        ["layer", "records", "indexed", "not indexed", "unknown to db", "vectors differ"],
        [
            (
                name,
                c["records"],
                c["indexed"],
                c.get("missing_in_index", "-"),
                c.get("unknown_to_db", "-"),
                c.get("vectors_differ", "-"),
            )
            for name, c in report["layers"].items()
        ],
    )
    for event in report.get("damage_events", [])[:3]:
        what = event["details"].get("reason", "")
        click.echo(f"earlier    {event['event']}: {what}")
    for line in report.get("repaired", []):
        click.echo(f"repaired   {line}")
    if report["ok"]:
        click.echo("result     ok")
        return
    for problem in report.get("problems", []):
        click.echo(f"problem    {problem}")
    if not repair:
        click.echo("result     damaged: `magray memory check --repair` rebuilds the index")
    else:
        click.echo("result     still damaged: restore memory.db from a backup")
