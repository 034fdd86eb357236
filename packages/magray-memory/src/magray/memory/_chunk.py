"""Splitting documents into passages for ingestion, in bounded memory.

:func:`split_passages` splits a text held in memory; :func:`iter_passages`
does the same for a stream (a file, stdin) read in blocks, so a text of any
size is chunked holding about one block at a time; :func:`fit_to_window`
splits again any passage that has more tokens than the embedding model reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

__all__ = ["fit_to_window", "iter_passages", "split_passages"]

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")

#: Characters read from a stream per block.
READ_BLOCK_CHARS = 1 << 20
#: A paragraph longer than this (no blank line in it) is cut at a sentence end or
#: whitespace before it is split, so one huge line never sits whole in memory.
MAX_PARAGRAPH_CHARS = 4 * READ_BLOCK_CHARS


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> str: ...


def _check(max_chars: int, overlap: int) -> None:
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if not 0 <= overlap < max_chars:
        raise ValueError("overlap must be in [0, max_chars)")


def _pieces(paragraphs: Iterable[str], max_chars: int) -> Iterator[str]:
    """Paragraphs that fit, else their sentences, else ``max_chars`` slices."""
    for raw in paragraphs:
        para = raw.strip()
        if not para:
            continue
        if len(para) <= max_chars:
            yield para
            continue
        for sentence in _SENTENCE.split(para):
            rest = sentence
            while len(rest) > max_chars:
                cut = _word_cut(rest, max_chars)
                yield rest[:cut].strip()
                rest = rest[cut:].lstrip()
            if rest.strip():
                yield rest.strip()


def _word_cut(text: str, limit: int) -> int:
    """Where to cut ``text`` to at most ``limit`` characters: after the last whitespace in
    the second half, else (one long word) at ``limit``."""
    space = max(text.rfind(" ", limit // 2, limit + 1), text.rfind("\n", limit // 2, limit + 1))
    return space if space > 0 else limit


def _pack(pieces: Iterable[str], max_chars: int, overlap: int) -> Iterator[str]:
    """Pieces packed together while they fit (with ``overlap`` characters carried over)."""
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
            continue
        if current:
            yield current
            tail = current[-overlap:] if overlap else ""
            current = f"{tail} {piece}".strip() if tail else piece
            if len(current) > max_chars:
                current = piece
        else:
            current = piece
    if current:
        yield current


def split_passages(text: str, *, max_chars: int = 1000, overlap: int = 0) -> list[str]:
    """Split a document into passages of at most ``max_chars`` characters.

    Paragraphs (blank-line separated) are kept whole and packed together while
    they fit; a longer paragraph is split at sentence ends, and a sentence
    longer than ``max_chars`` at its last space before the limit (at the limit
    inside one very long word). ``overlap`` repeats the tail of a
    passage at the start of the next one (characters). Blank input gives ``[]``.
    """
    _check(max_chars, overlap)
    return list(_pack(_pieces(_PARAGRAPH.split(text), max_chars), max_chars, overlap))


def _paragraphs(stream: _Readable, block: int) -> Iterator[str]:
    """Paragraphs of a stream, read ``block`` characters at a time."""
    buffer = ""
    while data := stream.read(block):
        buffer += data
        last = None
        for last in _PARAGRAPH.finditer(buffer):  # noqa: B007 - the last match is wanted
            pass
        if last is not None:
            yield from _PARAGRAPH.split(buffer[: last.start()])
            buffer = buffer[last.end() :]
        while len(buffer) > MAX_PARAGRAPH_CHARS:
            cut = _soft_cut(buffer, MAX_PARAGRAPH_CHARS)
            yield buffer[:cut]
            buffer = buffer[cut:]
    yield from _PARAGRAPH.split(buffer)


def _soft_cut(text: str, limit: int) -> int:
    """An index ``<= limit`` after a sentence end, else after whitespace, else ``limit``."""
    floor = limit // 2
    for pattern in (_SENTENCE, re.compile(r"\s+")):
        best = None
        for match in pattern.finditer(text, floor, limit):
            best = match.end()
        if best:
            return best
    return limit


def iter_passages(
    stream: _Readable | str,
    *,
    max_chars: int = 1000,
    overlap: int = 0,
    block_chars: int = READ_BLOCK_CHARS,
) -> Iterator[str]:
    """:func:`split_passages` for a text stream, holding about one block in memory.

    ``stream`` is anything with ``read(n) -> str`` (an open text file,
    ``sys.stdin``, ``io.StringIO``) or a string. Passages come out as the
    stream is read; they are the same as ``split_passages`` of the whole text,
    except that a paragraph longer than 4 Mi characters (no blank line in it)
    is first cut at a sentence end near that length.
    """
    _check(max_chars, overlap)
    if block_chars < 1:
        raise ValueError("block_chars must be positive")
    if isinstance(stream, str):
        import io

        stream = io.StringIO(stream)
    yield from _pack(_pieces(_paragraphs(stream, block_chars), max_chars), max_chars, overlap)


def fit_to_window(
    passages: Iterable[str],
    count_tokens: Callable[[Sequence[str]], Sequence[int]],
    window: int,
    *,
    group: int = 64,
) -> Iterator[tuple[str, int]]:
    """Passages with their token counts, splitting any that exceeds ``window`` tokens.

    ``count_tokens`` returns the untruncated token count of each text (special
    tokens included), e.g. ``lambda texts: [embedder.count_tokens(t) for t in texts]``.
    A passage over the window is halved at a paragraph, sentence or word
    boundary near its middle until every part fits, so no text is silently cut
    by the model. Counting happens ``group`` passages at a time.
    """
    if window < 1:
        raise ValueError("window must be positive")
    pending: list[str] = []
    for passage in passages:
        pending.append(passage)
        if len(pending) >= group:
            yield from _fit(pending, count_tokens, window)
            pending = []
    if pending:
        yield from _fit(pending, count_tokens, window)


def _fit(
    texts: list[str], count_tokens: Callable[[Sequence[str]], Sequence[int]], window: int
) -> Iterator[tuple[str, int]]:
    for text, tokens in zip(texts, count_tokens(texts), strict=True):
        if tokens <= window or len(text) < 2:
            yield text, int(tokens)
            continue
        middle = _halve(text)
        halves = [part for part in (text[:middle].strip(), text[middle:].strip()) if part]
        yield from _fit(halves, count_tokens, window)


def _halve(text: str) -> int:
    """A split index near the middle: at a blank line, a sentence end, whitespace, or the middle."""
    middle = len(text) // 2
    window = (len(text) // 4, len(text) - len(text) // 4)
    for pattern in (_PARAGRAPH, _SENTENCE, re.compile(r"\s+")):
        spots = [m.end() for m in pattern.finditer(text, *window)]
        if spots:
            return min(spots, key=lambda i: abs(i - middle))
    return middle
