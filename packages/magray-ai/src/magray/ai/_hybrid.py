"""Lexical BM25 ranking and fusion with vector rankings (measured, not a default).

magray ships these so the retrieval benchmark can measure hybrid variants
honestly (docs/benchmarks.md); on the project's labelled set none beat the
dense ranking by enough to become a default.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

__all__ = ["BM25Index", "min_max", "reciprocal_rank_fusion", "score_fusion", "tokenize"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "my",
        "of",
        "on",
        "or",
        "the",
        "to",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "can",
        "should",
    ]
)


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric words without a few English stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


class BM25Index:
    """Okapi BM25 over an in-memory list of documents.

    Args:
        documents: The texts to rank.
        k1: Term-frequency saturation.
        b: Length normalisation.
    """

    def __init__(self, documents: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._docs = [Counter(tokenize(d)) for d in documents]
        self._lengths = np.array([sum(c.values()) for c in self._docs], dtype=np.float64)
        self._avg = float(self._lengths.mean()) if len(self._docs) else 0.0
        df: Counter[str] = Counter()
        for counts in self._docs:
            df.update(counts.keys())
        n = len(self._docs)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (float64, 0 where no term matches)."""
        result = np.zeros(len(self._docs), dtype=np.float64)
        norm = self.k1 * (1 - self.b + self.b * self._lengths / max(self._avg, 1e-9))
        for term in set(tokenize(query)):
            idf = self._idf.get(term)
            if idf is None:
                continue
            tf = np.array([c.get(term, 0) for c in self._docs], dtype=np.float64)
            result += idf * tf * (self.k1 + 1) / (tf + norm)
        return result


def reciprocal_rank_fusion(
    score_lists: Sequence[np.ndarray], *, k: float = 60.0, weights: Sequence[float] | None = None
) -> np.ndarray:
    """Weighted RRF: ``sum_i w_i / (k + rank_i(d))`` over the rankings given by each score array."""
    weights = list(weights) if weights is not None else [1.0] * len(score_lists)
    fused = np.zeros(len(score_lists[0]), dtype=np.float64)
    for weight, scores in zip(weights, score_lists, strict=True):
        ranks = np.empty(len(scores), dtype=np.float64)
        ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
        fused += weight / (k + ranks)
    return fused


def min_max(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] (all zeros when every score is equal)."""
    low, high = float(scores.min()), float(scores.max())
    if high - low < 1e-12:
        return np.zeros_like(scores, dtype=np.float64)
    return (scores - low) / (high - low)


def score_fusion(dense: np.ndarray, lexical: np.ndarray, *, alpha: float) -> np.ndarray:
    """Convex combination of min-max normalised scores: ``alpha*dense + (1-alpha)*lexical``."""
    return alpha * min_max(dense) + (1 - alpha) * min_max(lexical)
