"""The labelled retrieval set and its metrics (recall@k, MRR@10).

The set ships inside magray-ai (``data/eval``): 240 short passages on 30
topics (eight per topic, so every question has near-miss distractors) and 100
questions, each with the one passage that answers it. Questions were written
as paraphrases, avoiding the passage's own wording where natural.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "EvalSet",
    "answer_ranks",
    "evaluate_variants",
    "load_eval_set",
    "mrr_delta_ci",
    "rank_metrics",
]

_DATA = Path(__file__).parent / "data" / "eval"


@dataclass(frozen=True)
class EvalSet:
    doc_ids: list[str]
    docs: list[str]
    question_ids: list[str]
    questions: list[str]
    answers: list[str]

    @property
    def answer_index(self) -> list[int]:
        position = {d: i for i, d in enumerate(self.doc_ids)}
        return [position[a] for a in self.answers]


def _read_tsv(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(line.split("\t"))
    return rows


def load_eval_set(folder: Path | None = None) -> EvalSet:
    """Read ``corpus.tsv`` (id, text) and ``questions.tsv`` (id, question, answer id)."""
    folder = folder or _DATA
    corpus = _read_tsv(folder / "corpus.tsv")
    questions = _read_tsv(folder / "questions.tsv")
    return EvalSet(
        doc_ids=[r[0] for r in corpus],
        docs=[r[1] for r in corpus],
        question_ids=[r[0] for r in questions],
        questions=[r[1] for r in questions],
        answers=[r[2] for r in questions],
    )


def answer_ranks(scores: np.ndarray, answers: Sequence[int]) -> np.ndarray:
    """1-based rank of each question's answer (1 + documents scored strictly higher)."""
    return np.array(
        [1 + int((row > row[answer]).sum()) for row, answer in zip(scores, answers, strict=True)]
    )


def rank_metrics(scores: np.ndarray, answers: Sequence[int]) -> dict[str, float]:
    """recall@1/@5/@10 and MRR@10 from a ``(questions, docs)`` score matrix (higher = better)."""
    r = answer_ranks(scores, answers)
    return {
        "recall@1": float((r <= 1).mean()),
        "recall@5": float((r <= 5).mean()),
        "recall@10": float((r <= 10).mean()),
        "mrr@10": float(np.where(r <= 10, 1.0 / r, 0.0).mean()),
    }


def mrr_delta_ci(
    ranks: np.ndarray, baseline: np.ndarray, *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """MRR@10 difference to a baseline with a paired bootstrap 95 % interval.

    Returns ``(delta, low, high)``; a variant is only called better when ``low > 0``.
    """
    rr = np.where(ranks <= 10, 1.0 / ranks, 0.0)
    rr_base = np.where(baseline <= 10, 1.0 / baseline, 0.0)
    diff = rr - rr_base
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[samples].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def evaluate_variants(
    eval_set: EvalSet,
    dense_scores: np.ndarray,
    *,
    rerank: Callable[[str, list[str]], np.ndarray] | None = None,
    rerank_top: int = 20,
) -> dict[str, dict[str, Any]]:
    """Metrics of dense, BM25 and every fusion variant (and cross-encoder rerank if given)."""
    from magray.ai._hybrid import BM25Index, reciprocal_rank_fusion, score_fusion

    bm25 = BM25Index(eval_set.docs)
    lexical = np.stack([bm25.scores(q) for q in eval_set.questions])
    answers = eval_set.answer_index
    variants: dict[str, np.ndarray] = {"dense": dense_scores, "bm25": lexical}
    variants["rrf k=60 (1:1)"] = np.stack(
        [reciprocal_rank_fusion([d, s]) for d, s in zip(dense_scores, lexical, strict=True)]
    )
    for weight in (2.0, 4.0):
        variants[f"rrf k=60 dense x{weight:g}"] = np.stack(
            [
                reciprocal_rank_fusion([d, s], weights=[weight, 1.0])
                for d, s in zip(dense_scores, lexical, strict=True)
            ]
        )
    for alpha in (0.5, 0.7, 0.8, 0.9):
        variants[f"score fusion a={alpha:g}"] = np.stack(
            [score_fusion(d, s, alpha=alpha) for d, s in zip(dense_scores, lexical, strict=True)]
        )
    if rerank is not None:
        reranked = np.full_like(dense_scores, -np.inf, dtype=np.float64)
        for i, question in enumerate(eval_set.questions):
            top = np.argsort(-dense_scores[i])[:rerank_top]
            reranked[i, top] = rerank(question, [eval_set.docs[j] for j in top])
        variants[f"dense top{rerank_top} + cross-encoder"] = reranked
    dense_ranks = answer_ranks(dense_scores, answers)
    results: dict[str, dict[str, Any]] = {}
    for name, scores in variants.items():
        metrics: dict[str, Any] = rank_metrics(scores, answers)
        delta, low, high = mrr_delta_ci(answer_ranks(scores, answers), dense_ranks)
        metrics["mrr_delta_vs_dense"] = delta
        metrics["mrr_delta_ci95"] = (low, high)
        results[name] = metrics
    return results
