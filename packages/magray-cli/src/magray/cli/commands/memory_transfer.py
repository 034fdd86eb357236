"""``magray memory export|import|backup|reindex|vacuum|migrate``: moving and rebuilding stores."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from magray.cli._context import AppContext, json_option, pass_app
from magray.cli.commands._memory_helpers import (
    is_dsn,
    open_store,
    progress_bar,
    require_store,
    shown,
    store_path,
)

__all__ = [
    "memory_export",
    "memory_import",
    "memory_backup",
    "memory_reindex",
    "memory_vacuum",
    "memory_migrate",
]


@click.command("export")
@click.argument("dest", default="-", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--vectors", is_flag=True, help="Include the vectors (larger, no re-embedding).")
@click.option(
    "--layer", "layers", multiple=True, type=click.Choice(["interact", "insights", "assets"])
)
@json_option
@pass_app
def memory_export(app: AppContext, dest: str, vectors: bool, layers: tuple[str, ...]) -> None:
    """Write memories as JSON lines to DEST (default: stdout)."""
    from magray.cli._output import emit_json

    require_store(app)
    with open_store(app, embed=False) as store:
        if dest == "-":
            count = store.export_jsonl(
                sys.stdout, with_vectors=vectors, layers=list(layers) or None
            )
            return
        count = store.export_jsonl(Path(dest), with_vectors=vectors, layers=list(layers) or None)
    if app.json:
        emit_json({"path": dest, "records": count, "vectors": vectors})
    else:
        click.echo(f"exported {count} memories to {dest}")


@click.command("import")
@click.argument("src", type=click.Path(dir_okay=False, allow_dash=True))
@json_option
@pass_app
def memory_import(app: AppContext, src: str) -> None:
    """Import JSON lines written by `magray memory export` (existing ids are skipped)."""
    from magray.cli._output import emit_json
    from magray.common.errors import InvalidInputError

    try:
        handle = sys.stdin if src == "-" else open(src, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise InvalidInputError(f"cannot read {src}: {exc.strerror or exc}") from None
    try:
        with open_store(app, embed=True) as store, progress_bar(app, "importing") as update:
            counts = store.import_jsonl(handle, progress=update)
    finally:
        if handle is not sys.stdin:
            handle.close()
    if app.json:
        emit_json(counts)
    else:
        click.echo(
            f"imported {counts['imported']}, skipped {counts['skipped']} existing, "
            f"embedded {counts['embedded']}"
        )


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@json_option
@pass_app
def memory_backup(app: AppContext, dest: Path) -> None:
    """Copy the store (online, consistent) into the new directory DEST."""
    from magray.cli._output import emit_json

    require_store(app)
    with open_store(app, embed=False) as store:
        report = store.backup(dest)
    if app.json:
        emit_json(report)
    else:
        click.echo(f"backed up to {report['path']} ({report['bytes'] / 1e6:.2f} MB database)")


@click.command("reindex")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@json_option
@pass_app
def memory_reindex(app: AppContext, batch_size: int) -> None:
    """Re-embed every memory with the configured embedder (after a model change)."""
    from magray.cli._output import emit_json

    require_store(app)
    with open_store(app, embed=True) as store, progress_bar(app, "re-embedding") as update:
        before = store.pinned
        count = store.reindex(batch_size=batch_size, progress=update)
        after = store.pinned
    if app.json:
        emit_json({"reembedded": count, "from": list(before), "to": list(after)})
    else:
        click.echo(f"re-embedded {count} memories: {before[0]} -> {after[0]} (dim {after[1]})")


@click.command("vacuum")
@json_option
@pass_app
def memory_vacuum(app: AppContext) -> None:
    """Reclaim space from deleted memories (index and database)."""
    from magray.cli._output import emit_json

    require_store(app)
    with open_store(app, embed=False) as store:
        report = store.vacuum()
    if app.json:
        emit_json(report)
    else:
        before = sum(report["bytes_before"].values())
        after = sum(report["bytes_after"].values())
        click.echo(
            f"{before / 1e6:.2f} MB -> {after / 1e6:.2f} MB, "
            f"{report['tombstones_dropped']} index tombstones dropped"
        )


@click.command("migrate")
@click.option(
    "--to",
    "dest",
    required=True,
    metavar="DSN|DIR",
    help="Destination: postgresql://user@host/db[?schema=NAME] or a local store directory.",
)
@click.option(
    "--from",
    "source",
    default=None,
    metavar="DIR|DSN",
    help="Source store (default: the store --store or the settings name).",
)
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
@json_option
@pass_app
def memory_migrate(app: AppContext, dest: str, source: str | None, batch_size: int) -> None:
    """Copy every memory (vectors, metadata, layers, timestamps) into another store.

    \b
    Moves a local store into PostgreSQL (or back), keeping ids; records already
    in the destination are skipped, so an interrupted run can be repeated.
    Afterwards every id is looked up in the destination and the counts printed.

    \b
    Examples:
      magray memory migrate --to postgresql://magray@db.internal/team
      magray memory --store postgresql://magray@db/team migrate --to ./memory-copy
    """
    from magray.cli._output import emit_json
    from magray.common.errors import ConflictError, NotFoundError
    from magray.memory import MemoryStore

    src: Path | str
    if source is None:
        src = store_path(app)
    else:
        src = source if is_dsn(source) else Path(source).expanduser()
    if isinstance(src, Path) and not (src / "memory.db").exists():
        raise NotFoundError(
            f"no memory store at {src}",
            hint="pass --from DIR|DSN, or --store, for the store to copy",
            code="memory.no_store",
        )
    dst: Path | str = dest if is_dsn(dest) else Path(dest).expanduser()
    if str(dst) == str(src):
        raise ConflictError("source and destination are the same store", hint="pass another --to")
    settings = app.settings.memory
    local = settings.model_copy(update={"backend": "local"})
    with MemoryStore.open(src, None, settings=local) as source_store:
        model_id, dim = source_store.pinned
        with (
            MemoryStore.open(dst, None, dim=dim, model_id=model_id, settings=local) as dest_store,
            progress_bar(app, "migrating", source_store.count()) as update,
        ):
            report = source_store.copy_to(dest_store, batch_size=batch_size, progress=update)
    report = {"from": shown(src), "to": shown(dst), "model_id": model_id, "dim": dim, **report}
    if app.json:
        emit_json(report)
    else:
        click.echo(
            f"copied {report['copied']} memories ({report['skipped']} already there) "
            f"from {report['from']} to {report['to']}"
        )
        for layer, n in report["source"].items():
            click.echo(f"  {layer:<9} source {n:>8}  destination {report['dest'][layer]:>8}")
        click.echo("verified: every id is in the destination" if report["verified"] else "")
    if not report["verified"]:
        from magray.common.errors import StorageError

        raise StorageError(
            f"{report['copied']} copied but only {report['found_in_dest']} of the source ids "
            "were found in the destination",
            hint="run the same migrate again (it skips what is there); check the server logs",
        )
