"""``MemoryStore``: the public SDK over a storage backend (layered: see ``_storecore``)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from magray.common.errors import (
    DependencyMissingError,
    InvalidInputError,
)
from magray.common.metrics import MetricsRegistry
from magray.memory._backend import BACKENDS_GROUP, BackendConfig, StorageBackend
from magray.memory._layerindex import HNSWParams
from magray.memory._local import LocalBackend
from magray.memory._plugins import load_embedder
from magray.memory._scoring import PromotionPolicy
from magray.memory._sqlite import translate
from magray.memory._storecore import (
    guarded,
)
from magray.memory._storereads import StoreReads
from magray.memory._transfer import (
    backup_store,
    copy_records,
    export_records,
    import_records,
    reindex_store,
)
from magray.memory._types import Embedder, Hit, Layer, Record

if TYPE_CHECKING:
    from magray.common.settings import MemorySettings

__all__ = ["MemoryStore"]


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


class MemoryStore(StoreReads):
    """A three-layer vector store. Open it with :meth:`MemoryStore.open`.

    Thread-safe; several processes may open the same directory (writes are
    serialised, each process sees the others' committed writes).
    """

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

    # ------------------------------------------------------------ lifecycle of memories
    @guarded
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

    @guarded
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

    # ------------------------------------------------------------ operations
    @guarded
    def stats(self) -> dict[str, Any]:
        """Counts per layer, index kinds, tombstones, file sizes, cache hit rate."""
        out = self._backend.stats()
        out["session_model_id"] = self.model_id
        out["model_matches"] = self.model_matches
        out["embedder"] = None if self.embedder is None else self.embedder.model_id
        out["cache"] = self.cache.stats()
        out["flat_threshold"] = self.settings.flat_threshold
        return out

    @guarded
    def consistency(self) -> dict[str, dict[str, int | bool]]:
        """Per layer: records in SQLite, live vectors in the index, and whether they agree."""
        return self._backend.consistency()

    @guarded
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

    @guarded
    def save(self) -> bool:
        """Persist the index now (it is also saved on close); returns whether it wrote."""
        self._backend.flush()
        return self._backend.save_index()

    @guarded
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

    @guarded
    def rebuild_index(self) -> None:
        """Throw the index away and rebuild it from SQLite."""
        self._backend.rebuild()
        self._backend.save_index(force=True)

    @guarded
    def vacuum(self) -> dict[str, Any]:
        """Reclaim space: drop index tombstones, prune the change log, VACUUM SQLite."""
        return self._backend.vacuum()

    @guarded
    def backup(self, dest: str | Path) -> dict[str, Any]:
        """Copy the store (SQLite online backup + index) into a new directory."""
        return backup_store(self, dest)

    @guarded
    def reindex(
        self, *, batch_size: int = 64, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Re-embed every record with this session's embedder and re-pin the store to it.

        Resumable: records already re-embedded are skipped after a crash.
        Returns the number of records re-embedded.
        """
        return reindex_store(self, batch_size=batch_size, progress=progress)

    @guarded
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

    @guarded
    def export_jsonl(
        self,
        dest: str | Path | IO[str],
        *,
        with_vectors: bool = False,
        layers: Sequence[Layer | str] | None = None,
    ) -> int:
        """Write every record as one JSON object per line; returns the count."""
        return export_records(self, dest, with_vectors=with_vectors, layers=layers)

    @guarded
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
