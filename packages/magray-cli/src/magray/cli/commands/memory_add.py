"""``magray memory add``: texts, files, folders and stdin into the store, with progress."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from magray.cli._context import AppContext, json_option, pass_app
from magray.cli.commands._memory_helpers import (
    open_store,
    parse_meta,
)

if TYPE_CHECKING:
    from magray.memory import IngestReport

__all__ = ["memory_add"]


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


@click.command("add")
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

    metadata = parse_meta(meta)
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
        open_store(app, embed=True, dedupe=not (paths or stdin)) as store,
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
