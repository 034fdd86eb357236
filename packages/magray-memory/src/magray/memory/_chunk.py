"""Splitting documents into passages for ingestion."""

from __future__ import annotations

import re

__all__ = ["split_passages"]

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def split_passages(text: str, *, max_chars: int = 1000, overlap: int = 0) -> list[str]:
    """Split a document into passages of at most ``max_chars`` characters.

    Paragraphs (blank-line separated) are kept whole and packed together while
    they fit; a longer paragraph is split at sentence ends, and a sentence
    longer than ``max_chars`` at the limit. ``overlap`` repeats the tail of a
    passage at the start of the next one (characters). Blank input gives ``[]``.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if not 0 <= overlap < max_chars:
        raise ValueError("overlap must be in [0, max_chars)")
    pieces: list[str] = []
    for raw in _PARAGRAPH.split(text):
        para = raw.strip()
        if not para:
            continue
        if len(para) <= max_chars:
            pieces.append(para)
            continue
        for sentence in _SENTENCE.split(para):
            rest = sentence
            while len(rest) > max_chars:
                pieces.append(rest[:max_chars])
                rest = rest[max_chars:]
            if rest.strip():
                pieces.append(rest.strip())
    passages: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
            continue
        if current:
            passages.append(current)
            tail = current[-overlap:] if overlap else ""
            current = f"{tail} {piece}".strip() if tail else piece
            if len(current) > max_chars:
                current = piece
        else:
            current = piece
    if current:
        passages.append(current)
    return passages
