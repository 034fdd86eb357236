"""Writes of :class:`~magray.memory.MemoryStore`: add, add_stream, update, delete."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from magray.common.errors import InvalidInputError
from magray.memory._backend import NewRecord
from magray.memory._cache import text_hash
from magray.memory._storecore import (
    MAX_ID_CHARS,
    StoreCore,
    bad_text,
    guarded,
)
from magray.memory._types import Layer, Record

if TYPE_CHECKING:
    pass

__all__ = ["StoreWrites"]


class StoreWrites(StoreCore):
    """Validated writes: one backend transaction per call (per batch in streams)."""

    @guarded
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
                    or bad_text(rid) is not None
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

    @guarded
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

    @guarded
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

    @guarded
    def delete(self, ids: str | Sequence[str]) -> list[str]:
        """Delete records (missing ids are ignored); returns the ids that were deleted."""
        if isinstance(ids, str):
            ids = [ids]
        return self._backend.delete(list(ids), now=self.clock())
