"""``magray memory promote|expire|explain|history|stats``: layers, scores and the store's state."""

from __future__ import annotations

from typing import Any

import click

from magray.cli._context import AppContext, json_option, pass_app
from magray.cli.commands._memory_helpers import (
    fmt_time,
    open_store,
    require_store,
    shown,
    store_exists,
    store_path,
)

__all__ = ["memory_promote", "memory_expire", "memory_explain", "memory_history", "memory_stats"]


@click.command("promote")
@click.option("--dry-run", is_flag=True, help="Show what would move without moving it.")
@json_option
@pass_app
def memory_promote(app: AppContext, dry_run: bool) -> None:
    """Move memories whose score passes the threshold up one layer."""
    from magray.cli._output import emit_json, print_table

    moves: list[dict[str, Any]] = []
    if store_exists(app):
        with open_store(app, embed=False) as store:
            moves = store.promote(dry_run=dry_run)
    if app.json:
        emit_json({"dry_run": dry_run, "moves": moves})
    elif not moves:
        click.echo("nothing to promote")
    else:
        print_table(
            ["id", "from", "to", "score"],
            [(m["id"], m["from"], m["to"], f"{m['score']:.3f}") for m in moves],
            title="would promote" if dry_run else "promoted",
        )


@click.command("expire")
@click.option("--dry-run", is_flag=True, help="Show what would expire without removing it.")
@click.option("--no-archive", is_flag=True, help="Delete pinned memories too.")
@json_option
@pass_app
def memory_expire(app: AppContext, dry_run: bool, no_archive: bool) -> None:
    """Remove memories past their layer's TTL (pinned ones move to assets)."""
    from magray.cli._output import emit_json

    result: dict[str, list[str]] = {"expired": [], "archived": []}
    if store_exists(app):
        with open_store(app, embed=False) as store:
            result = store.expire(archive_pinned=not no_archive, dry_run=dry_run)
    if app.json:
        emit_json({"dry_run": dry_run, **result})
    else:
        verb = "would expire" if dry_run else "expired"
        click.echo(f"{verb} {len(result['expired'])}, archived {len(result['archived'])}")


@click.command("explain")
@click.argument("record_id")
@json_option
@pass_app
def memory_explain(app: AppContext, record_id: str) -> None:
    """Show a memory's promotion score, its features and what promote/expire would do."""
    from magray.cli._output import emit_json, print_table

    require_store(app)
    with open_store(app, embed=False) as store:
        why = store.explain(record_id)
    if app.json:
        emit_json(why.to_dict())
        return
    print_table(
        ["feature", "value", "weight", "contribution"],
        [
            (
                name,
                f"{why.features[name]:.3f}",
                f"{why.weights[name]:.2f}",
                f"{why.contributions[name]:.3f}",
            )
            for name in why.features
        ],
        title=f"{why.id} in {why.layer.value}",
    )
    click.echo(f"score {why.score:.3f}: {why.reason}")
    if why.expires_at is not None:
        state = "expired" if why.expired else "expires"
        click.echo(f"{state} {fmt_time(why.expires_at)}{' (pinned)' if why.pinned else ''}")


@click.command("history")
@click.argument("record_id")
@json_option
@pass_app
def memory_history(app: AppContext, record_id: str) -> None:
    """Every add, update, promotion, expiry and delete of a memory."""
    from magray.cli._output import emit_json, print_table

    require_store(app)
    with open_store(app, embed=False) as store:
        events = store.history(record_id)
    if app.json:
        emit_json(events)
        return
    print_table(
        ["when", "event", "layer", "details"],
        [(fmt_time(e["at"]), e["event"], e["layer"] or "", e["details"] or "") for e in events],
        title=record_id,
    )


@click.command("stats")
@json_option
@pass_app
def memory_stats(app: AppContext) -> None:
    """Counts per layer, index kinds, tombstones, sizes and cache figures."""
    from magray.cli._output import emit_json, print_table

    if not store_exists(app):
        data: dict[str, Any] = {"path": shown(store_path(app)), "exists": False, "records": 0}
    else:
        with open_store(app, embed=False) as store:
            data = {"exists": True, **store.stats()}
    if app.json:
        emit_json(data)
        return
    if not data["exists"]:
        click.echo(f"no memory store at {data['path']} yet")
        return
    click.echo(f"store   {data['path']}")
    click.echo(f"model   {data['model_id']} (dim {data['dim']})")
    click.echo(f"index   {data['index_status'].get('index')}")
    print_table(
        ["layer", "records", "index", "indexed", "tombstones"],
        [
            (name, v["records"], v["index"] or "-", v["indexed"], v["tombstones"])
            for name, v in data["layers"].items()
        ],
    )
    total = sum(data["bytes"].values())
    click.echo(f"size    {total / 1e6:.2f} MB ({data['history_events']} history events)")
