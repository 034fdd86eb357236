"""Adding files and folders to a store: walk, filter, hash, chunk, embed only what changed.

:class:`Ingest` reads each file twice as a stream (once to hash it and check it
is UTF-8 text, once to chunk it), so memory stays bounded whatever the file
sizes; passages go to :meth:`MemoryStore.add` in batches of bounded token
count. Every record gets ``source`` (the file's absolute path), ``source_sha256``
(the file's content hash) and ``chunk`` (its position) in its metadata, and the
file's last record also ``chunks`` (how many there are), so adding the same tree
again skips unchanged files without embedding them and replaces the records of
changed ones: the new version is added first and the old records are deleted
after, so a failure or Ctrl-C never loses the old version (the batches of the
new version already committed stay, and the next run replaces them).

Open the store with ``dedupe`` off for exact per-file bookkeeping (the CLI
does): with it on, a passage identical to one of another file is stored once,
under that file, and the file with the copy is re-embedded on every run.
"""

from __future__ import annotations

import codecs
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.memory._chunk import fit_to_window, iter_passages
from magray.memory._files import iter_files
from magray.memory._types import Layer

if TYPE_CHECKING:
    from magray.memory._store import MemoryStore

__all__ = ["FileResult", "Ingest", "IngestReport"]

SOURCE_KEY = "source"
HASH_KEY = "source_sha256"
_BLOCK = 1 << 20
_BINARY_PROBE = 8000  # git's heuristic: a NUL byte in the first 8000 bytes means binary


# ---------------------------------------------------------------- reports
@dataclass
class FileResult:
    """What happened to one file: ``added``, ``unchanged``, ``updated`` or ``skipped``."""

    path: str
    status: str
    reason: str | None = None
    records: int = 0
    tokens: int = 0


@dataclass
class IngestReport:
    """Counts of an ingest run so far (also valid after an interruption)."""

    files: list[FileResult] = field(default_factory=list)
    ignored: int = 0
    records: int = 0
    removed: int = 0
    chunks: int = 0
    tokens: int = 0
    seconds: float = 0.0
    files_total: int | None = None
    current: str | None = None
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def skipped(self) -> dict[str, int]:
        """Skipped files by reason (``binary``, ``not UTF-8``, ``empty``, ``unreadable``)."""
        out: dict[str, int] = {}
        for f in self.files:
            if f.status == "skipped":
                out[f.reason or "?"] = out.get(f.reason or "?", 0) + 1
        return out

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": {
                "added": self.count("added"),
                "updated": self.count("updated"),
                "unchanged": self.count("unchanged"),
                "skipped": self.count("skipped"),
                "skipped_by_reason": self.skipped(),
                "ignored": self.ignored,
                "each": [vars(f) for f in self.files],
            },
            "records_added": self.records,
            "records_removed": self.removed,
            "chunks": self.chunks,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "chunks_per_s": round(self.chunks_per_s, 2),
            "tokens_per_s": round(self.tokens_per_s, 1),
            "interrupted": self.interrupted,
        }


# ---------------------------------------------------------------- reading
def inspect_file(path: Path) -> tuple[str | None, str | None]:
    """``(sha256, None)`` for a UTF-8 text file, else ``(None, reason)``; reads in blocks."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    blank = True
    try:
        with open(path, "rb") as handle:
            first = True
            while block := handle.read(_BLOCK):
                if first and b"\x00" in block[:_BINARY_PROBE]:
                    return None, "binary"
                first = False
                digest.update(block)
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    return None, "not UTF-8"
                if blank and block.strip():
                    blank = False
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except OSError:
        return None, "unreadable"
    if blank:
        return None, "empty"
    return digest.hexdigest(), None


def _window_of(embedder: Any) -> tuple[int | None, Callable[[Sequence[str]], list[int]] | None]:
    """The embedder's window and an untruncated token counter, when it offers them."""
    window = getattr(embedder, "window", None) or getattr(embedder, "max_tokens", None)
    counter = getattr(embedder, "count_tokens", None)
    if not isinstance(window, int) or not callable(counter):
        return None, None
    return window, lambda texts: [int(counter(t)) for t in texts]


def default_chunk_chars(embedder: Any) -> int:
    """Characters per passage: four per token of the model's window, else 1000."""
    window, _ = _window_of(embedder)
    return window * 4 if window else 1000


# ---------------------------------------------------------------- the ingest
class Ingest:
    """Add texts, streams, files and folders to ``store`` in bounded memory.

    Args:
        store: An open store with an embedder.
        layer: Layer of the new records.
        metadata: Extra metadata for every record.
        chunk: Split into passages (of ``chunk_chars``, then to the model's
            window when the embedder can count tokens); ``False`` stores each
            text or file whole (the embedder warns about what it ignores).
        chunk_chars: Characters per passage (default: 4 per window token).
        batch_tokens: Most tokens (estimated from characters without a
            counter) sent to one ``add`` call, so one batch's memory is bounded.
        max_batch: Most passages per ``add`` call.
        importance: Importance of the new records.
        pinned: Pin the new records.
        progress: Called with the report after each committed batch and file.
        clock: Monotonic clock for the rates.
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        layer: Layer | str = Layer.ASSETS,
        metadata: Mapping[str, Any] | None = None,
        chunk: bool = True,
        chunk_chars: int | None = None,
        batch_tokens: int = 8192,
        max_batch: int = 64,
        importance: float | None = None,
        pinned: bool = False,
        progress: Callable[[IngestReport], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.store = store
        self.layer = Layer.parse(layer)
        self.metadata = dict(metadata or {})
        self.chunk = chunk
        self.chunk_chars = chunk_chars or default_chunk_chars(store.embedder)
        self.window, self._count = _window_of(store.embedder)
        self.batch_tokens = batch_tokens
        self.max_batch = max_batch
        self.importance = 0.5 if importance is None else importance
        self.pinned = pinned
        self.progress = progress
        self.clock = clock
        self.report = IngestReport()
        self.ids: list[str] = []  # of texts and streams (files report per file instead)
        self._started = clock()

    # ------------------------------------------------------------ inputs
    def add_text(self, text: str, *, source: str | None = None) -> list[str]:
        """Add one text; returns the new ids.

        A text that fits one passage (or any text with ``chunk=False``) is stored
        as given, with no chunk metadata; a longer one is split into passages.
        """
        import io

        meta = self._meta(source)
        if len(text) <= self.chunk_chars or not self.chunk:
            tokens = self._tokens(text)
            if not self.chunk or self.window is None or tokens <= self.window:
                return self._flush([(text, meta)], min(tokens, self.window or tokens), True)
        return self._add(io.StringIO(text), meta, keep_ids=True)

    def _tokens(self, text: str) -> int:
        """Exact tokens when the embedder counts them and the text is not huge."""
        if self._count is not None and len(text) <= 64 * self.chunk_chars:
            return self._count([text])[0]
        return self._estimate(text)

    def add_stream(self, stream: Any, *, source: str = "<stdin>") -> list[str]:
        """Add a text stream (``read(n) -> str``), read in blocks; returns the new ids."""
        return self._add(stream, self._meta(source), keep_ids=True)

    def add_paths(
        self,
        paths: Iterable[str | Path],
        *,
        globs: Sequence[str] = (),
        excludes: Sequence[str] = (),
        gitignore: bool = True,
    ) -> IngestReport:
        """Add files and directories (see :func:`iter_files`); unchanged files are skipped."""
        found = list(iter_files(paths, globs=globs, excludes=excludes, gitignore=gitignore))
        self.report.ignored += sum(1 for _, ignored in found if ignored)
        files = [path for path, ignored in found if not ignored]
        self.report.files_total = (self.report.files_total or 0) + len(files)
        for path in files:
            self.add_file(path)
        return self.report

    def add_file(self, path: Path) -> FileResult:
        """Add, update or skip one file; returns what happened."""
        key = str(path.resolve())
        self.report.current = key
        digest, reason = inspect_file(path)
        if digest is None:
            result = FileResult(key, "skipped", reason)
        else:
            result = self._file(path, key, digest)
        self.report.current = None
        self.report.files.append(result)
        self._tick()
        return result

    # ------------------------------------------------------------ internals
    def _meta(self, source: str | None, **extra: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {} if source is None else {SOURCE_KEY: source}
        meta.update(extra)
        meta.update(self.metadata)
        return meta

    def _file(self, path: Path, key: str, digest: str) -> FileResult:
        old = self.store.list_records(where={SOURCE_KEY: key}, limit=None)
        if old and self._complete(old, digest):
            return FileResult(key, "unchanged", records=len(old))
        old_ids = {r.id for r in old}
        tokens_before = self.report.tokens
        try:
            with open(path, encoding="utf-8-sig") as handle:
                new_ids = self._add(handle, self._meta(key, **{HASH_KEY: digest}))
        except OSError:
            return FileResult(key, "skipped", "unreadable")
        kept = set(new_ids)
        stale = [rid for rid in old_ids if rid not in kept]
        if stale:
            self.report.removed += len(self.store.delete(stale))
        for record in old:  # a passage deduplicated onto an old record: adopt it
            if record.id in kept and record.metadata.get(HASH_KEY) != digest:
                meta = dict(record.metadata) | {HASH_KEY: digest}
                self.store.update(record.id, metadata=meta)
        status = "updated" if old else "added"
        return FileResult(
            key, status, records=len(new_ids), tokens=self.report.tokens - tokens_before
        )

    def _complete(self, old: Sequence[Any], digest: str) -> bool:
        """Every record has this hash and layer, and the last one says how many there are."""
        if any(r.metadata.get(HASH_KEY) != digest or r.layer != self.layer for r in old):
            return False
        totals = {r.metadata.get("chunks") for r in old} - {None}
        return totals == {len(old)}

    def _passages(self, stream: Any) -> Iterator[tuple[str, int]]:
        if not self.chunk:
            text = stream.read()
            if text.strip():
                yield text, self._estimate(text)
            return
        passages = iter_passages(stream, max_chars=self.chunk_chars)
        if self.window is not None and self._count is not None:
            yield from fit_to_window(passages, self._count, self.window)
        else:
            for passage in passages:
                yield passage, self._estimate(passage)

    @staticmethod
    def _estimate(text: str) -> int:
        return max(1, len(text) // 4)

    def _add(self, stream: Any, meta: dict[str, Any], *, keep_ids: bool = False) -> list[str]:
        """Chunk, batch and add; returns the ids (batches already committed stay on failure)."""
        added: list[str] = []
        batch: list[tuple[str, dict[str, Any]]] = []
        batch_tokens = 0
        index = 0
        pending: tuple[str, int] | None = None
        for passage, tokens in self._passages(stream):
            if pending is not None:  # one behind, so the last passage can carry "chunks"
                batch.append((pending[0], meta | {"chunk": index}))
                batch_tokens += pending[1]
                index += 1
                if len(batch) >= self.max_batch or batch_tokens >= self.batch_tokens:
                    added += self._flush(batch, batch_tokens, keep_ids)
                    batch, batch_tokens = [], 0
            pending = (passage, tokens)
        if pending is not None:
            batch.append((pending[0], meta | {"chunk": index, "chunks": index + 1}))
            batch_tokens += pending[1]
        added += self._flush(batch, batch_tokens, keep_ids)
        return added

    def _flush(
        self, batch: list[tuple[str, dict[str, Any]]], tokens: int, keep_ids: bool
    ) -> list[str]:
        if not batch:
            return []
        ids = self.store.add(
            [text for text, _ in batch],
            [meta for _, meta in batch],
            layer=self.layer,
            importance=self.importance,
            pinned=self.pinned,
        )
        if keep_ids:
            self.ids += ids
        self.report.records += len(ids)
        self.report.chunks += len(batch)
        self.report.tokens += tokens
        self._tick()
        return ids

    def _tick(self) -> None:
        self.report.seconds = self.clock() - self._started
        if self.progress is not None:
            self.progress(self.report)
