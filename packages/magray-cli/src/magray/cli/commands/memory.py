"""``magray memory ...``: the vector store from the command line.

Every command takes ``--json``; the store lives in ``--store DIR``, else
``memory.path`` from the settings, else ``<data dir>/memory``. Commands that
embed text (add, search, update --text, import, reindex) load the embedder
named by ``memory.embedder`` (``default`` comes from magray-ai).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from magray.cli._context import AppContext, json_option, pass_app
from magray.cli.commands._memory_helpers import (
    EMBEDDER_KEY,
    STORE_KEY,
    emit_records,
    fmt_time,
    open_store,
    parse_meta,
    parse_where,
    require_store,
    short,
    shown,
    store_exists,
    store_path,
)
from magray.cli.commands.memory_add import memory_add
from magray.cli.commands.memory_check import memory_check
from magray.cli.commands.memory_transfer import (
    memory_backup,
    memory_export,
    memory_import,
    memory_migrate,
    memory_reindex,
    memory_vacuum,
)

if TYPE_CHECKING:
    pass


@click.group()
@click.option(
    "--store",
    "store_dir",
    default=None,
    metavar="DIR|DSN",
    help="Store directory or postgresql://... DSN (default: memory.dsn with the postgres "
    "backend, else memory.path, else <data dir>/memory).",
)
@click.option(
    "--embedder",
    default=None,
    help="Embedder name from the magray.embedders entry points (default: memory.embedder).",
)
@click.pass_context
def memory(ctx: click.Context, store_dir: str | None, embedder: str | None) -> None:
    """Store, search and manage memories (three layers: interact, insights, assets).

    \b
    Examples:
      magray memory add "the deploy key lives in 1Password" --meta project=infra
      magray memory add notes.md docs/ --glob '*.md'
      git log | magray memory add --meta kind=gitlog
      magray memory search "where is the deploy key" -k 5 --where project=infra
      magray memory list --layer insights --json
    """
    ctx.meta[STORE_KEY] = store_dir
    ctx.meta[EMBEDDER_KEY] = embedder


@memory.command("search")
@click.argument("query")
@click.option(
    "-k", "k", default=5, show_default=True, type=click.IntRange(1, 10_000), help="How many hits."
)
@click.option(
    "--layer",
    "layers",
    multiple=True,
    type=click.Choice(["interact", "insights", "assets"]),
    help="Search only these layers (repeatable; default all).",
)
@click.option(
    "--where",
    "where",
    multiple=True,
    help="Filter KEY=VALUE, KEY!=V, KEY>=N, KEY<N ... (repeatable, ANDed).",
)
@click.option("--where-json", default=None, help='Filter as JSON, e.g. {"tag": {"$in": ["a"]}}.')
@click.option("--since", default=None, help="Only memories created within this time (2h, 3d).")
@click.option("--rerank", is_flag=True, help="Rerank candidates with the installed cross-encoder.")
@json_option
@pass_app
def memory_search(
    app: AppContext,
    *,
    query: str,
    k: int,
    layers: tuple[str, ...],
    where: tuple[str, ...],
    where_json: str | None,
    since: str | None,
    rerank: bool,
) -> None:
    """Find the K memories most similar to QUERY."""
    from magray.cli._output import emit_json, print_table

    filters = parse_where(where, where_json, since)
    if not store_exists(app):
        hits = []
    else:
        with open_store(app, embed=True) as store:
            hits = store.search(
                query, k=k, layers=list(layers) or None, where=filters or None, rerank=rerank
            )
    if app.json:
        emit_json(
            [
                {
                    "id": h.id,
                    "score": h.score,
                    "layer": h.layer.value,
                    "text": h.text,
                    "metadata": h.metadata,
                }
                for h in hits
            ]
        )
        return
    if not hits:
        click.echo("no matching memories")
        return
    print_table(
        ["#", "score", "id", "layer", "text", "metadata"],
        [
            (
                i + 1,
                f"{h.score:.3f}",
                h.id,
                h.layer.value,
                short(h.text, 70),
                ", ".join(f"{k}={v}" for k, v in h.metadata.items()),
            )
            for i, h in enumerate(hits)
        ],
    )


@memory.command("get")
@click.argument("ids", nargs=-1, required=True)
@json_option
@pass_app
def memory_get(app: AppContext, ids: tuple[str, ...]) -> None:
    """Show memories by id (exit 3 if one is missing)."""
    from magray.cli._output import emit_json

    require_store(app)
    with open_store(app, embed=False) as store:
        records = store.get(list(ids))
    missing = [i for i in ids if i not in {r.id for r in records}]
    if missing:
        from magray.memory import RecordNotFoundError

        raise RecordNotFoundError(
            f"no memory with id {', '.join(missing)}", hint="`magray memory list` shows ids"
        )
    if app.json:
        emit_json([r.to_dict() for r in records] if len(ids) > 1 else records[0].to_dict())
        return
    for r in records:
        data = r.to_dict()
        for key in ("created_at", "updated_at", "last_access", "expires_at"):
            data[key] = fmt_time(data[key])
        width = max(len(k) for k in data)
        for key, value in data.items():
            click.echo(f"{key:<{width}}  {value}")
        click.echo("")


@memory.command("list")
@click.option("--layer", default=None, type=click.Choice(["interact", "insights", "assets"]))
@click.option("--where", "where", multiple=True, help="Filter KEY=VALUE ... (repeatable).")
@click.option("--where-json", default=None, help="Filter as JSON.")
@click.option("--since", default=None, help="Only memories created within this time (2h, 3d).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@click.option("--offset", default=0, type=click.IntRange(0))
@click.option(
    "--sort",
    "order",
    default="created_at",
    show_default=True,
    type=click.Choice(["created_at", "updated_at", "last_access", "access_count", "importance"]),
)
@json_option
@pass_app
def memory_list(
    app: AppContext,
    *,
    layer: str | None,
    where: tuple[str, ...],
    where_json: str | None,
    since: str | None,
    limit: int,
    offset: int,
    order: str,
) -> None:
    """List memories, newest first."""
    filters = parse_where(where, where_json, since)
    if not store_exists(app):
        emit_records(app, [])
        return
    with open_store(app, embed=False) as store:
        records = store.list_records(
            layer=layer, where=filters or None, limit=limit, offset=offset, order=order
        )
    emit_records(app, records)


@memory.command("delete")
@click.argument("ids", nargs=-1, required=True)
@json_option
@pass_app
def memory_delete(app: AppContext, ids: tuple[str, ...]) -> None:
    """Delete memories by id (exit 3 if none of them existed)."""
    from magray.cli._output import emit_json

    require_store(app)
    with open_store(app, embed=False) as store:
        deleted = store.delete(list(ids))
    missing = [i for i in ids if i not in deleted]
    if app.json:
        emit_json({"deleted": deleted, "missing": missing})
    else:
        for rid in deleted:
            click.echo(f"deleted {rid}")
        for rid in missing:
            click.echo(f"not found: {rid}", err=True)
    if not deleted:
        from magray.memory import RecordNotFoundError

        raise RecordNotFoundError(f"no memory with id {', '.join(ids)}")


@memory.command("update")
@click.argument("record_id")
@click.option("--text", default=None, help="New text (re-embedded).")
@click.option("--meta", "meta", multiple=True, help="Set metadata KEY=VALUE (merged).")
@click.option("--unset", "unset", multiple=True, help="Remove a metadata key.")
@click.option("--importance", type=click.FloatRange(0, 1), default=None)
@click.option("--pin/--unpin", default=None, help="Archive to assets instead of expiring.")
@click.option("--layer", default=None, type=click.Choice(["interact", "insights", "assets"]))
@json_option
@pass_app
def memory_update(
    app: AppContext,
    *,
    record_id: str,
    text: str | None,
    meta: tuple[str, ...],
    unset: tuple[str, ...],
    importance: float | None,
    pin: bool | None,
    layer: str | None,
) -> None:
    """Change a memory's text, metadata, importance, pin or layer."""
    from magray.cli._output import emit_json

    require_store(app)
    with open_store(app, embed=text is not None) as store:
        metadata = None
        if meta or unset:
            metadata = dict(store.get(record_id).metadata)
            metadata.update(parse_meta(meta))
            for key in unset:
                metadata.pop(key, None)
        record = store.update(
            record_id,
            text=text,
            metadata=metadata,
            importance=importance,
            pinned=pin,
            layer=layer,
        )
    if app.json:
        emit_json(record.to_dict())
    else:
        click.echo(f"updated {record.id} ({record.layer.value})")


@memory.command("promote")
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


@memory.command("expire")
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


@memory.command("explain")
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


@memory.command("history")
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


@memory.command("stats")
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


for _command in (
    memory_add,
    memory_check,
    memory_export,
    memory_import,
    memory_backup,
    memory_reindex,
    memory_vacuum,
    memory_migrate,
):
    memory.add_command(_command)
