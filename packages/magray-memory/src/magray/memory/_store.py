"""``MemoryStore``: the public SDK over a storage backend."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, overload

import numpy as np

from magray.common.errors import (
    DependencyMissingError,
    InvalidInputError,
    NotFoundError,
)
from magray.common.log import get_logger
from magray.common.metrics import MetricsRegistry, default_registry
from magray.memory._backend import BACKENDS_GROUP, BackendConfig, NewRecord, StorageBackend
from magray.memory._cache import EmbeddingCache, text_hash
from magray.memory._index import HNSWParams
from magray.memory._local import LocalBackend
from magray.memory._plugins import load_embedder, load_reranker
from magray.memory._scoring import Explanation, PromotionPolicy
from magray.memory._sqlite import translate
from magray.memory._transfer import (
    backup_store,
    copy_records,
    export_records,
    import_records,
    reindex_store,
)
from magray.memory._types import Embedder, Hit, Layer, Record, Reranker
from magray.memory.errors import ModelMismatchError, RecordNotFoundError

if TYPE_CHECKING:
    from magray.common.settings import MemorySettings

__all__ = ["MemoryStore"]

log = get_logger("magray.memory")

MAX_ID_CHARS = 256
MAX_DEPTH = 32
"""Deepest nesting of metadata dicts/lists and of ``$and``/``$or`` in a filter."""
_ALL_LAYERS = list(Layer)
_F32 = np.dtype(np.float32)
MAX_K = 10_000
_UNSET: Any = ...
_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(method: _F) -> _F:
    """Turn a SQLite or OS failure inside a public method into a :class:`StorageError`
    subclass (full, read-only, permission denied, corrupt, ...) naming the store."""

    @functools.wraps(method)
    def wrapper(self: MemoryStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            where = f"memory store {self.location}: {method.__name__}"
            raise translate(exc, self.path, where) from exc

    return wrapper  # type: ignore[return-value]


def _bad_text(value: str) -> int | None:
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
            at = _bad_text(node)
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


def _open_backend(
    settings: MemorySettings, path: Path, config: BackendConfig, *, recover: bool = False
) -> StorageBackend:
    """The configured backend: built-in ``local``, or a ``magray.memory.backends`` entry point."""
    if settings.backend == "local":
        return LocalBackend(path, config=config, recover=recover)
    from importlib.metadata import entry_points

    for ep in entry_points(group=BACKENDS_GROUP, name=settings.backend):
        backend: StorageBackend = ep.load()(str(settings.dsn or path), settings)
        return backend
    raise DependencyMissingError(
        f"no memory backend named {settings.backend!r} is installed",
        hint=f"install the package that registers it under {BACKENDS_GROUP}, or use 'local'",
    )


def _default_settings() -> MemorySettings:
    from magray.common.settings import MemorySettings

    return MemorySettings()


class MemoryStore:
    """A three-layer vector store. Open it with :meth:`MemoryStore.open`.

    Thread-safe; several processes may open the same directory (writes are
    serialised, each process sees the others' committed writes).
    """

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

    # ------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        embedder: Embedder | str | None = "default",
        *,
        dim: int | None = None,
        model_id: str | None = None,
        settings: MemorySettings | None = None,
        clock: Callable[[], float] | None = None,
        policy: PromotionPolicy | None = None,
        metrics: MetricsRegistry | None = None,
        recover: bool = False,
    ) -> MemoryStore:
        """Open (or create) the store in directory ``path`` or at a PostgreSQL DSN.

        Args:
            path: Store directory (default: ``settings.path`` or ``<data>/memory``), or a
                ``postgresql://...`` DSN, which selects the postgres backend (``pip install
                "magray-memory[postgres]"``; ``?schema=NAME`` picks the store's schema).
            embedder: ``"default"`` or another name from the ``magray.embedders`` entry
                points, an :class:`Embedder` object, or ``None`` for a vectors-only store.
            dim: Vector dimension of a new vectors-only store.
            model_id: Name recorded for caller-supplied vectors (default ``"external"``).
            settings: Tuning (TTLs, thresholds, HNSW parameters); defaults otherwise.
            clock: Returns the current Unix time; inject one in tests.
            policy: Promotion rule (default built from ``settings``).
            metrics: Where latencies and counts are reported.
            recover: When ``memory.db`` is missing, empty or behind the saved index, start
                from what the database holds (rebuild the index) instead of raising; what
                was lost is in ``stats()["index_status"]["recovered"]`` and in
                :meth:`check`.

        A store this process may read but not write (permissions, a read-only mount)
        opens read-only: searches and reads work, writes raise
        :class:`~magray.common.errors.ReadOnlyStorageError`.

        Raises:
            DependencyMissingError: ``embedder`` names an embedder that is not installed.
            InvalidInputError: A new vectors-only store without ``dim``.
            DatabaseMissingError: Index files exist but ``memory.db`` is missing or empty.
            DatabaseRegressedError: ``memory.db`` lost changes the saved index had seen.
            StoreCorruptError: SQLite reports the database file as damaged.
            StorageError: Another storage failure (full, permission denied, ...).
        """
        settings = settings or _default_settings()
        if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
            settings = settings.model_copy(update={"backend": "postgres", "dsn": path})
        if path is None and settings.backend != "local" and settings.dsn:
            path = settings.dsn
        if path is None:
            from magray.common import paths

            path = settings.path or paths.data_dir() / "memory"
        path = Path(path).expanduser() if settings.backend == "local" else Path(str(path))
        if isinstance(embedder, str):
            embedder = load_embedder(embedder)
        elif embedder is not None and not isinstance(embedder, Embedder):
            raise InvalidInputError(
                f"embedder must be a name, an Embedder or None, not {type(embedder).__name__}",
                hint="an Embedder has model_id, dim and embed(texts) -> float32 (n, dim)",
            )
        if embedder is not None and dim is not None and dim != embedder.dim:
            raise InvalidInputError(
                f"dim={dim} contradicts the embedder's dim {embedder.dim}",
                hint="leave dim unset when passing an embedder",
            )
        config = BackendConfig(
            flat_threshold=settings.flat_threshold,
            hnsw=HNSWParams(
                m=settings.hnsw_m,
                ef_construction=settings.hnsw_ef_construction,
                ef_search=settings.hnsw_ef_search,
            ),
            tombstone_ratio=settings.tombstone_ratio,
            exact_filter_limit=settings.exact_filter_limit,
            autosave_changes=settings.index_autosave_changes,
            hit_cache_bytes=settings.hit_cache_bytes,
            background_compaction=settings.background_compaction,
        )
        try:
            backend = _open_backend(settings, path, config, recover=recover)
        except (sqlite3.Error, OSError) as exc:
            raise translate(exc, path, f"cannot open memory store {path}") from exc
        try:
            want_model = embedder.model_id if embedder is not None else model_id
            want_dim = embedder.dim if embedder is not None else dim
            pinned = backend.pinned()
            if pinned is None:
                if want_dim is None:
                    raise InvalidInputError(
                        f"{path} is a new store and no embedder was given, so its vector "
                        "dimension is unknown",
                        hint="pass dim=... for a vectors-only store, or an embedder",
                    )
                if want_dim < 1:
                    raise InvalidInputError(f"dim must be positive, not {want_dim}")
                pinned = backend.pin(want_model or "external", int(want_dim))
            model = want_model or pinned[0]
            size = int(want_dim) if want_dim is not None else pinned[1]
        except (sqlite3.Error, OSError) as exc:
            backend.close()
            raise translate(exc, path, f"cannot open memory store {path}") from exc
        except BaseException:
            backend.close()
            raise
        return cls(
            backend,
            embedder=embedder,
            model_id=model,
            dim=size,
            settings=settings,
            clock=clock or time.time,
            policy=policy,
            metrics=metrics,
        )

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

    @_guarded
    def close(self) -> None:
        """Flush access counts, save the index if it changed, and close the database."""
        self._backend.close()

    def __enter__(self) -> MemoryStore:
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
            at = _bad_text(text)
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

    # ------------------------------------------------------------ writes
    @_guarded
    def add(
        self,
        texts: str | Sequence[str],
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
        *,
        layer: Layer | str = Layer.INTERACT,
        ids: Sequence[str | None] | None = None,
        vectors: Any = None,
        importance: float | Sequence[float] | None = None,
        pinned: bool = False,
    ) -> list[str]:
        """Add memories; returns their ids in input order.

        The whole call is one transaction: when it returns, every record is on
        disk (and survives ``kill -9``); when it raises, nothing was added.
        With dedupe on (the default), a text already in the layer is not stored
        again: its existing id is returned instead.

        Args:
            texts: One text or a list of texts.
            metadata: One dict for all texts, or one dict (or None) per text.
            layer: ``interact`` (default), ``insights`` or ``assets``.
            ids: Your own ids (``None`` entries get a random hex id); an id already stored raises
                :class:`~magray.memory.errors.DuplicateIdError`.
            vectors: Precomputed vectors ``(n, dim)``; they are L2-normalised.
                Without them the store's embedder embeds the texts.
            importance: Your 0–1 rating (one for all, or one per text); default 0.5.
            pinned: Archive to ``assets`` instead of deleting when the TTL passes.
        """
        items = self._texts(texts)
        n = len(items)
        if n == 0:
            return []
        layer = Layer.parse(layer)
        if metadata is None or isinstance(metadata, Mapping):
            metas = [self._metadata_json(metadata)] * n
        else:
            metas_list = list(metadata)
            if len(metas_list) != n:
                raise InvalidInputError(f"{n} texts but {len(metas_list)} metadata dicts")
            metas = [self._metadata_json(m, i) for i, m in enumerate(metas_list)]
        id_list: list[str | None] = [None] * n
        if ids is not None:
            if isinstance(ids, str):
                ids = [ids]
            id_list = list(ids)
            if len(id_list) != n:
                raise InvalidInputError(f"{n} texts but {len(id_list)} ids")
            for i, rid in enumerate(id_list):
                if rid is None:
                    continue  # generated
                if (
                    not isinstance(rid, str)
                    or not rid.strip()
                    or len(rid) > MAX_ID_CHARS
                    or _bad_text(rid) is not None
                ):
                    raise InvalidInputError(
                        f"id #{i} ({rid!r}) must be a non-blank string of at most "
                        f"{MAX_ID_CHARS} characters, valid Unicode"
                    )
            given = [rid for rid in id_list if rid is not None]
            if len(set(given)) != len(given):
                raise InvalidInputError("ids repeat within one add() call")
        if importance is None:
            imps = [0.5] * n
        elif isinstance(importance, int | float):
            imps = [self._importance(importance)] * n
        else:
            imps = [self._importance(v) for v in importance]
            if len(imps) != n:
                raise InvalidInputError(f"{n} texts but {len(imps)} importance values")
        self._check_model()
        vecs = self._vectors(vectors, n) if vectors is not None else self._embed(items)
        now = self.clock()
        rows = [
            NewRecord(
                id=id_list[i],
                layer=layer,
                text=items[i],
                metadata_json=metas[i],
                vector=vecs[i],
                content_hash=text_hash(items[i]),
                importance=imps[i],
                pinned=bool(pinned),
                expires_at=self._expiry(layer, now),
            )
            for i in range(n)
        ]
        with self.metrics.histogram("memory.add.latency_ms").time():
            out = self._backend.insert(rows, dedupe=self.settings.dedupe, now=now)
        self.metrics.counter("memory.add.records").inc(n)
        return out

    @_guarded
    def add_stream(
        self,
        items: Iterable[str | Mapping[str, Any] | tuple[str, Mapping[str, Any]]],
        *,
        batch_size: int = 256,
        layer: Layer | str = Layer.INTERACT,
        pinned: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Add a large iterable in batches (one transaction each); returns all ids.

        Items are texts, ``(text, metadata)`` pairs, or dicts with ``text`` and
        optional ``metadata``, ``id``, ``vector``, ``importance``. ``progress``
        is called with the running count after each committed batch, so a
        crash loses at most the batch in flight.
        """
        if batch_size < 1:
            raise InvalidInputError("batch_size must be at least 1")
        ids: list[str] = []
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            if not batch:
                return
            with_vec = [b for b in batch if b.get("vector") is not None]
            if with_vec and len(with_vec) != len(batch):
                raise InvalidInputError(
                    "a batch mixes items with and without vectors", hint="give all or none"
                )
            given_ids = [b.get("id") for b in batch]
            imps = [b.get("importance", 0.5) for b in batch]
            ids.extend(
                self.add(
                    [b["text"] for b in batch],
                    [b.get("metadata") for b in batch],
                    layer=layer,
                    ids=given_ids if any(i is not None for i in given_ids) else None,
                    vectors=[b["vector"] for b in batch] if with_vec else None,
                    importance=imps,
                    pinned=pinned,
                )
            )
            batch.clear()
            if progress is not None:
                progress(len(ids))

        for item in items:
            if isinstance(item, str):
                batch.append({"text": item})
            elif isinstance(item, tuple):
                batch.append({"text": item[0], "metadata": item[1]})
            elif isinstance(item, Mapping):
                if "text" not in item:
                    raise InvalidInputError("stream item dicts need a 'text' key")
                batch.append(dict(item))
            else:
                raise InvalidInputError(f"cannot add a stream item of type {type(item).__name__}")
            if len(batch) >= batch_size:
                flush()
        flush()
        return ids

    @_guarded
    def update(
        self,
        id: str,
        *,
        text: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        vector: Any = None,
        importance: float | None = None,
        pinned: bool | None = None,
        layer: Layer | str | None = None,
    ) -> Record:
        """Change one record; returns it as stored now.

        A new ``text`` is re-embedded (or takes ``vector``); ``metadata`` replaces
        the old dict. Moving to another ``layer`` resets the TTL for that layer.

        Raises:
            RecordNotFoundError: No record has this id.
        """
        kwargs: dict[str, Any] = {}
        if text is not None:
            text = self._texts(text)[0]
            kwargs["text"] = text
            kwargs["content_hash"] = text_hash(text)
        if metadata is not None:
            kwargs["metadata_json"] = self._metadata_json(metadata)
        if importance is not None:
            kwargs["importance"] = self._importance(importance)
        if pinned is not None:
            kwargs["pinned"] = bool(pinned)
        now = self.clock()
        if layer is not None:
            kwargs["layer"] = Layer.parse(layer)
            kwargs["expires_at"] = self._expiry(kwargs["layer"], now)
        if vector is not None or text is not None:
            self._check_model()
            if vector is not None:
                kwargs["vector"] = self._vectors(vector, 1)[0]
            else:
                kwargs["vector"] = self._embed([text])[0]  # type: ignore[list-item]
        return self._backend.update(id, now=now, **kwargs)

    @_guarded
    def delete(self, ids: str | Sequence[str]) -> list[str]:
        """Delete records (missing ids are ignored); returns the ids that were deleted."""
        if isinstance(ids, str):
            ids = [ids]
        return self._backend.delete(list(ids), now=self.clock())

    # ------------------------------------------------------------ reads
    @overload
    def get(self, ids: str, *, with_vector: bool = False) -> Record: ...  # type: ignore[overload-overlap]
    @overload
    def get(self, ids: Sequence[str], *, with_vector: bool = False) -> list[Record]: ...
    @_guarded
    def get(self, ids: str | Sequence[str], *, with_vector: bool = False) -> Record | list[Record]:
        """One record by id (raises if missing), or the found records of a list of ids."""
        if isinstance(ids, str):
            found = self._backend.get([ids], with_vector=with_vector)
            if not found:
                raise RecordNotFoundError(
                    f"no memory record with id {ids!r}", hint="`magray memory list` shows ids"
                )
            return found[0]
        return self._backend.get(list(ids), with_vector=with_vector)

    @_guarded
    def list_records(
        self,
        *,
        layer: Layer | str | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = 100,
        offset: int = 0,
        order: str = "created_at",
        descending: bool = True,
    ) -> list[Record]:
        """Records in a layer / matching a filter, newest first (no similarity search)."""
        if where:
            check_nested(where, "the filter")
        return self._backend.select(
            layer=Layer.parse(layer) if layer is not None else None,
            where=dict(where) if where else None,
            limit=limit,
            offset=offset,
            order=order,
            descending=descending,
        )

    @_guarded
    def count(self, layer: Layer | str | None = None) -> int:
        counts = self._backend.counts()
        if layer is None:
            return sum(counts.values())
        return counts[Layer.parse(layer).value]

    def search(
        self,
        query: str | Sequence[float] | np.ndarray,
        k: int = 10,
        *,
        layers: Sequence[Layer | str] | Layer | str | None = None,
        where: Mapping[str, Any] | None = None,
        rerank: bool = False,
        ef_search: int | None = None,
    ) -> list[Hit]:
        """The ``k`` most similar memories, best first.

        Args:
            query: A text (embedded with the store's embedder) or a vector.
            k: How many hits.
            layers: Layers to search (default: all three).
            where: Metadata/record filter (see :mod:`magray.memory` docs); the
                results are exactly the top-k among matching records (approximate
                only within HNSW layers when more than ``exact_filter_limit`` match).
            rerank: Rerank ``k × rerank_candidates`` candidates with the installed
                cross-encoder (a warning and plain results when none is installed).
            ef_search: HNSW search breadth for this query (default: settings).
        """
        # No decorator on the hot path: a try block costs nothing until it raises.
        try:
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
                raise InvalidInputError(f"k must be an integer from 1 to {MAX_K}, not {k!r}")
            chosen = self._layers(layers)
            if where:
                check_nested(where, "the filter")
            text_query = query if isinstance(query, str) else None
            if text_query is not None:
                if not text_query.strip():
                    raise InvalidInputError("the search query is empty")
                check_nested(text_query, "the search query")
                self._check_model()
                qvec = self._embed([text_query])[0]
            else:
                qvec = self._query_vector(query)
            fetch = min(MAX_K, k * self.settings.rerank_candidates) if rerank else k
            now = self.clock()
            start = time.perf_counter()
            hits = self._backend.search(
                qvec,
                fetch,
                layers=chosen,
                where=dict(where) if where else None,
                now=now,
                ef_search=ef_search,
            )
            self._search_latency.observe((time.perf_counter() - start) * 1000.0)
            self._search_calls.inc()
            if rerank:
                hits = self._rerank(text_query, hits, k)[:k]
            self._backend.touch([h.id for h in hits], now)
            return hits
        except (sqlite3.Error, OSError) as exc:
            raise translate(exc, self.path, f"memory store {self.location}: search") from exc

    @_guarded
    def search_many(
        self,
        queries: Sequence[str] | np.ndarray | Sequence[Sequence[float]],
        k: int = 10,
        *,
        layers: Sequence[Layer | str] | Layer | str | None = None,
        where: Mapping[str, Any] | None = None,
        ef_search: int | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries at once (one embedding batch, one faiss call per
        layer, all cores); returns one hit list per query, in order. No reranking."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InvalidInputError(f"k must be an integer from 1 to {MAX_K}, not {k!r}")
        if isinstance(queries, str):
            raise InvalidInputError("search_many takes a list of queries; use search() for one")
        chosen = self._layers(layers)
        if where:
            check_nested(where, "the filter")
        items = list(queries)
        if not items:
            return []
        if all(isinstance(q, str) for q in items):
            self._check_model()
            qvecs = self._embed(self._texts(items))
        elif any(isinstance(q, str) for q in items):
            raise InvalidInputError("search_many takes all texts or all vectors, not a mix")
        else:
            qvecs = self._vectors(np.asarray(items, dtype=np.float32), len(items))
        now = self.clock()
        found = self._backend.search_many(
            qvecs,
            k,
            layers=chosen,
            where=dict(where) if where else None,
            now=now,
            ef_search=ef_search,
        )
        self._search_calls.inc(len(items))
        self._backend.touch([h.id for hits in found for h in hits], now)
        return found

    def _layers(self, layers: Sequence[Layer | str] | Layer | str | None) -> list[Layer]:
        if layers is None:
            return _ALL_LAYERS
        if isinstance(layers, str):
            return [Layer.parse(layers)]
        return list(dict.fromkeys(Layer.parse(x) for x in layers))

    def _rerank(self, query: str | None, hits: list[Hit], k: int) -> list[Hit]:
        if not hits:
            return hits
        if query is None:
            log.warning("rerank skipped: the query is a vector, a reranker needs its text")
            return hits
        try:
            if self._reranker is None:
                self._reranker = load_reranker("default")
            scores = np.asarray(
                self._reranker.rerank(query, [h.text for h in hits]), dtype=np.float64
            )
        except (DependencyMissingError, NotFoundError) as exc:
            log.warning(
                "rerank skipped: no reranker available; returning similarity order",
                error=exc.message,
                hint=exc.hint,
            )
            return hits
        if scores.shape != (len(hits),):
            from magray.common.errors import ModelError

            raise ModelError(f"reranker returned {scores.shape} scores for {len(hits)} texts")
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
        return [
            Hit(hits[i].id, float(scores[i]), hits[i].text, hits[i].metadata, hits[i].layer)
            for i in order[:k]
        ]

    # ------------------------------------------------------------ lifecycle of memories
    @_guarded
    def explain(self, id: str) -> Explanation:
        """The features, weights and score of a record, and what promote/expire would do."""
        record = self.get(id)
        return self.policy.explain(record, self.clock())

    @_guarded
    def promote(self, *, dry_run: bool = False) -> list[dict[str, Any]]:
        """Move records whose score passes their layer's threshold up one layer.

        Returns one ``{"id", "from", "to", "score"}`` per move (planned only with
        ``dry_run``). Each move is recorded in :meth:`history` with its features.
        """
        now = self.clock()
        self._backend.flush()
        plans: list[dict[str, Any]] = []
        moves: list[tuple[str, Layer, float | None, str, dict[str, Any]]] = []
        for record in self._backend.iter_records(layers=[Layer.INTERACT, Layer.INSIGHTS]):
            if record.expires_at is not None and record.expires_at <= now:
                continue  # expire() decides about those
            why = self.policy.explain(record, now)
            if why.promote_to is None:
                continue
            plans.append(
                {
                    "id": record.id,
                    "from": record.layer.value,
                    "to": why.promote_to.value,
                    "score": why.score,
                }
            )
            details = {
                "from": record.layer.value,
                "score": round(why.score, 6),
                "features": {k: round(v, 6) for k, v in why.features.items()},
            }
            moves.append(
                (record.id, why.promote_to, self._expiry(why.promote_to, now), "promote", details)
            )
        if not dry_run:
            self._backend.move(moves, now=now)
        return plans

    @_guarded
    def expire(self, *, archive_pinned: bool = True, dry_run: bool = False) -> dict[str, list[str]]:
        """Remove records past their TTL; pinned ones move to ``assets`` instead.

        Returns ``{"expired": [ids deleted], "archived": [ids moved to assets]}``.
        """
        now = self.clock()
        expired: list[str] = []
        archived: list[tuple[str, str]] = []
        for record_id, layer, is_pinned in self._backend.expired_ids(now):
            if is_pinned and archive_pinned:
                archived.append((record_id, layer))
            else:
                expired.append(record_id)
        if not dry_run:
            self._backend.move(
                [(rid, Layer.ASSETS, None, "archive", {"from": layer}) for rid, layer in archived],
                now=now,
            )
            self._backend.delete(
                expired,
                now=now,
                event="expire",
                details={rid: {"ttl_passed": True} for rid in expired},
            )
        return {"expired": expired, "archived": [rid for rid, _ in archived]}

    @_guarded
    def history(self, id: str) -> list[dict[str, Any]]:
        """Every add/update/promote/archive/expire/delete of a record, oldest first.

        History outlives the record, so you can see why a memory vanished.

        Raises:
            RecordNotFoundError: The id never existed.
        """
        events = self._backend.history(id)
        if not events:
            raise RecordNotFoundError(f"no history for memory id {id!r}")
        return events

    # ------------------------------------------------------------ operations
    @_guarded
    def stats(self) -> dict[str, Any]:
        """Counts per layer, index kinds, tombstones, file sizes, cache hit rate."""
        out = self._backend.stats()
        out["session_model_id"] = self.model_id
        out["model_matches"] = self.model_matches
        out["embedder"] = None if self.embedder is None else self.embedder.model_id
        out["cache"] = self.cache.stats()
        out["flat_threshold"] = self.settings.flat_threshold
        return out

    @_guarded
    def consistency(self) -> dict[str, dict[str, int | bool]]:
        """Per layer: records in SQLite, live vectors in the index, and whether they agree."""
        return self._backend.consistency()

    @_guarded
    def check(self, *, repair: bool = False) -> dict[str, Any]:
        """Check the store for damage: SQLite's ``integrity_check``, the checksum of every
        saved index file, and the index against the database label by label and vector by
        vector (``magray memory check``).

        Args:
            repair: Rebuild (and save) an index that fails from SQLite, then check again.
                A damaged database itself is reported, never "repaired" (restore a backup).

        Returns:
            ``{"ok", "problems", "integrity", "checksums", "layers", "index_status",
            "recovered", "damage_events", "read_only", "repaired", "path"}`` on the local
            backend; ``{"ok", "layers", "path"}`` (counts only) on others.
        """
        checker = getattr(self._backend, "check", None)
        if checker is not None:
            report: dict[str, Any] = checker(repair=repair)
            return report
        layers = self.consistency()
        return {
            "path": self.location,
            "ok": all(c["ok"] for c in layers.values()),
            "layers": layers,
        }

    @_guarded
    def save(self) -> bool:
        """Persist the index now (it is also saved on close); returns whether it wrote."""
        self._backend.flush()
        return self._backend.save_index()

    @_guarded
    def warm_up(self) -> int:
        """Load the rows search hits show (id, text, metadata) into the in-process hit cache
        now, newest records first, up to ``memory.hit_cache_bytes``; returns how many.

        Right after opening, a search reads the rows of hits not yet cached from SQLite
        (about 25 µs per search at 100k records); after a warm-up it does not. A long-running
        process that searches many vectors may call this at start (about 0.15 s per 100k
        records), or from a thread: searches go on between its batches. A no-op (0) on
        PostgreSQL.
        """
        return self._backend.warm_up()

    @_guarded
    def rebuild_index(self) -> None:
        """Throw the index away and rebuild it from SQLite."""
        self._backend.rebuild()
        self._backend.save_index(force=True)

    @_guarded
    def vacuum(self) -> dict[str, Any]:
        """Reclaim space: drop index tombstones, prune the change log, VACUUM SQLite."""
        return self._backend.vacuum()

    @_guarded
    def backup(self, dest: str | Path) -> dict[str, Any]:
        """Copy the store (SQLite online backup + index) into a new directory."""
        return backup_store(self, dest)

    @_guarded
    def reindex(
        self, *, batch_size: int = 64, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Re-embed every record with this session's embedder and re-pin the store to it.

        Resumable: records already re-embedded are skipped after a crash.
        Returns the number of records re-embedded.
        """
        return reindex_store(self, batch_size=batch_size, progress=progress)

    @_guarded
    def copy_to(
        self,
        dest: MemoryStore,
        *,
        batch_size: int = 500,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Copy every record into another store (e.g. local -> postgres), vectors bit for bit.

        Ids, texts, metadata, layers, timestamps, access counts, importance, pins and
        TTLs are kept; records whose id already exists in ``dest`` are skipped (so an
        interrupted copy can simply be run again). History events stay in this store.
        Afterwards every source id is looked up in ``dest`` and the per-layer counts
        are compared; returns ``{"copied", "skipped", "source", "dest", "verified"}``.

        Raises:
            ModelMismatchError: ``dest`` is pinned to another model or dim.
        """
        return copy_records(self, dest, batch_size=batch_size, progress=progress)

    @_guarded
    def export_jsonl(
        self,
        dest: str | Path | IO[str],
        *,
        with_vectors: bool = False,
        layers: Sequence[Layer | str] | None = None,
    ) -> int:
        """Write every record as one JSON object per line; returns the count."""
        return export_records(self, dest, with_vectors=with_vectors, layers=layers)

    @_guarded
    def import_jsonl(
        self,
        src: str | Path | IO[str],
        *,
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, int]:
        """Import records written by :meth:`export_jsonl` (ids and timestamps kept).

        Lines whose id already exists are skipped. Vectors are used when the
        line's model id and dim match this store; otherwise the text is embedded.
        Returns ``{"imported", "skipped", "embedded"}``.
        """
        return import_records(self, src, batch_size=batch_size, progress=progress)

    # ------------------------------------------------------------ async twins
    async def aadd(self, *args: Any, **kwargs: Any) -> list[str]:
        """:meth:`add` in a worker thread."""
        return await asyncio.to_thread(self.add, *args, **kwargs)

    async def aadd_stream(self, *args: Any, **kwargs: Any) -> list[str]:
        """:meth:`add_stream` in a worker thread."""
        return await asyncio.to_thread(self.add_stream, *args, **kwargs)

    async def asearch(self, *args: Any, **kwargs: Any) -> list[Hit]:
        """:meth:`search` in a worker thread."""
        return await asyncio.to_thread(self.search, *args, **kwargs)

    async def asearch_many(self, *args: Any, **kwargs: Any) -> list[list[Hit]]:
        """:meth:`search_many` in a worker thread."""
        return await asyncio.to_thread(self.search_many, *args, **kwargs)

    async def aget(self, *args: Any, **kwargs: Any) -> Any:
        """:meth:`get` in a worker thread."""
        return await asyncio.to_thread(self.get, *args, **kwargs)

    async def aupdate(self, *args: Any, **kwargs: Any) -> Record:
        """:meth:`update` in a worker thread."""
        return await asyncio.to_thread(self.update, *args, **kwargs)

    async def adelete(self, *args: Any, **kwargs: Any) -> list[str]:
        """:meth:`delete` in a worker thread."""
        return await asyncio.to_thread(self.delete, *args, **kwargs)

    async def apromote(self, **kwargs: Any) -> list[dict[str, Any]]:
        """:meth:`promote` in a worker thread."""
        return await asyncio.to_thread(self.promote, **kwargs)

    async def aexpire(self, **kwargs: Any) -> dict[str, list[str]]:
        """:meth:`expire` in a worker thread."""
        return await asyncio.to_thread(self.expire, **kwargs)

    async def awarm_up(self) -> int:
        """:meth:`warm_up` in a worker thread."""
        return await asyncio.to_thread(self.warm_up)

    async def astats(self) -> dict[str, Any]:
        """:meth:`stats` in a worker thread."""
        return await asyncio.to_thread(self.stats)

    async def aclose(self) -> None:
        """:meth:`close` in a worker thread."""
        await asyncio.to_thread(self.close)
