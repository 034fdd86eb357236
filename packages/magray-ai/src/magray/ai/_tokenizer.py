"""Tokenisation with Hugging Face ``tokenizers``: truncation on, padding done per batch.

A text much longer than the model's window is cut before it reaches the
tokenizer: only a prefix of about ``max_tokens * 16`` characters (ending at a
whitespace, so no word is split) is tokenised, and the prefix doubles until it
fills the window or holds the whole text (at most 64 times, see
``PREFIX_MAX_GROWTH``). The tokenizer therefore never sees
more than a bounded slice of a huge input (a 20 MB text tokenised whole took
30 s and 2.7 GB; its window now takes milliseconds), and the ids are the same
as tokenising the whole text and truncating.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from magray.ai.errors import ModelVerificationError

__all__ = ["Encoded", "TextTokenizer", "cut_at_space", "text_pieces"]

#: First prefix tried, in characters per token of the window (English prose is ~4.5).
PREFIX_CHARS_PER_TOKEN = 16
#: The prefix stops doubling at this many times its first size: a text whose first
#: ``max_tokens * 16 * 64`` characters hold fewer tokens than the window (long
#: whitespace runs, one enormous "word") is embedded from that prefix only.
PREFIX_MAX_GROWTH = 64
#: Characters tokenised at once when counting the tokens of a long text.
COUNT_PIECE_CHARS = 1 << 16


@dataclass(frozen=True)
class Encoded:
    """Token ids of one input (no padding).

    ``covered`` is how many characters of the input the ids stand for (the
    whole text unless it was longer than the window); ``truncated`` says the
    input had more tokens than the window.
    """

    ids: np.ndarray
    type_ids: np.ndarray
    covered: int = 0
    truncated: bool = False

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def cut_at_space(text: str, limit: int, start: int = 0) -> int:
    """Where to end a piece of ``text`` that begins at ``start`` and has at most ``limit``
    characters: after the last whitespace in the piece's second half, or at the end of
    the text when it is that close. Without whitespace there (one enormous word), at
    ``start + limit``."""
    end = start + limit
    if len(text) <= end:
        return len(text)
    for index in range(end, start + limit // 2, -1):
        if text[index - 1].isspace():
            return index
    return end


def text_pieces(text: str, size: int) -> Iterator[str]:
    """``text`` in consecutive pieces of at most ``size`` characters, cut at whitespace."""
    start = 0
    while start < len(text):
        end = cut_at_space(text, size, start)
        yield text[start:end]
        start = end


class TextTokenizer:
    """A ``tokenizer.json`` with truncation to ``max_tokens`` and no built-in padding.

    Padding happens per batch (to the batch's longest input), never to a fixed
    length, so short texts cost little. Inputs are cut to a bounded prefix
    before tokenising (see the module docstring).
    """

    def __init__(self, path: Path, *, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise ModelVerificationError(
                f"cannot read tokenizer {path}: {exc}",
                hint="the file must be a Hugging Face tokenizers 'tokenizer.json'",
            ) from exc
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_tokens)
        self._path = path
        self._tokenizer: Any = tokenizer
        self._counter: Any = None
        self._counter_lock = threading.Lock()
        self.max_tokens = max_tokens
        self.prefix_chars = max_tokens * PREFIX_CHARS_PER_TOKEN
        self.prefix_max = self.prefix_chars * PREFIX_MAX_GROWTH
        self.pad_id = int(tokenizer.token_to_id("[PAD]") or 0)

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """Token ids of each text, truncated to the window (the tokenizer sees a prefix only)."""
        items = list(texts)
        out: list[Encoded | None] = [None] * len(items)
        limits = dict.fromkeys(range(len(items)), self.prefix_chars)
        while limits:
            cuts = {i: cut_at_space(items[i], limit) for i, limit in limits.items()}
            order = list(cuts)
            encodings = self._tokenizer.encode_batch([items[i][: cuts[i]] for i in order])
            retry: dict[int, int] = {}
            for i, encoding in zip(order, encodings, strict=True):
                whole = cuts[i] == len(items[i])
                full = len(encoding.ids) >= self.max_tokens
                if not whole and not full and limits[i] < self.prefix_max:
                    retry[i] = limits[i] * 2  # the prefix was too short to fill the window
                    continue
                truncated = bool(encoding.overflowing) or not whole
                covered = _covered(encoding, cuts[i], truncated)
                out[i] = _encoded(encoding, covered=covered, truncated=truncated)
            limits = retry
        return [e for e in out if e is not None]

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Encoded]:
        """Ids of ``(first, second)`` pairs; each side is cut to a prefix that fills the window."""
        items = [tuple(p) for p in pairs]
        out: list[Encoded | None] = [None] * len(items)
        limits = dict.fromkeys(range(len(items)), self.prefix_chars)
        while limits:
            order = list(limits)
            cut = [tuple(s[: cut_at_space(s, limits[i])] for s in items[i]) for i in order]
            encodings = self._tokenizer.encode_batch(cut)
            retry: dict[int, int] = {}
            for i, piece, encoding in zip(order, cut, encodings, strict=True):
                whole = piece == items[i]
                if (
                    not whole
                    and len(encoding.ids) < self.max_tokens
                    and limits[i] < self.prefix_max
                ):
                    retry[i] = limits[i] * 2
                    continue
                out[i] = _encoded(encoding, covered=0)
            limits = retry
        return [e for e in out if e is not None]

    def count_tokens(self, text: str) -> int:
        """All tokens of ``text`` without truncation (special tokens included).

        The text is tokenised in pieces of at most 64 Ki characters cut at
        whitespace, so memory stays bounded for any length; for WordPiece and
        other whitespace-splitting tokenizers the count equals tokenising the
        whole text at once.
        """
        counter = self._untruncated()
        specials = counter.num_special_tokens_to_add(False)
        total = 0
        pieces = list(text_pieces(text, COUNT_PIECE_CHARS)) if text else []
        for start in range(0, len(pieces), 16):
            batch = pieces[start : start + 16]
            total += sum(len(e.ids) for e in counter.encode_batch(batch, add_special_tokens=False))
        return total + int(specials)

    def pad(self, batch: Sequence[Encoded]) -> dict[str, np.ndarray]:
        """``input_ids``, ``attention_mask``, ``token_type_ids`` padded to the longest (int64)."""
        width = max(len(e) for e in batch)
        ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        types = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, enc in enumerate(batch):
            n = len(enc)
            ids[row, :n] = enc.ids
            types[row, :n] = enc.type_ids
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def _untruncated(self) -> Any:
        with self._counter_lock:
            if self._counter is None:
                from tokenizers import Tokenizer

                counter = Tokenizer.from_file(str(self._path))
                counter.no_padding()
                counter.no_truncation()
                self._counter = counter
            return self._counter


def _covered(encoding: Any, cut: int, truncated: bool) -> int:
    """Characters of the input the kept tokens stand for."""
    if not truncated:
        return cut
    ends = [
        end
        for (_start, end), sid in zip(encoding.offsets, encoding.sequence_ids, strict=True)
        if sid == 0
    ]
    return max(ends, default=0)


def _encoded(encoding: Any, *, covered: int, truncated: bool = False) -> Encoded:
    return Encoded(
        np.asarray(encoding.ids, dtype=np.int64),
        np.asarray(encoding.type_ids, dtype=np.int64),
        covered,
        truncated,
    )
