"""Sentence embeddings with ONNX Runtime: tokenise, bucket by length, run, pool, normalise."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from magray.ai._cache import EmbeddingCache
from magray.ai._fallback import Backend, FallbackManager
from magray.ai._providers import (
    OrtBackend,
    SessionConfig,
    select_providers,
    session_config_from,
)
from magray.ai._registry import ModelCard, ModelRegistry, ResolvedModel
from magray.ai._tokenizer import Encoded, TextTokenizer
from magray.ai.errors import ModelVerificationError
from magray.common.errors import InvalidInputError
from magray.common.metrics import MetricsRegistry, default_registry

if TYPE_CHECKING:
    from magray.common.settings import AISettings

__all__ = ["Embedder", "build_backends", "make_manager", "pool", "validate_texts"]

_T = TypeVar("_T")

_log = logging.getLogger("magray.ai.embedder")

#: Longer texts are cached under their sha256, so the cache never holds a huge text.
_CACHE_KEY_CHARS = 4096
#: Texts tokenised per round (bounds the encodings held at once for a huge call).
_ENCODE_GROUP = 1024
#: Truncation warnings count the ignored tokens exactly up to this many characters
#: (about 0.1 s of tokenising); beyond, they estimate from the window's tokens per character.
_EXACT_COUNT_CHARS = 1 << 18


def validate_texts(texts: Sequence[str]) -> list[str]:
    """A list copy of ``texts``; raises on a bare string, a non-string or blank text."""
    if isinstance(texts, str | bytes):
        raise InvalidInputError(
            "texts must be a sequence of strings, not a single string",
            hint="wrap it in a list: embed([text])",
        )
    items = list(texts)
    for index, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"texts[{index}] is {type(text).__name__}, not str",
                hint="pass strings only",
            )
        if not text.strip():
            raise InvalidInputError(
                f"texts[{index}] is empty or whitespace only",
                hint="drop empty texts before embedding them",
                details={"index": index},
            )
    return items


def _cache_key(text: str) -> str:
    """The cache key of a text: itself when short, else a digest (never a huge string)."""
    if len(text) <= _CACHE_KEY_CHARS and not text.startswith("\x00"):
        return text
    return "\x00sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def pool(hidden: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
    """Pool token vectors ``(batch, tokens, dim)`` to ``(batch, dim)`` (``none`` passes through)."""
    if how == "none":
        return hidden
    if how == "cls":
        return hidden[:, 0, :]
    if how == "last":
        last = np.maximum(mask.sum(axis=1) - 1, 0)
        return hidden[np.arange(hidden.shape[0]), last, :]
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    result: np.ndarray = summed / np.maximum(weights.sum(axis=1), 1e-9)
    return result


def _output_selector(output: str | int) -> tuple[list[str] | None, int]:
    if isinstance(output, str):
        return [output], 0
    return None, int(output)


class _FeedFilteringBackend:
    """An :class:`OrtBackend` fed only the inputs its graph declares."""

    def __init__(self, backend: OrtBackend) -> None:
        self._backend = backend
        self._inputs: set[str] | None = None

    @property
    def name(self) -> str:
        return self._backend.name

    def run(self, feeds: Any) -> list[Any]:
        if self._inputs is None:
            self._inputs = set(self._backend.input_names())
        return self._backend.run({k: v for k, v in feeds.items() if k in self._inputs})


def build_backends(
    resolved: ResolvedModel,
    *,
    providers: Sequence[str],
    config: SessionConfig,
) -> list[Backend]:
    """One feed-filtering ONNX Runtime backend per provider, best first."""
    names, _ = _output_selector(resolved.card.output)
    return [
        _FeedFilteringBackend(
            OrtBackend(
                resolved.model_path,
                provider,
                config=config,
                output_names=names,
                model_sha256=resolved.card.sha256,
            )
        )
        for provider in providers
    ]


def make_manager(
    resolved: ResolvedModel,
    *,
    backends: Sequence[Backend] | None,
    providers: Sequence[str] | None,
    force_cpu: bool,
    session_config: SessionConfig | None,
    failure_threshold: int,
    cooldown_s: float,
    timeout_s: float | None,
    clock: Callable[[], float],
    metrics: MetricsRegistry,
) -> FallbackManager:
    """The fallback manager over ``backends``, or over one backend per selected provider."""
    if backends is None:
        chosen = select_providers(force_cpu=force_cpu, preferred=list(providers or ()))
        backends = build_backends(
            resolved, providers=chosen, config=session_config or SessionConfig()
        )
    return FallbackManager(
        backends,
        failure_threshold=failure_threshold,
        cooldown_s=cooldown_s,
        timeout_s=timeout_s,
        clock=clock,
        metrics=metrics,
    )


class _Lazy(Generic[_T]):
    """A value made by ``factory`` on first use, once, whichever thread asks first."""

    def __init__(self, factory: Callable[[], _T]) -> None:
        self._factory: Callable[[], _T] | None = factory
        self._value: _T | None = None
        self._lock = threading.Lock()

    @property
    def made(self) -> bool:
        return self._factory is None

    def get(self) -> _T:
        if self._factory is not None:
            with self._lock:
                if self._factory is not None:
                    self._value = self._factory()
                    self._factory = None
        return self._value  # type: ignore[return-value]


class Embedder:
    """Turns texts into L2-normalised float32 vectors with an ONNX sentence-embedding model.

    Thread-safe: ONNX Runtime sessions run concurrently, the cache has its own
    lock, and nothing holds a lock across inference. The tokenizer, the provider
    selection and the sessions are made on first use, so building an embedder is
    cheap and texts found in the cache never load them.

    Args:
        model: Registry name (``"default"`` = the default embedding model) or a
            :class:`ResolvedModel`.
        registry: Registry to resolve names in (default: user models dir from settings).
        providers: Execution providers to try, best first (default: auto, CPU last).
        force_cpu: Use only the CPU provider.
        session_config: ONNX Runtime threads/optimisation options.
        batch_size: Texts per inference call after length bucketing.
        batch_tokens: Most tokens (rows x padded width) per inference call, so long
            texts run in smaller batches: ONNX Runtime's memory grows with the batch's
            tokens (batch 32 x 256 tokens peaked at 880 MB, 8 x 256 at 390 MB, at the
            same speed).
        max_tokens: Truncation length (default: the model card's).
        cache_entries: LRU cache capacity (0 disables it).
        failure_threshold: Consecutive failures that open a provider's circuit.
        cooldown_s: Open-circuit cooldown before a half-open probe.
        timeout_s: Deadline of one call on a non-CPU provider.
        clock: Monotonic clock for the circuit breakers.
        metrics: Metrics registry (default: the process-wide one).
        backends: Ready backends, best first (tests inject failing ones).

    Example:
        >>> embedder = Embedder()
        >>> embedder.embed(["hello world"]).shape
        (1, 384)
    """

    def __init__(
        self,
        model: str | ResolvedModel = "default",
        *,
        registry: ModelRegistry | None = None,
        providers: Sequence[str] | None = None,
        force_cpu: bool = False,
        session_config: SessionConfig | None = None,
        batch_size: int = 32,
        batch_tokens: int = 2048,
        max_tokens: int | None = None,
        cache_entries: int = 10_000,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        metrics: MetricsRegistry | None = None,
        backends: Sequence[Backend] | None = None,
    ) -> None:
        if isinstance(model, ResolvedModel):
            resolved = model
        else:
            resolved = (registry or ModelRegistry()).resolve(model)
        if resolved.card.task != "embed":
            raise InvalidInputError(
                f"model {resolved.card.name!r} is a {resolved.card.task} model, not an embedder",
                hint="pick an embedding model from `magray models list`",
            )
        if batch_size < 1 or batch_tokens < 1:
            raise InvalidInputError("batch_size and batch_tokens must be >= 1")
        self.resolved = resolved
        self.card: ModelCard = resolved.card
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.max_tokens = min(max_tokens or self.card.max_tokens, self.card.max_tokens)
        self._metrics = metrics or default_registry()
        self.cache = EmbeddingCache(cache_entries, metrics=self._metrics)
        # Tokenizer, providers and sessions are made when first needed: a process whose
        # texts all come from a cache never imports onnxruntime or parses tokenizer.json.
        max_len = self.max_tokens
        self._tokenizer = _Lazy(lambda: TextTokenizer(resolved.tokenizer_path, max_tokens=max_len))
        metrics_registry = self._metrics
        self._manager = _Lazy(
            lambda: make_manager(
                resolved,
                backends=backends,
                providers=providers,
                force_cpu=force_cpu,
                session_config=session_config,
                failure_threshold=failure_threshold,
                cooldown_s=cooldown_s,
                timeout_s=timeout_s,
                clock=clock,
                metrics=metrics_registry,
            )
        )
        _, self._output_index = _output_selector(self.card.output)

    @classmethod
    def from_settings(
        cls, settings: AISettings | None = None, *, model: str | None = None, **overrides: Any
    ) -> Embedder:
        """An embedder configured from the ``[ai]`` settings section (loaded when not given)."""
        if settings is None:
            from magray.common.settings import load_settings

            settings = load_settings().settings.ai
        options: dict[str, Any] = {
            "registry": ModelRegistry(models_dir=settings.models_dir),
            "providers": settings.providers,
            "force_cpu": settings.force_cpu,
            "session_config": session_config_from(settings),
            "batch_size": settings.batch_size,
            "max_tokens": settings.max_tokens,
            "cache_entries": settings.cache_entries,
            "failure_threshold": settings.breaker_failure_threshold,
            "cooldown_s": settings.breaker_cooldown_s,
            "timeout_s": settings.provider_timeout_s,
        }
        options.update(overrides)
        return cls(model or settings.embedding_model, **options)

    # ------------------------------------------------------------------ API
    @property
    def tokenizer(self) -> TextTokenizer:
        """The model's tokenizer (read from ``tokenizer.json`` on first use)."""
        return self._tokenizer.get()

    @property
    def manager(self) -> FallbackManager:
        """The fallback manager over the execution providers (made on first use)."""
        return self._manager.get()

    @property
    def model_id(self) -> str:
        """Stable id of model + variant + weights hash (stored with vectors)."""
        return self.card.model_id

    @property
    def dim(self) -> int:
        return self.card.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a ``(len(texts), dim)`` float32 array of unit-length rows.

        Raises:
            InvalidInputError: a text is empty/whitespace, or ``texts`` is a bare string.
            InferenceError: every execution provider failed.
        """
        items = validate_texts(texts)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for index, text in enumerate(items):
            cached = self.cache.get(self.model_id, _cache_key(text))
            if cached is None:
                missing.setdefault(text, []).append(index)
            else:
                out[index] = cached
        if missing:
            unique = list(missing)
            vectors = self._embed_uncached(unique)
            for text, vector in zip(unique, vectors, strict=True):
                self.cache.put(self.model_id, _cache_key(text), vector)
                out[missing[text]] = vector
        self._metrics.counter("ai.embed.texts").inc(len(items))
        return out

    def embed_one(self, text: str) -> np.ndarray:
        """One text's vector, shape ``(dim,)``."""
        vector: np.ndarray = self.embed([text])[0]
        return vector

    @property
    def window(self) -> int:
        """Tokens the model reads of one text (special tokens included); the rest is ignored."""
        return self.max_tokens

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text becomes after truncation (special tokens included)."""
        return [len(e) for e in self.tokenizer.encode(validate_texts(texts))]

    def count_tokens(self, text: str) -> int:
        """All tokens of ``text``, without truncation (bounded memory for any length)."""
        return self.tokenizer.count_tokens(text)

    def stats(self) -> dict[str, Any]:
        """Cache and per-provider statistics."""
        return {
            "model_id": self.model_id,
            "cache": self.cache.stats(),
            "providers": self.manager.stats(),
        }

    def close(self) -> None:
        if self._manager.made:
            self.manager.close()

    # ------------------------------------------------------------------ internals
    def _embed_uncached(self, texts: list[str]) -> np.ndarray:
        result = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._metrics.histogram("ai.embed.uncached_latency_ms").time():
            for first in range(0, len(texts), _ENCODE_GROUP):
                group = texts[first : first + _ENCODE_GROUP]
                encoded = self.tokenizer.encode(group)
                for index, enc in enumerate(encoded):
                    if enc.truncated:
                        self._warn_truncated(group[index], enc)
                for chunk in self._batches(encoded):
                    rows = [first + i for i in chunk]
                    result[rows] = self._run_batch([encoded[i] for i in chunk])
        return result

    def _batches(self, encoded: list[Encoded]) -> list[list[int]]:
        """Length bucketing: indices sorted by token count, cut into batches of at most
        ``batch_size`` texts and ``batch_tokens`` padded tokens (each pads to its longest)."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            width = len(encoded[i])  # the longest so far, as the order is ascending
            if current and (
                len(current) >= self.batch_size or (len(current) + 1) * width > self.batch_tokens
            ):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _warn_truncated(self, text: str, enc: Encoded) -> None:
        """Log that part of a text is ignored, with how many tokens (counted or estimated)."""
        self._metrics.counter("ai.embed.truncated").inc()
        if len(text) <= _EXACT_COUNT_CHARS:
            ignored = f"{self.count_tokens(text) - self.max_tokens:,}"
        else:
            per_char = len(enc) / max(enc.covered, 1)
            ignored = f"about {round((len(text) - enc.covered) * per_char):,}"
        _log.warning(
            "a text (%r...) is longer than the %d-token window of %s: %s tokens (%s of its %s "
            "characters) are ignored; split it into passages first "
            "(magray.memory.split_passages, or `magray memory add`, which chunks by default)",
            " ".join(text[:40].split()),
            self.max_tokens,
            self.card.name,
            ignored,
            f"{len(text) - enc.covered:,}",
            f"{len(text):,}",
        )

    def _run_batch(self, batch: list[Encoded]) -> np.ndarray:
        feeds = self.tokenizer.pad(batch)
        outputs, _provider = self.manager.run(feeds)
        raw = np.asarray(outputs[self._output_index if len(outputs) > 1 else 0])
        pooled = pool(
            raw.astype(np.float32, copy=False), feeds["attention_mask"], self.card.pooling
        )
        if pooled.ndim != 2 or pooled.shape != (len(batch), self.dim):
            raise ModelVerificationError(
                f"model {self.card.name!r} produced shape {tuple(raw.shape)}, "
                f"expected ({len(batch)}, {self.dim}) after {self.card.pooling} pooling",
                hint="the model card's dim, output or pooling is wrong",
            )
        if self.card.normalize:
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            pooled = pooled / np.maximum(norms, 1e-12)
        return pooled.astype(np.float32, copy=False)
