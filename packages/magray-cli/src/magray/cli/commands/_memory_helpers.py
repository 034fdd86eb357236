"""What the ``magray memory`` commands share: where the store is, opening it, parsing
``--where``/``--meta``/durations, printing records and progress bars."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from magray.cli._context import AppContext

if TYPE_CHECKING:
    from magray.memory import MemoryStore, Record

__all__ = [
    "EMBEDDER_KEY",
    "STORE_KEY",
    "emit_records",
    "fmt_time",
    "is_dsn",
    "open_store",
    "parse_duration",
    "parse_meta",
    "parse_value",
    "parse_where",
    "progress_bar",
    "require_store",
    "short",
    "shown",
    "store_exists",
    "store_path",
]

STORE_KEY = "magray.memory.store"
EMBEDDER_KEY = "magray.memory.embedder"


def is_dsn(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def store_path(app: AppContext) -> Path | str:
    """The store's directory, or its PostgreSQL DSN."""
    from magray.common import paths

    explicit = click.get_current_context().meta.get(STORE_KEY)
    if explicit is not None:
        return explicit if is_dsn(explicit) else Path(explicit).expanduser()
    settings = app.settings.memory
    if settings.backend != "local" and settings.dsn:
        return settings.dsn
    configured = settings.path
    return Path(configured).expanduser() if configured else paths.data_dir() / "memory"


def shown(location: Path | str) -> str:
    """A store location for output (a DSN without its password)."""
    if isinstance(location, Path):
        return str(location)
    from magray.memory import redact_dsn as redact

    return redact(location)


def store_exists(app: AppContext) -> bool:
    location = store_path(app)
    if not isinstance(location, Path):
        return True  # a server store: opening creates its schema if missing
    return (location / "memory.db").exists()


@contextmanager
def open_store(app: AppContext, *, embed: bool, dedupe: bool = True) -> Iterator[MemoryStore]:
    """Open the store; with ``embed`` also load the configured embedder.

    ``dedupe=False`` stores identical texts again (file ingest keeps one record per passage
    per file, so re-adding a tree can tell what changed).
    """
    from magray.memory import MemoryStore

    name = click.get_current_context().meta.get(EMBEDDER_KEY) or app.settings.memory.embedder
    settings = app.settings.memory
    if not dedupe and settings.dedupe:
        settings = settings.model_copy(update={"dedupe": False})
    store = MemoryStore.open(store_path(app), name if embed else None, settings=settings)
    try:
        yield store
    finally:
        store.close()


def require_store(app: AppContext) -> None:
    if not store_exists(app):
        from magray.common.errors import NotFoundError

        raise NotFoundError(
            f"no memory store at {shown(store_path(app))} yet",
            hint='add a memory first: magray memory add "some text"',
            code="memory.no_store",
        )


def parse_value(raw: str) -> Any:
    import json

    try:
        return json.loads(raw)
    except ValueError:
        return raw


_OPS = (("!=", "$ne"), (">=", "$gte"), ("<=", "$lte"), (">", "$gt"), ("<", "$lt"), ("=", "$eq"))


def parse_where(
    items: tuple[str, ...], where_json: str | None, since: str | None
) -> dict[str, Any]:
    """``key=value`` / ``key!=v`` / ``key>=v`` ... plus ``--where-json`` and ``--since``."""
    import json

    from magray.common.errors import InvalidInputError

    where: dict[str, Any] = {}
    for item in items:
        for symbol, op in _OPS:
            key, sep, value = item.partition(symbol)
            if sep and key:
                cond = where.setdefault(key.strip(), {})
                if not isinstance(cond, dict):
                    raise InvalidInputError(f"--where {key} given twice")
                cond[op] = parse_value(value.strip())
                break
        else:
            raise InvalidInputError(
                f"--where {item!r} is not KEY=VALUE",
                hint="use key=value, key!=value, key>=number, key<number ... or --where-json",
            )
    if where_json:
        try:
            extra = json.loads(where_json)
        except ValueError as exc:
            raise InvalidInputError(f"--where-json is not JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise InvalidInputError("--where-json must be a JSON object")
        where = {"$and": [where, extra]} if where else extra
    if since:
        import time

        cutoff = time.time() - parse_duration(since)
        where = (
            {"$and": [where, {"_created_at": {"$gte": cutoff}}]}
            if where
            else {"_created_at": {"$gte": cutoff}}
        )
    return where


def parse_duration(text: str) -> float:
    from magray.common.errors import InvalidInputError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    try:
        return float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise InvalidInputError(
            f"bad duration {text!r}", hint="use a number with s, m, h, d or w, e.g. 2d"
        ) from None


def parse_meta(items: tuple[str, ...]) -> dict[str, Any]:
    from magray.common.errors import InvalidInputError

    meta: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--meta {item!r} is not KEY=VALUE")
        meta[key.strip()] = parse_value(value)
    return meta


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "never"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def short(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def emit_records(app: AppContext, records: list[Record], title: str | None = None) -> None:
    from magray.cli._output import emit_json, print_table

    if app.json:
        emit_json([r.to_dict() for r in records])
        return
    if not records:
        click.echo("no memories")
        return
    print_table(
        ["id", "layer", "created", "hits", "text"],
        [
            (r.id, r.layer.value, fmt_time(r.created_at), r.access_count, short(r.text))
            for r in records
        ],
        title=title,
    )


@contextmanager
def progress_bar(app: AppContext, label: str, total: int | None = None) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal (and not --json); yields update(n, total)."""
    if app.json or not sys.stderr.isatty():
        yield lambda done, total=None: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from magray.cli._output import console

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), console=console(stderr=True)
    ) as bar:
        task = bar.add_task(label, total=total)

        def update(done: int, new_total: int | None = None) -> None:
            bar.update(task, completed=done, total=new_total if new_total is not None else total)

        yield update
