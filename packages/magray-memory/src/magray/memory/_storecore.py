"""The core of :class:`~magray.memory.MemoryStore`: its state, input validation and embedding.

The store is layered like the local backend, one responsibility a module: ``_storecore``
(state, validation, the embedding cache, TTLs) → ``_storewrites`` (add, add_stream, update,
delete) → ``_storereads`` (get, list, count, search, rerank, explain, history) → ``_store``
(open, promotion and expiry, operations, async twins).
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import numpy as np

from magray.common.errors import InvalidInputError
from magray.common.metrics import MetricsRegistry, default_registry
from magray.memory._backend import StorageBackend
from magray.memory._cache import EmbeddingCache, text_hash
from magray.memory._scoring import PromotionPolicy
from magray.memory._sqlite import translate
from magray.memory._types import Embedder, Layer, Reranker
from magray.memory.errors import ModelMismatchError

if TYPE_CHECKING:
    from magray.common.settings import MemorySettings

__all__ = [
    "ALL_LAYERS",
    "MAX_DEPTH",
    "MAX_ID_CHARS",
    "MAX_K",
    "StoreCore",
    "bad_text",
    "check_nested",
    "guarded",
]


MAX_ID_CHARS = 256
MAX_DEPTH = 32
"""Deepest nesting of metadata dicts/lists and of ``$and``/``$or`` in a filter."""
ALL_LAYERS = list(Layer)
_F32 = np.dtype(np.float32)
MAX_K = 10_000
_F = TypeVar("_F", bound=Callable[..., Any])


def guarded(method: _F) -> _F:
    """Turn a SQLite or OS failure inside a public method into a :class:`StorageError`
    subclass (full, read-only, permission denied, corrupt, ...) naming the store."""

    @functools.wraps(method)
    def wrapper(self: StoreCore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            where = f"memory store {self.location}: {method.__name__}"
            raise translate(exc, self.path, where) from exc

    return wrapper  # type: ignore[return-value]


def bad_text(value: str) -> int | None:
    """The index of the first lone surrogate in ``value`` (None: valid Unicode)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_nested(value: Any, what: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Reject values nested deeper than ``max_depth`` and strings (keys included) with lone
    surrogates, walking iteratively (no ``RecursionError`` on a 100k-deep value).

    Raises:
        InvalidInputError: Too deep, or a string is not valid Unicode.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            at = bad_text(node)
            if at is not None:
                raise InvalidInputError(
                    f"{what} holds a string with a lone surrogate "
                    f"(U+{ord(node[at]):04X} at index {at}), which is not valid Unicode",
                    hint="decode bytes with errors='replace' (or fix the source); magray stores "
                    "only valid UTF-8",
                )
            continue
        if isinstance(node, Mapping | list | tuple):
            if depth >= max_depth:
                raise InvalidInputError(
                    f"{what} is nested more than {max_depth} levels deep",
                    hint=f"flatten it: at most {max_depth} nested dicts/lists (or $and/$or)",
                )
            if isinstance(node, Mapping):
                stack.extend((key, depth + 1) for key in node if isinstance(key, str))
                stack.extend((item, depth + 1) for item in node.values())
            else:
                stack.extend((item, depth + 1) for item in node)


class StoreCore:
    """State, validation and embedding of a :class:`~magray.memory.MemoryStore`."""

    def __init__(
        self,
        backend: StorageBackend,
        *,
        embedder: Embedder | None,
        model_id: str,
        dim: int,
        settings: MemorySettings,
        clock: Callable[[], float] = time.time,
        policy: PromotionPolicy | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self._backend = backend
        self.embedder = embedder
        self.model_id = model_id
        self.dim = dim
        self.settings = settings
        self.clock = clock
        self.policy = policy or PromotionPolicy(
            thresholds={
                Layer.INTERACT: settings.promote_insights_score,
                Layer.INSIGHTS: settings.promote_assets_score,
            }
        )
        self.cache = EmbeddingCache(
            max_entries=settings.cache_entries, max_bytes=settings.cache_bytes
        )
        self.metrics = metrics or default_registry()
        self._search_latency = self.metrics.histogram("memory.search.latency_ms")
        self._search_calls = self.metrics.counter("memory.search.calls")
        self._reranker: Reranker | None = None

    @property
    def backend(self) -> StorageBackend:
        """The storage backend (``"local"``: SQLite + faiss; ``"postgres"``: pgvector)."""
        return self._backend

    @property
    def path(self) -> Path:
        return self._backend.path

    @property
    def location(self) -> str:
        """Where the store lives: its directory, or its DSN (password hidden) and schema."""
        return str(getattr(self._backend, "location", self._backend.path))

    @property
    def pinned(self) -> tuple[str, int]:
        """``(model_id, dim)`` the store's vectors were made with."""
        pin = self._backend.pinned()
        assert pin is not None
        return pin

    @property
    def model_matches(self) -> bool:
        return (self.model_id, self.dim) == self.pinned

    def _check_model(self) -> None:
        pinned = self.pinned
        if (self.model_id, self.dim) != pinned:
            raise ModelMismatchError(
                f"store {self.location} holds vectors of model {pinned[0]!r} "
                f"(dim {pinned[1]}), but this session uses {self.model_id!r} (dim {self.dim})",
                hint="run store.reindex() (`magray memory reindex`) to re-embed every record "
                "with the new model, or open the store with the embedder it was built with",
                details={"store": list(pinned), "session": [self.model_id, self.dim]},
            )

    @guarded
    def close(self) -> None:
        """Flush access counts, save the index if it changed, and close the database."""
        self._backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryStore({self.location!r}, model={self.model_id!r}, dim={self.dim})"

    # ------------------------------------------------------------ validation
    def _texts(self, texts: str | Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            texts = [texts]
        out = list(texts)
        for i, text in enumerate(out):
            if not isinstance(text, str):
                raise InvalidInputError(f"text #{i} is {type(text).__name__}, not str")
            if not text.strip():
                raise InvalidInputError(
                    f"text #{i} is empty", hint="every memory needs some non-blank text"
                )
            at = bad_text(text)
            if at is not None:
                raise InvalidInputError(
                    f"text #{i} has a lone surrogate (U+{ord(text[at]):04X} at index {at}), "
                    "which is not valid Unicode",
                    hint="decode bytes with errors='replace' (or fix the source); magray stores "
                    "only valid UTF-8",
                )
        return out

    def _vectors(self, vectors: Any, n: int) -> np.ndarray:
        try:
            arr = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"vectors are not numeric: {exc}") from None
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise InvalidInputError(
                f"expected {n} vector(s) of dim {self.dim}, got shape {tuple(arr.shape)}"
            )
        if arr.shape[1] != self.dim:
            raise InvalidInputError(
                f"vectors have dim {arr.shape[1]}, the store's dim is {self.dim}",
                hint=f"this store holds {self.pinned[0]!r} vectors of dim {self.pinned[1]}",
            )
        norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))  # NaN/inf anywhere -> non-finite norm
        if not np.isfinite(norms).all():
            bad = int(np.flatnonzero(~np.isfinite(norms))[0])
            raise InvalidInputError(f"vector #{bad} contains NaN or infinity")
        if (norms == 0).any():
            bad = int(np.flatnonzero(norms == 0)[0])
            raise InvalidInputError(
                f"vector #{bad} is all zeros", hint="a zero vector has no direction to search"
            )
        return np.ascontiguousarray(arr / norms[:, None], dtype=np.float32)

    def _query_vector(self, query: Any) -> np.ndarray:
        """One query vector, validated and normalised (a lean path for a float32 1-D array,
        the common case on the search hot path; anything else goes through :meth:`_vectors`)."""
        if (
            isinstance(query, np.ndarray)
            and query.dtype is _F32  # builtin dtypes are singletons
            and query.shape == (self.dim,)
        ):
            norm2 = float(np.dot(query, query))  # NaN/inf anywhere -> non-finite
            if abs(norm2 - 1.0) <= 1e-6:  # already unit length (an embedder's output)
                return query
            if math.isfinite(norm2) and norm2 > 0:
                return query / np.float32(math.sqrt(norm2))
        vector: np.ndarray = self._vectors(query, 1)[0]
        return vector

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embed with the LRU cache (and the persisted cache when enabled)."""
        if self.embedder is None:
            raise InvalidInputError(
                "this store was opened without an embedder, so text cannot be embedded",
                hint='pass vectors=..., or open with embedder="default" '
                '(pip install "magray-memory[ai]") or your own Embedder',
            )
        model = self.embedder.model_id
        keys = [text_hash(t) for t in texts]
        out: list[np.ndarray | None] = [self.cache.get(model, k) for k in keys]
        missing = [i for i, v in enumerate(out) if v is None]
        if missing and self.settings.cache_persist:
            stored = self._backend.cached_vectors(model, [keys[i] for i in missing])
            for i in missing:
                blob = stored.get(keys[i])
                if blob is not None and len(blob) == self.dim * 4:
                    out[i] = np.frombuffer(blob, dtype=np.float32)
                    self.cache.put(model, keys[i], out[i])  # type: ignore[arg-type]
            missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            unique = list(dict.fromkeys(texts[i] for i in missing))
            with self.metrics.histogram("memory.embed.latency_ms").time():
                raw = self.embedder.embed(unique)
            self.metrics.counter("memory.embed.texts").inc(len(unique))
            vecs = self._check_embedded(raw, len(unique))
            by_text = dict(zip(unique, vecs, strict=True))
            for i in missing:
                out[i] = by_text[texts[i]]
                self.cache.put(model, keys[i], by_text[texts[i]])
            if self.settings.cache_persist:
                self._backend.cache_vectors(model, [(text_hash(t), v) for t, v in by_text.items()])
        return np.vstack([v for v in out if v is not None]).astype(np.float32, copy=False)

    def _check_embedded(self, raw: Any, n: int) -> np.ndarray:
        from magray.common.errors import ModelError

        arr = np.asarray(raw, dtype=np.float32)
        if arr.shape != (n, self.dim) or not np.isfinite(arr).all():
            raise ModelError(
                f"embedder {self.model_id!r} returned shape {arr.shape} (or non-finite values), "
                f"expected ({n}, {self.dim}) finite floats"
            )
        norms = np.linalg.norm(arr, axis=1)
        norms[norms == 0] = 1.0
        out: np.ndarray = arr / norms[:, None]
        return out

    def _ttl(self, layer: Layer) -> float | None:
        if layer is Layer.INTERACT:
            return self.settings.ttl_interact_hours * 3600.0
        if layer is Layer.INSIGHTS:
            return self.settings.ttl_insights_days * 86400.0
        return None

    def _expiry(self, layer: Layer, now: float) -> float | None:
        ttl = self._ttl(layer)
        return None if ttl is None else now + ttl

    @staticmethod
    def _metadata_json(meta: Any, i: int = 0) -> str:
        if meta is None:
            return "{}"
        if not isinstance(meta, Mapping):
            raise InvalidInputError(f"metadata #{i} must be a dict, not {type(meta).__name__}")
        for key in meta:
            if not isinstance(key, str):
                raise InvalidInputError(f"metadata #{i} has a non-string key {key!r}")
        check_nested(meta, f"metadata #{i}")
        try:
            return json.dumps(dict(meta), sort_keys=True, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"metadata #{i} is not JSON-serialisable: {exc}",
                hint="use str, int, float (finite), bool, None, lists and dicts",
            ) from None

    @staticmethod
    def _importance(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"importance must be a number in [0, 1], not {value!r}")
        if not (0.0 <= float(value) <= 1.0) or math.isnan(value):
            raise InvalidInputError(f"importance must be in [0, 1], not {value}")
        return float(value)
