"""``magray memory ...``: the vector store from the command line.

Every command takes ``--json``; the store lives in ``--store DIR``, else
``memory.path`` from the settings, else ``<data dir>/memory``. Commands that
embed text (add, search, update --text, import, reindex) load the embedder
named by ``memory.embedder`` (``default`` comes from magray-ai).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    store_exists,
)
from magray.cli.commands.memory_add import memory_add
from magray.cli.commands.memory_check import memory_check
from magray.cli.commands.memory_layers import (
    memory_expire,
    memory_explain,
    memory_history,
    memory_promote,
    memory_stats,
)
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


for _command in (
    memory_add,
    memory_promote,
    memory_expire,
    memory_explain,
    memory_history,
    memory_stats,
    memory_check,
    memory_export,
    memory_import,
    memory_backup,
    memory_reindex,
    memory_vacuum,
    memory_migrate,
):
    memory.add_command(_command)
