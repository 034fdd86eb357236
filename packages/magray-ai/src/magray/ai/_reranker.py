"""Cross-encoder reranking: (query, passage) pairs through a sequence-classification model."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from magray.ai._embedder import make_manager, validate_texts
from magray.ai._fallback import Backend
from magray.ai._providers import SessionConfig, session_config_from
from magray.ai._registry import ModelRegistry, ResolvedModel
from magray.ai._tokenizer import TextTokenizer
from magray.ai.errors import ModelNotFoundError, ModelVerificationError
from magray.common.errors import InvalidInputError
from magray.common.metrics import MetricsRegistry, default_registry

if TYPE_CHECKING:
    from magray.common.settings import AISettings

__all__ = ["Reranker", "find_reranker_model"]


def find_reranker_model(registry: ModelRegistry, name: str | None = None) -> str:
    """The configured reranker, or the only/first ``rerank`` model in the registry.

    Raises:
        ModelNotFoundError: no cross-encoder is registered (none ships offline).
    """
    if name:
        card = registry.card(name)
        if card.task != "rerank":
            raise InvalidInputError(
                f"model {name!r} is an {card.task} model, not a cross-encoder reranker",
                hint="set ai.reranker to a model whose task is 'rerank'",
            )
        return card.name
    names = registry.names(task="rerank")
    if not names:
        raise ModelNotFoundError(
            "no cross-encoder reranking model is installed (none ships with magray-ai)",
            hint="import a BERT-family cross-encoder folder (safetensors + config.json + "
            "tokenizer.json) with `magray models import PATH --task rerank`",
        )
    return names[0]


class Reranker:
    """Scores passages against a query with a cross-encoder (higher = more relevant).

    Query and passage are tokenised together as one pair; the model's logits
    become the scores (one logit: itself; two: ``logit[1] - logit[0]``).
    """

    def __init__(
        self,
        model: str | ResolvedModel,
        *,
        registry: ModelRegistry | None = None,
        providers: Sequence[str] | None = None,
        force_cpu: bool = False,
        session_config: SessionConfig | None = None,
        batch_size: int = 32,
        max_tokens: int | None = None,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        metrics: MetricsRegistry | None = None,
        backends: Sequence[Backend] | None = None,
    ) -> None:
        resolved = (
            model
            if isinstance(model, ResolvedModel)
            else (registry or ModelRegistry()).resolve(model)
        )
        if resolved.card.task != "rerank":
            raise InvalidInputError(
                f"model {resolved.card.name!r} is not a reranker (task {resolved.card.task!r})",
                hint="import a cross-encoder with `magray models import PATH --task rerank`",
            )
        self.card = resolved.card
        self.batch_size = batch_size
        self.tokenizer = TextTokenizer(
            resolved.tokenizer_path,
            max_tokens=min(max_tokens or self.card.max_tokens, self.card.max_tokens),
        )
        self._metrics = metrics or default_registry()
        self.manager = make_manager(
            resolved,
            backends=backends,
            providers=providers,
            force_cpu=force_cpu,
            session_config=session_config,
            failure_threshold=failure_threshold,
            cooldown_s=cooldown_s,
            timeout_s=timeout_s,
            clock=clock,
            metrics=self._metrics,
        )

    @classmethod
    def from_settings(
        cls, settings: AISettings | None = None, *, model: str | None = None, **overrides: Any
    ) -> Reranker:
        if settings is None:
            from magray.common.settings import load_settings

            settings = load_settings().settings.ai
        registry = overrides.pop("registry", None) or ModelRegistry(models_dir=settings.models_dir)
        name = find_reranker_model(registry, model or settings.reranker)
        options: dict[str, Any] = {
            "registry": registry,
            "providers": settings.providers,
            "force_cpu": settings.force_cpu,
            "session_config": session_config_from(settings),
            "batch_size": settings.batch_size,
            "failure_threshold": settings.breaker_failure_threshold,
            "cooldown_s": settings.breaker_cooldown_s,
            "timeout_s": settings.provider_timeout_s,
        }
        options.update(overrides)
        return cls(name, **options)

    @property
    def model_id(self) -> str:
        return self.card.model_id

    def rerank(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One float32 relevance score per text, in the order given."""
        (query,) = validate_texts([query])
        items = validate_texts(texts)
        scores = np.empty(len(items), dtype=np.float32)
        if not items:
            return scores
        encoded = self.tokenizer.encode_pairs([(query, t) for t in items])
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            feeds = self.tokenizer.pad([encoded[i] for i in chunk])
            outputs, _ = self.manager.run(feeds)
            logits = np.asarray(outputs[0], dtype=np.float32)
            if logits.ndim == 1:
                logits = logits[:, None]
            if logits.shape[0] != len(chunk) or logits.ndim != 2:
                raise ModelVerificationError(
                    f"reranker {self.card.name!r} returned shape {logits.shape}",
                    hint="expected (batch, labels) logits from a sequence-classification model",
                )
            scores[chunk] = logits[:, 0] if logits.shape[1] == 1 else logits[:, -1] - logits[:, 0]
        self._metrics.counter("ai.rerank.pairs").inc(len(items))
        return scores
