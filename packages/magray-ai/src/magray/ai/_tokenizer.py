"""Tokenisation with Hugging Face ``tokenizers``: truncation on, padding done per batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from magray.ai.errors import ModelVerificationError

__all__ = ["Encoded", "TextTokenizer"]


@dataclass(frozen=True)
class Encoded:
    """Token ids of one input (no padding)."""

    ids: np.ndarray
    type_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class TextTokenizer:
    """A ``tokenizer.json`` with truncation to ``max_tokens`` and no built-in padding.

    Padding happens per batch (to the batch's longest input), never to a fixed
    length, so short texts cost little.
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
        self._tokenizer: Any = tokenizer
        self.max_tokens = max_tokens
        self.pad_id = int(tokenizer.token_to_id("[PAD]") or 0)

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        encodings = self._tokenizer.encode_batch(list(texts))
        return [_encoded(e) for e in encodings]

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Encoded]:
        encodings = self._tokenizer.encode_batch([tuple(p) for p in pairs])
        return [_encoded(e) for e in encodings]

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


def _encoded(encoding: Any) -> Encoded:
    return Encoded(
        np.asarray(encoding.ids, dtype=np.int64), np.asarray(encoding.type_ids, dtype=np.int64)
    )
