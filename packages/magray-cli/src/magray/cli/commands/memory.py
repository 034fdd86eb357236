"""``magray memory ...``: the vector store from the command line.

Every command takes ``--json``; the store lives in ``--store DIR``, else
``memory.path`` from the settings, else ``<data dir>/memory``. Commands that
embed text (add, search, update --text, import, reindex) load the embedder
named by ``memory.embedder`` (``default`` comes from magray-ai).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from magray.cli._context import AppContext, json_option, pass_app

if TYPE_CHECKING:
    from magray.memory import IngestReport, MemoryStore, Record

_STORE_KEY = "magray.memory.store"
_EMBEDDER_KEY = "magray.memory.embedder"


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
    ctx.meta[_STORE_KEY] = store_dir
    ctx.meta[_EMBEDDER_KEY] = embedder


# ---------------------------------------------------------------- helpers
def _is_dsn(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def _store_path(app: AppContext) -> Path | str:
    """The store's directory, or its PostgreSQL DSN."""
    from magray.common import paths

    explicit = click.get_current_context().meta.get(_STORE_KEY)
    if explicit is not None:
        return explicit if _is_dsn(explicit) else Path(explicit).expanduser()
    settings = app.settings.memory
    if settings.backend != "local" and settings.dsn:
        return settings.dsn
    configured = settings.path
    return Path(configured).expanduser() if configured else paths.data_dir() / "memory"


def _shown(location: Path | str) -> str:
    """A store location for output (a DSN without its password)."""
    if isinstance(location, Path):
        return str(location)
    from magray.memory import redact_dsn as redact

    return redact(location)


def _exists(app: AppContext) -> bool:
    location = _store_path(app)
    if not isinstance(location, Path):
        return True  # a server store: opening creates its schema if missing
    return (location / "memory.db").exists()


@contextmanager
def _open(app: AppContext, *, embed: bool, dedupe: bool = True) -> Iterator[MemoryStore]:
    """Open the store; with ``embed`` also load the configured embedder.

    ``dedupe=False`` stores identical texts again (file ingest keeps one record per passage
    per file, so re-adding a tree can tell what changed).
    """
    from magray.memory import MemoryStore

    name = click.get_current_context().meta.get(_EMBEDDER_KEY) or app.settings.memory.embedder
    settings = app.settings.memory
    if not dedupe and settings.dedupe:
        settings = settings.model_copy(update={"dedupe": False})
    store = MemoryStore.open(_store_path(app), name if embed else None, settings=settings)
    try:
        yield store
    finally:
        store.close()


def _require_store(app: AppContext) -> None:
    if not _exists(app):
        from magray.common.errors import NotFoundError

        raise NotFoundError(
            f"no memory store at {_shown(_store_path(app))} yet",
            hint='add a memory first: magray memory add "some text"',
            code="memory.no_store",
        )


def _parse_value(raw: str) -> Any:
    import json

    try:
        return json.loads(raw)
    except ValueError:
        return raw


_OPS = (("!=", "$ne"), (">=", "$gte"), ("<=", "$lte"), (">", "$gt"), ("<", "$lt"), ("=", "$eq"))


def _parse_where(
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
                cond[op] = _parse_value(value.strip())
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

        cutoff = time.time() - _duration(since)
        where = (
            {"$and": [where, {"_created_at": {"$gte": cutoff}}]}
            if where
            else {"_created_at": {"$gte": cutoff}}
        )
    return where


def _duration(text: str) -> float:
    from magray.common.errors import InvalidInputError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    try:
        return float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise InvalidInputError(
            f"bad duration {text!r}", hint="use a number with s, m, h, d or w, e.g. 2d"
        ) from None


def _parse_meta(items: tuple[str, ...]) -> dict[str, Any]:
    from magray.common.errors import InvalidInputError

    meta: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--meta {item!r} is not KEY=VALUE")
        meta[key.strip()] = _parse_value(value)
    return meta


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "never"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _short(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _emit_records(app: AppContext, records: list[Record], title: str | None = None) -> None:
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
            (r.id, r.layer.value, _fmt_time(r.created_at), r.access_count, _short(r.text))
            for r in records
        ],
        title=title,
    )


@contextmanager
def _progress(app: AppContext, label: str, total: int | None = None) -> Iterator[Any]:
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


# ---------------------------------------------------------------- memory add
_PATHISH = re.compile(r"^[^\s]*(?:/|\.[A-Za-z0-9]{1,6})$")


def _peak_rss_mb() -> float | None:
    """This process's peak resident set size in MB (None where the OS does not say).

    On Linux the kernel's ``VmHWM`` of this program; ``getrusage`` there would also count
    a parent's peak from before ``exec`` (it survives fork and exec).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1024


def _progress_line(report: IngestReport) -> str:
    files = ""
    if report.files_total:
        files = f"{len(report.files)}/{report.files_total} files, "
    return (
        f"memory add: {files}{report.chunks:,} chunks, {report.tokens:,} tokens, "
        f"{report.chunks_per_s:.1f} chunks/s, {report.tokens_per_s:,.0f} tokens/s"
    )


@contextmanager
def _ingest_progress(app: AppContext, every: float) -> Iterator[Callable[[IngestReport], None]]:
    """A bar on a terminal; when stderr is not a terminal, one line every ``every`` seconds."""
    import time

    if sys.stderr.isatty() and not app.json:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from magray.cli._output import console

        with Progress(
            TextColumn("adding"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("", total=None)

            def update(report: IngestReport) -> None:
                bar.update(
                    task,
                    completed=len(report.files) if report.files_total else report.chunks,
                    total=report.files_total,
                    description=f"{report.chunks:,} chunks, {report.chunks_per_s:.1f}/s",
                )

            yield update
        return
    last = time.monotonic()

    def line(report: IngestReport) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= every:
            last = now
            click.echo(_progress_line(report), err=True)

    yield line


def _split_inputs(
    inputs: tuple[str, ...], files: tuple[Path, ...], as_text: bool
) -> tuple[list[str], list[Path], bool]:
    """Positional inputs and --file values as (texts, paths, read stdin)."""
    texts: list[str] = []
    paths: list[Path] = []
    stdin = False
    for item in inputs:
        if not as_text and item.strip() and Path(item).expanduser().exists():
            paths.append(Path(item).expanduser())
            continue
        if not as_text and _PATHISH.match(item):
            click.echo(f"note: no file or directory {item!r}; stored as text", err=True)
        texts.append(item)
    for path in files:
        if str(path) == "-":
            stdin = True
        else:
            paths.append(path)
    return texts, paths, stdin


def _summary(report: IngestReport, seconds: float) -> list[str]:
    lines = []
    if report.files_total is not None or report.files:
        skipped = report.skipped()
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        lines.append(
            f"files: {report.count('added')} added, {report.count('updated')} updated, "
            f"{report.count('unchanged')} unchanged, {report.count('skipped')} skipped"
            + (f" ({why})" if why else "")
            + (
                f"; {report.ignored} ignored (.gitignore, --glob, --exclude)"
                if report.ignored
                else ""
            )
        )
    rss = _peak_rss_mb()
    lines.append(
        f"stored {report.records:,} records"
        + (f" ({report.removed:,} old ones replaced)" if report.removed else "")
        + f" in {seconds:.1f} s: {report.chunks_per_s:.1f} chunks/s, "
        f"{report.tokens_per_s:,.0f} tokens/s"
        + (f", peak RSS {rss:,.0f} MB" if rss is not None else "")
    )
    return lines


@memory.command("add")
@click.argument("inputs", nargs=-1, metavar="[TEXT|PATH]...")
@click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(path_type=Path, allow_dash=True),
    help="A file or directory to read ('-' for stdin); repeatable. Same as naming it.",
)
@click.option(
    "--text",
    "as_text",
    is_flag=True,
    help="Store every argument as text, even one that names an existing file.",
)
@click.option(
    "--chunk/--no-chunk",
    default=True,
    show_default=True,
    help="Split files, stdin and long texts into passages that fit the model's window; "
    "--no-chunk stores each whole (the model reads only its first window).",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1),
    default=None,
    help="Max characters per passage [default: 4 per token of the model's window].",
)
@click.option(
    "--glob",
    "globs",
    multiple=True,
    metavar="PATTERN",
    help="In directories, read only files matching (gitignore-style, e.g. '*.md'); repeatable.",
)
@click.option(
    "--exclude",
    "excludes",
    multiple=True,
    metavar="PATTERN",
    help="Skip files and directories matching (gitignore-style); repeatable.",
)
@click.option("--no-gitignore", is_flag=True, help="Read files that .gitignore ignores.")
@click.option(
    "--layer",
    default=None,
    type=click.Choice(["interact", "insights", "assets"]),
    help="Layer [default: interact for texts, assets for files and stdin].",
)
@click.option("--meta", "meta", multiple=True, help="Metadata KEY=VALUE (JSON values parsed).")
@click.option("--id", "record_id", default=None, help="Your own id (single text only).")
@click.option("--importance", type=click.FloatRange(0, 1), default=None, help="0-1 rating.")
@click.option("--pin", is_flag=True, help="Archive to assets instead of expiring.")
@click.option("--progress-every", default=10.0, hidden=True, type=click.FloatRange(0))
@json_option
@pass_app
def memory_add(
    app: AppContext,
    *,
    inputs: tuple[str, ...],
    files: tuple[Path, ...],
    as_text: bool,
    chunk: bool,
    chunk_size: int | None,
    globs: tuple[str, ...],
    excludes: tuple[str, ...],
    no_gitignore: bool,
    layer: str | None,
    meta: tuple[str, ...],
    record_id: str | None,
    importance: float | None,
    pin: bool,
    progress_every: float,
) -> None:
    """Add texts, files and directories (or stdin) as memories.

    \b
    An argument that names an existing file or directory is read (use --text
    to store it as text); directories are read recursively, honouring
    .gitignore, --glob and --exclude, and binary or non-UTF-8 files are
    skipped. Each file's records carry its path and content hash, so adding
    the same tree again embeds only files that changed. Prints the ids of
    texts, and for files and stdin a summary: files added / updated /
    unchanged / skipped, chunks/s, tokens/s and peak memory.

    \b
    Examples:
      magray memory add "the deploy key lives in 1Password"
      magray memory add docs/ --glob '*.md'
      git log | magray memory add --meta kind=gitlog
    """
    import time

    from magray.cli._output import emit_json
    from magray.common.errors import InvalidInputError
    from magray.memory import Ingest, Layer

    metadata = _parse_meta(meta)
    texts, paths, stdin = _split_inputs(inputs, files, as_text)
    if not texts and not paths and not stdin:
        if sys.stdin.isatty():
            raise InvalidInputError(
                "nothing to add",
                hint="pass text, a file or directory, or pipe text: echo hi | magray memory add",
            )
        stdin = True
    if record_id is not None and (len(texts) != 1 or paths or stdin):
        raise InvalidInputError("--id needs exactly one text (and no files)")
    text_layer = layer or "interact"
    file_layer = layer or "assets"
    started = time.perf_counter()
    with (
        _open(app, embed=True, dedupe=not (paths or stdin)) as store,
        _ingest_progress(app, progress_every) as update,
    ):
        ingest = Ingest(
            store,
            layer=text_layer,
            metadata=metadata,
            chunk=chunk and record_id is None,
            chunk_chars=chunk_size,
            importance=importance,
            pinned=pin,
            progress=update,
        )
        try:
            ids = (
                store.add(
                    texts,
                    metadata,
                    layer=text_layer,
                    ids=[record_id],
                    importance=importance,
                    pinned=pin,
                )
                if record_id is not None
                else [rid for text in texts for rid in ingest.add_text(text)]
            )
            ingest.layer = Layer.parse(file_layer)
            if stdin:
                ids += ingest.add_stream(sys.stdin)
            if paths:
                ingest.add_paths(paths, globs=globs, excludes=excludes, gitignore=not no_gitignore)
        except KeyboardInterrupt:
            _interrupted(ingest.report)
            raise click.exceptions.Exit(130) from None
    report = ingest.report
    seconds = time.perf_counter() - started
    if paths and not report.files and not report.records and not ids:
        raise InvalidInputError(
            f"no files to add in {', '.join(map(str, paths))}",
            hint=f"{report.ignored} files are ignored by .gitignore, --glob or --exclude"
            if report.ignored
            else "the directories are empty",
        )
    if not report.records and not ids and not report.files:
        raise InvalidInputError("nothing to add: the input is empty")
    if app.json:
        emit_json(
            {
                "ids": ids,
                "added": len(ids) if record_id is not None else report.records,
                "layer": file_layer if (paths or stdin) else text_layer,
                **report.to_dict(),
                "peak_rss_mb": _peak_rss_mb(),
            }
        )
        return
    for rid in ids:
        click.echo(rid)
    if paths or stdin:
        for line in _summary(report, seconds):
            click.echo(line)


def _interrupted(report: IngestReport) -> None:
    """What Ctrl-C left in the store, on stderr."""
    done = f"{report.count('added')} files added, {report.count('updated')} updated"
    click.echo(
        f"interrupted: kept {report.records:,} records stored before Ctrl-C ({done})", err=True
    )
    if report.current:
        click.echo(
            f"  {report.current} was in progress: its stored passages stay; "
            "run the same command again to finish it (unchanged files are skipped)",
            err=True,
        )


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

    filters = _parse_where(where, where_json, since)
    if not _exists(app):
        hits = []
    else:
        with _open(app, embed=True) as store:
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
                _short(h.text, 70),
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

    _require_store(app)
    with _open(app, embed=False) as store:
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
            data[key] = _fmt_time(data[key])
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
    filters = _parse_where(where, where_json, since)
    if not _exists(app):
        _emit_records(app, [])
        return
    with _open(app, embed=False) as store:
        records = store.list_records(
            layer=layer, where=filters or None, limit=limit, offset=offset, order=order
        )
    _emit_records(app, records)


@memory.command("delete")
@click.argument("ids", nargs=-1, required=True)
@json_option
@pass_app
def memory_delete(app: AppContext, ids: tuple[str, ...]) -> None:
    """Delete memories by id (exit 3 if none of them existed)."""
    from magray.cli._output import emit_json

    _require_store(app)
    with _open(app, embed=False) as store:
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

    _require_store(app)
    with _open(app, embed=text is not None) as store:
        metadata = None
        if meta or unset:
            metadata = dict(store.get(record_id).metadata)
            metadata.update(_parse_meta(meta))
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
    if _exists(app):
        with _open(app, embed=False) as store:
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
    if _exists(app):
        with _open(app, embed=False) as store:
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

    _require_store(app)
    with _open(app, embed=False) as store:
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
        click.echo(f"{state} {_fmt_time(why.expires_at)}{' (pinned)' if why.pinned else ''}")


@memory.command("history")
@click.argument("record_id")
@json_option
@pass_app
def memory_history(app: AppContext, record_id: str) -> None:
    """Every add, update, promotion, expiry and delete of a memory."""
    from magray.cli._output import emit_json, print_table

    _require_store(app)
    with _open(app, embed=False) as store:
        events = store.history(record_id)
    if app.json:
        emit_json(events)
        return
    print_table(
        ["when", "event", "layer", "details"],
        [(_fmt_time(e["at"]), e["event"], e["layer"] or "", e["details"] or "") for e in events],
        title=record_id,
    )


@memory.command("stats")
@json_option
@pass_app
def memory_stats(app: AppContext) -> None:
    """Counts per layer, index kinds, tombstones, sizes and cache figures."""
    from magray.cli._output import emit_json, print_table

    if not _exists(app):
        data: dict[str, Any] = {"path": _shown(_store_path(app)), "exists": False, "records": 0}
    else:
        with _open(app, embed=False) as store:
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


@memory.command("export")
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

    _require_store(app)
    with _open(app, embed=False) as store:
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


@memory.command("import")
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
        with _open(app, embed=True) as store, _progress(app, "importing") as update:
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


@memory.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@json_option
@pass_app
def memory_backup(app: AppContext, dest: Path) -> None:
    """Copy the store (online, consistent) into the new directory DEST."""
    from magray.cli._output import emit_json

    _require_store(app)
    with _open(app, embed=False) as store:
        report = store.backup(dest)
    if app.json:
        emit_json(report)
    else:
        click.echo(f"backed up to {report['path']} ({report['bytes'] / 1e6:.2f} MB database)")


@memory.command("reindex")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@json_option
@pass_app
def memory_reindex(app: AppContext, batch_size: int) -> None:
    """Re-embed every memory with the configured embedder (after a model change)."""
    from magray.cli._output import emit_json

    _require_store(app)
    with _open(app, embed=True) as store, _progress(app, "re-embedding") as update:
        before = store.pinned
        count = store.reindex(batch_size=batch_size, progress=update)
        after = store.pinned
    if app.json:
        emit_json({"reembedded": count, "from": list(before), "to": list(after)})
    else:
        click.echo(f"re-embedded {count} memories: {before[0]} -> {after[0]} (dim {after[1]})")


@memory.command("vacuum")
@json_option
@pass_app
def memory_vacuum(app: AppContext) -> None:
    """Reclaim space from deleted memories (index and database)."""
    from magray.cli._output import emit_json

    _require_store(app)
    with _open(app, embed=False) as store:
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


@memory.command("migrate")
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
        src = _store_path(app)
    else:
        src = source if _is_dsn(source) else Path(source).expanduser()
    if isinstance(src, Path) and not (src / "memory.db").exists():
        raise NotFoundError(
            f"no memory store at {src}",
            hint="pass --from DIR|DSN, or --store, for the store to copy",
            code="memory.no_store",
        )
    dst: Path | str = dest if _is_dsn(dest) else Path(dest).expanduser()
    if str(dst) == str(src):
        raise ConflictError("source and destination are the same store", hint="pass another --to")
    settings = app.settings.memory
    local = settings.model_copy(update={"backend": "local"})
    with MemoryStore.open(src, None, settings=local) as source_store:
        model_id, dim = source_store.pinned
        with (
            MemoryStore.open(dst, None, dim=dim, model_id=model_id, settings=local) as dest_store,
            _progress(app, "migrating", source_store.count()) as update,
        ):
            report = source_store.copy_to(dest_store, batch_size=batch_size, progress=update)
    report = {"from": _shown(src), "to": _shown(dst), "model_id": model_id, "dim": dim, **report}
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


memory.add_command(__import__("magray.cli.commands.memory_check", fromlist=["_"]).memory_check)
