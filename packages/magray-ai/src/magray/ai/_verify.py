"""``magray models verify``: hashes, a smoke inference and a similarity sanity check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from magray.ai._registry import ModelRegistry
from magray.ai.errors import ModelVerificationError
from magray.common.errors import MagrayError

__all__ = ["VerifyReport", "verify_model"]

_RELATED = ("How do I reset my password?", "Steps to change a forgotten account password.")
_UNRELATED = "The recipe needs two cups of flour and an egg."


@dataclass
class VerifyReport:
    """What ``verify`` checked; ``ok`` is true only when every check passed."""

    name: str
    model_id: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)

    def add(self, check: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": check, "ok": ok, "detail": detail})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model_id": self.model_id, "ok": self.ok, "checks": self.checks}


def verify_model(
    registry: ModelRegistry, name: str, *, force_cpu: bool = True, providers: Any = None
) -> VerifyReport:
    """Check one model's files and behaviour; never raises for a failed check.

    Checks: the files exist, the ONNX file's sha256 matches the card, the model
    runs and returns finite unit vectors of the card's size, and a related
    pair scores above an unrelated one (for rerankers: the relevant passage
    scores above the irrelevant one).
    """
    report = VerifyReport(name)
    try:
        resolved = registry.resolve(name)
    except MagrayError as exc:
        report.add("files", False, f"{exc.message} ({exc.hint})" if exc.hint else exc.message)
        return report
    card = resolved.card
    report.name = card.name
    report.model_id = card.model_id
    report.add("files", True, f"{resolved.model_path} + {resolved.tokenizer_path.name}")
    try:
        actual, expected = registry.check_hash(card.name)
        detail = f"sha256 {actual[:16]}... " + ("matches" if expected else "(no pinned hash)")
        report.add("sha256", True, detail)
    except ModelVerificationError as exc:
        report.add("sha256", False, exc.message)
        return report
    try:
        if card.task == "embed":
            _check_embedder(report, resolved, force_cpu=force_cpu, providers=providers)
        else:
            _check_reranker(report, resolved, force_cpu=force_cpu, providers=providers)
    except MagrayError as exc:
        report.add("inference", False, exc.message)
    return report


def _check_embedder(report: VerifyReport, resolved: Any, **options: Any) -> None:
    from magray.ai._embedder import Embedder

    embedder = Embedder(resolved, cache_entries=0, **options)
    start = time.perf_counter()
    vectors = embedder.embed([*_RELATED, _UNRELATED])
    elapsed = (time.perf_counter() - start) * 1000
    finite = bool(np.isfinite(vectors).all())
    norms = np.linalg.norm(vectors, axis=1)
    unit = not embedder.card.normalize or bool(np.allclose(norms, 1.0, atol=1e-4))
    report.add(
        "inference",
        finite and unit and vectors.shape == (3, embedder.dim),
        f"shape {vectors.shape}, finite={finite}, unit norms={unit}, {elapsed:.1f} ms",
    )
    related = float(vectors[0] @ vectors[1])
    unrelated = float(max(vectors[0] @ vectors[2], vectors[1] @ vectors[2]))
    report.add(
        "similarity",
        related > unrelated + 0.1,
        f"related pair cosine {related:.3f} vs unrelated {unrelated:.3f}",
    )


def _check_reranker(report: VerifyReport, resolved: Any, **options: Any) -> None:
    from magray.ai._reranker import Reranker

    reranker = Reranker(resolved, **options)
    scores = reranker.rerank(_RELATED[0], [_RELATED[1], _UNRELATED])
    report.add("inference", bool(np.isfinite(scores).all()), f"scores {scores.round(3).tolist()}")
    report.add(
        "relevance",
        bool(scores[0] > scores[1]),
        f"relevant passage {scores[0]:.3f} vs irrelevant {scores[1]:.3f}",
    )
