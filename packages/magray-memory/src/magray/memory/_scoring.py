"""Explainable promotion scores.

A record's score is a weighted sum of four features, each in [0, 1]:

- ``access``: ``log1p(access_count) / log1p(access_saturation)``, capped at 1 —
  how often searches returned it (each search hit counts once);
- ``recency``: ``0.5 ** (seconds since last access / recency_half_life)`` —
  whether it is still in use;
- ``age``: ``min(1, age / age_saturation)`` — it has survived a while;
- ``importance``: the caller's own 0–1 rating (default 0.5).

The score is computed from stored fields when asked for; search similarity is
never written into the record (the Rust original did that, so the "score"
meant only "how similar the last query was").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from magray.memory._types import Layer, Record

__all__ = ["Explanation", "PromotionPolicy"]


@dataclass(frozen=True)
class PromotionPolicy:
    """Weights, saturation constants and thresholds of the promotion rule.

    Attributes:
        weights: Feature weights; they sum to 1 so the score stays in [0, 1].
        access_saturation: Access count at which ``access`` reaches 1.
        recency_half_life: Seconds after which ``recency`` halves.
        age_saturation: Seconds of age at which ``age`` reaches 1.
        thresholds: Minimum score to leave a layer (interact → insights, insights → assets).
        min_age: Minimum seconds a record spends in a layer before it may be promoted.
    """

    weights: dict[str, float] = field(
        default_factory=lambda: {"access": 0.4, "recency": 0.2, "age": 0.1, "importance": 0.3}
    )
    access_saturation: float = 20.0
    recency_half_life: float = 3 * 24 * 3600.0
    age_saturation: float = 7 * 24 * 3600.0
    thresholds: dict[Layer, float] = field(
        default_factory=lambda: {Layer.INTERACT: 0.55, Layer.INSIGHTS: 0.8}
    )
    min_age: float = 3600.0

    def features(self, record: Record, now: float) -> dict[str, float]:
        """The four features of ``record`` at time ``now``."""
        access = min(1.0, math.log1p(record.access_count) / math.log1p(self.access_saturation))
        idle = max(0.0, now - record.last_access)
        recency = 0.5 ** (idle / self.recency_half_life)
        age = min(1.0, max(0.0, now - record.created_at) / self.age_saturation)
        importance = min(1.0, max(0.0, record.importance))
        return {"access": access, "recency": recency, "age": age, "importance": importance}

    def score(self, record: Record, now: float) -> float:
        feats = self.features(record, now)
        return sum(self.weights[name] * value for name, value in feats.items())

    def explain(
        self, record: Record, now: float, *, layer_since: float | None = None
    ) -> Explanation:
        """Features, contributions, score and the promotion/expiry decision."""
        feats = self.features(record, now)
        contributions = {name: self.weights[name] * value for name, value in feats.items()}
        score = sum(contributions.values())
        target = record.layer.next
        threshold = self.thresholds.get(record.layer)
        since = record.created_at if layer_since is None else layer_since
        old_enough = now - since >= self.min_age
        promote = target is not None and threshold is not None and score >= threshold
        reason: str
        if target is None:
            reason = "assets is the top layer"
        elif not promote:
            reason = f"score {score:.3f} is below the {target.value} threshold {threshold:.3f}"
        elif not old_enough:
            reason = f"in {record.layer.value} for less than {self.min_age:g}s"
            promote = False
        else:
            reason = f"score {score:.3f} reaches the {target.value} threshold {threshold:.3f}"
        return Explanation(
            id=record.id,
            layer=record.layer,
            features=feats,
            weights=dict(self.weights),
            contributions=contributions,
            score=score,
            promote_to=target if promote else None,
            threshold=threshold,
            reason=reason,
            expires_at=record.expires_at,
            expired=record.expires_at is not None and record.expires_at <= now,
            pinned=record.pinned,
        )


@dataclass(frozen=True)
class Explanation:
    """Why a record has its score and what ``promote()``/``expire()`` would do to it."""

    id: str
    layer: Layer
    features: dict[str, float]
    weights: dict[str, float]
    contributions: dict[str, float]
    score: float
    promote_to: Layer | None
    threshold: float | None
    reason: str
    expires_at: float | None
    expired: bool
    pinned: bool

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["layer"] = self.layer.value
        out["promote_to"] = self.promote_to.value if self.promote_to else None
        return out
