"""The core API: add/get/update/delete/search, validation, dedupe, layers and pinning."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from magray.common.errors import (
    ConflictError,
    DependencyMissingError,
    InvalidInputError,
    StorageError,
)
from magray.common.settings import MemorySettings
from magray.memory import (
    DuplicateIdError,
    Hit,
    Layer,
    MemoryStore,
    ModelMismatchError,
    RecordNotFoundError,
)
from memtestkit import Clock, HashingEmbedder, unit_vectors

Opener = Callable[..., MemoryStore]


def test_add_get_search_roundtrip_with_embedder(
    open_store: Opener, embedder: HashingEmbedder
) -> None:
    store = open_store(embedder)
    ids = store.add(
        ["the cat sat on the mat", "python asyncio event loop", "quarterly tax report"],
        [{"topic": "pets"}, {"topic": "code"}, {"topic": "money"}],
    )
    assert len(ids) == 3
    assert len(set(ids)) == 3
    hits = store.search("asyncio loop in python", k=2)
    assert isinstance(hits[0], Hit)
    assert hits[0].id == ids[1]
    assert hits[0].text == "python asyncio event loop"
    assert hits[0].metadata == {"topic": "code"}
    assert hits[0].layer is Layer.INTERACT
    assert hits[0].score > hits[1].score
    record = store.get(ids[0])
    assert record.text == "the cat sat on the mat"
    assert record.model_id == embedder.model_id
    assert [r.id for r in store.get([ids[2], "missing", ids[0]])] == [ids[2], ids[0]]
    with pytest.raises(RecordNotFoundError):
        store.get("missing")


def test_caller_ids_and_duplicate_id_is_refused_atomically(open_store: Opener) -> None:
    store = open_store()
    vecs = unit_vectors(3, 16)
    assert store.add(["a", "b"], ids=["x1", "x2"], vectors=vecs[:2]) == ["x1", "x2"]
    with pytest.raises(DuplicateIdError) as err:
        store.add(["c", "d"], ids=["x3", "x1"], vectors=vecs[1:])
    assert isinstance(err.value, ConflictError)
    assert err.value.hint
    assert store.count() == 2  # x3 was not added either


def test_an_import_repeating_an_id_is_refused_atomically(open_store: Opener) -> None:
    """Both backends refuse one batch holding an id twice with the same error (the
    shared insert checks it), and add nothing of that batch."""
    import io
    import json

    store = open_store()
    lines = [
        json.dumps({"id": rid, "text": text, "vector": vec.tolist(), "model_id": "external"})
        for rid, text, vec in zip(["y1", "y2", "y1"], "abc", unit_vectors(3, 16), strict=True)
    ]
    with pytest.raises(DuplicateIdError, match="appears twice"):
        store.import_jsonl(io.StringIO("\n".join(lines) + "\n"))
    assert store.count() == 0


@pytest.mark.parametrize(
    ("texts", "kwargs", "message"),
    [
        ([""], {}, "empty"),
        (["   "], {}, "empty"),
        (["a"], {"vectors": [[float("nan")] * 16]}, "NaN"),
        (["a"], {"vectors": [[float("inf")] + [0.0] * 15]}, "NaN or infinity"),
        (["a"], {"vectors": [[1.0] * 8]}, "dim 8"),
        (["a"], {"vectors": [[0.0] * 16]}, "all zeros"),
        (["a", "b"], {"vectors": [[1.0] * 16]}, "expected 2"),
        (["a"], {"metadata": [{"x": object()}]}, "JSON"),
        (["a"], {"metadata": [{"x": float("nan")}]}, "JSON"),
        (["a"], {"metadata": [{}, {}]}, "metadata"),
        (["a"], {"layer": "attic"}, "layer"),
        (["a", "b"], {"ids": ["same", "same"]}, "repeat"),
        (["a"], {"ids": [""]}, "non-blank"),
        (["a"], {"importance": 1.5}, "importance"),
        ([3], {}, "not str"),
    ],
)
def test_bad_input_is_rejected_with_clear_errors(
    open_store: Opener, texts: list[str], kwargs: dict[str, object], message: str
) -> None:
    store = open_store()
    kwargs.setdefault("vectors", unit_vectors(len(texts), 16))
    with pytest.raises(InvalidInputError, match=message):
        store.add(texts, **kwargs)  # type: ignore[arg-type]
    assert store.count() == 0


def test_text_without_embedder_needs_vectors(open_store: Opener) -> None:
    store = open_store()
    with pytest.raises(InvalidInputError, match="without an embedder") as err:
        store.add(["hello"])
    assert "magray-memory[ai]" in (err.value.hint or "")
    with pytest.raises(InvalidInputError):
        store.search("hello")


def test_search_input_validation(open_store: Opener) -> None:
    store = open_store()
    store.add(["a"], vectors=unit_vectors(1, 16))
    for k in (0, -1, 10_001, 1.5, True):
        with pytest.raises(InvalidInputError, match="k must"):
            store.search(unit_vectors(1, 16)[0], k=k)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="dim"):
        store.search(np.ones(5))
    with pytest.raises(InvalidInputError, match="NaN"):
        store.search(np.full(16, np.nan))
    with pytest.raises(InvalidInputError, match="filter"):
        store.search(unit_vectors(1, 16)[0], where={"bad key!": 1})
    with pytest.raises(InvalidInputError, match="operator"):
        store.search(unit_vectors(1, 16)[0], where={"x": {"$regex": "a"}})


def test_new_vectors_only_store_needs_dim(store_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="dim"):
        MemoryStore.open(store_dir, embedder=None)


def test_missing_default_embedder_gives_install_hint(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    real = importlib.metadata.entry_points

    def no_embedders(**kwargs: object) -> object:
        if kwargs.get("group") == "magray.embedders":
            return importlib.metadata.EntryPoints([])
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.metadata, "entry_points", no_embedders)
    with pytest.raises(DependencyMissingError) as err:
        MemoryStore.open(store_dir, embedder="default")
    assert err.value.hint is not None
    assert 'pip install "magray-memory[ai]"' in err.value.hint
    assert not (store_dir / "memory.db").exists()


def test_dedupe_per_layer(open_store: Opener, embedder: HashingEmbedder) -> None:
    store = open_store(embedder)
    first = store.add(["same text", "other"])
    again = store.add(["same text", "same text", "new one"])
    assert again[0] == first[0]
    assert again[1] == first[0]
    assert store.count() == 3
    other_layer = store.add(["same text"], layer="assets")
    assert other_layer[0] != first[0]
    assert store.count() == 4


def test_dedupe_can_be_disabled(
    target: Path | str, clock: Clock, embedder: HashingEmbedder
) -> None:
    with MemoryStore.open(
        target, embedder, settings=MemorySettings(dedupe=False), clock=clock
    ) as store:
        a = store.add(["dup"])
        b = store.add(["dup"])
        assert a != b
        assert store.count() == 2


def test_update_text_metadata_and_layer(
    open_store: Opener, embedder: HashingEmbedder, clock: Clock
) -> None:
    store = open_store(embedder)
    (rid,) = store.add(["alpha beta"], [{"v": 1}])
    clock.advance(10)
    record = store.update(rid, text="gamma delta", metadata={"v": 2}, importance=0.9)
    assert record.text == "gamma delta"
    assert record.metadata == {"v": 2}
    assert record.importance == 0.9
    assert record.updated_at == clock.now
    assert store.search("gamma delta", k=1)[0].id == rid
    assert all(h.id != rid or h.text == "gamma delta" for h in store.search("alpha beta", k=5))
    moved = store.update(rid, layer="assets")
    assert moved.layer is Layer.ASSETS
    assert moved.expires_at is None
    assert store.search("gamma delta", k=1, layers=["assets"])[0].id == rid
    assert store.search("gamma delta", k=1, layers=["interact"]) == []
    with pytest.raises(RecordNotFoundError):
        store.update("nope", metadata={})


def test_delete_removes_from_search_and_reports(open_store: Opener) -> None:
    store = open_store()
    vecs = unit_vectors(5, 16, seed=1)
    ids = store.add([f"t{i}" for i in range(5)], vectors=vecs)
    assert store.delete([ids[0], "missing"]) == [ids[0]]
    assert ids[0] not in {h.id for h in store.search(vecs[0], k=5)}
    assert store.count() == 4
    assert store.delete(ids[0]) == []


def test_search_defaults_to_all_layers_including_assets(open_store: Opener) -> None:
    store = open_store()
    vecs = unit_vectors(3, 16, seed=2)
    a = store.add(["i"], vectors=vecs[:1], layer="interact")
    b = store.add(["n"], vectors=vecs[1:2], layer="insights")
    c = store.add(["a"], vectors=vecs[2:3], layer="assets")
    found = {h.id: h.layer for h in store.search(vecs[2], k=3)}
    assert found == {a[0]: Layer.INTERACT, b[0]: Layer.INSIGHTS, c[0]: Layer.ASSETS}
    only = store.search(vecs[2], k=3, layers=["assets"])
    assert [h.id for h in only] == c


def test_model_pinning_refuses_other_model(target: Path | str, clock: Clock) -> None:
    with MemoryStore.open(target, HashingEmbedder(64, "model-a"), clock=clock) as store:
        store.add(["hello world"])
    other = HashingEmbedder(64, "model-b")
    with MemoryStore.open(target, other, clock=clock) as store:
        assert not store.model_matches
        with pytest.raises(ModelMismatchError) as err:
            store.add(["more"])
        assert "reindex" in (err.value.hint or "")
        with pytest.raises(ModelMismatchError):
            store.search("hello")
        assert store.count() == 1  # nothing rewritten
    with (
        MemoryStore.open(target, HashingEmbedder(32, "model-a"), clock=clock) as store,
        pytest.raises(ModelMismatchError, match="dim"),
    ):
        store.add(["more"])
    with MemoryStore.open(target, HashingEmbedder(64, "model-a"), clock=clock) as store:
        assert store.search("hello world", k=1)[0].text == "hello world"


def test_reindex_switches_model(target: Path | str, clock: Clock) -> None:
    with MemoryStore.open(target, HashingEmbedder(64, "model-a"), clock=clock) as store:
        store.add(["red apple", "blue sky", "green grass"])
    new = HashingEmbedder(32, "model-b")
    seen: list[tuple[int, int]] = []
    with MemoryStore.open(target, new, clock=clock) as store:
        assert store.reindex(batch_size=2, progress=lambda d, t: seen.append((d, t))) == 3
        assert seen[-1] == (3, 3)
        assert store.model_matches
        assert store.pinned == ("model-b", 32)
        assert store.search("blue sky", k=1)[0].text == "blue sky"
        store.add(["more"])
    with MemoryStore.open(target, new, clock=clock) as store:
        assert store.count() == 4
        assert store.consistency()["interact"]["ok"]
        assert store.get(store.search("red apple", k=1)[0].id).dim == 32


def test_embedding_cache_hits(open_store: Opener, embedder: HashingEmbedder) -> None:
    store = open_store(embedder)
    store.add(["one two", "three four"])
    before = embedder.texts_embedded
    store.search("one two")
    store.search("one two")
    assert embedder.texts_embedded == before
    assert store.cache.hits >= 2
    assert store.stats()["cache"]["hit_rate"] > 0


def test_persisted_embedding_cache(target: Path | str, clock: Clock) -> None:
    settings = MemorySettings(cache_persist=True)
    first = HashingEmbedder()
    with MemoryStore.open(target, first, settings=settings, clock=clock) as store:
        store.add(["persist me"])
    second = HashingEmbedder()
    with MemoryStore.open(target, second, settings=settings, clock=clock) as store:
        store.search("persist me")
        assert second.texts_embedded == 0


def test_stats_shape(open_store: Opener) -> None:
    store = open_store()
    store.add(["a", "b"], vectors=unit_vectors(2, 16))
    stats = store.stats()
    assert stats["records"] == 2
    assert stats["layers"]["interact"]["records"] == 2
    assert stats["layers"]["interact"]["index"] == "flat"
    assert stats["bytes"]["db"] > 0
    assert stats["dim"] == 16


def test_add_stream_batches_and_reports_progress(
    open_store: Opener, embedder: HashingEmbedder
) -> None:
    store = open_store(embedder)
    progress: list[int] = []
    items = (f"document number {i} about topic {i % 7}" for i in range(25))
    ids = store.add_stream(items, batch_size=10, progress=progress.append)
    assert len(ids) == 25
    assert progress == [10, 20, 25]
    more = store.add_stream(
        [("pair text", {"k": 1}), {"text": "dict text", "id": "given", "metadata": {"k": 2}}],
        batch_size=5,
    )
    assert more[1] == "given"
    assert store.get("given").metadata == {"k": 2}


def test_async_twins(open_store: Opener, embedder: HashingEmbedder) -> None:
    store = open_store(embedder)

    async def scenario() -> list[Hit]:
        ids = await store.aadd(["async one", "async two"])
        await store.aupdate(ids[0], metadata={"a": 1})
        hits = await store.asearch("async one", k=1)
        assert (await store.aget(ids[0])).metadata == {"a": 1}
        assert await store.adelete([ids[1]]) == [ids[1]]
        assert (await store.astats())["records"] == 1
        return hits

    hits = asyncio.run(scenario())
    assert hits[0].text == "async one"


def test_context_manager_closes(target: Path | str) -> None:
    with MemoryStore.open(target, None, dim=4) as store:
        store.add(["x"], vectors=[[1, 0, 0, 0]])
    with pytest.raises(Exception):  # noqa: B017,PT011 - sqlite3.ProgrammingError on a closed db
        store.count()


def test_postgres_backend_without_dsn_is_a_clear_error(store_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="postgresql://") as err:
        MemoryStore.open(store_dir, None, dim=4, settings=MemorySettings(backend="postgres"))
    assert err.value.hint
    assert "MAGRAY_MEMORY__DSN" in err.value.hint


def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    dsn = f"postgresql://nobody@/nodb?host={tmp_path}&connect_timeout=2"
    with pytest.raises(StorageError, match="cannot open the postgres memory store") as err:
        MemoryStore.open(dsn, None, dim=4)
    assert err.value.hint


def test_unknown_backend_is_refused_by_settings() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        MemorySettings(backend="nope")


def test_search_many_with_texts(open_store: Opener, embedder: HashingEmbedder) -> None:
    store = open_store(embedder)
    ids = store.add(["red apples", "blue ocean", "green forest"])
    many = store.search_many(["apples red", "forest green"], k=1)
    assert [hits[0].id for hits in many] == [ids[0], ids[2]]
    assert store.search_many([], k=3) == []
    with pytest.raises(InvalidInputError, match="mix"):
        store.search_many(["text", [0.0] * 64], k=1)  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="list of queries"):
        store.search_many("one text", k=1)
    assert store.get(ids[0]).access_count == 1  # hits of search_many count as accesses


def test_list_records_order_offset_and_count(open_store: Opener, clock: Clock) -> None:
    store = open_store()
    vecs = unit_vectors(5, 16, seed=12)
    ids = []
    for i in range(5):
        clock.advance(1)
        ids += store.add([f"t{i}"], [{"i": i}], vectors=vecs[i : i + 1], importance=i / 10)
    assert [r.id for r in store.list_records()] == ids[::-1]
    assert [r.id for r in store.list_records(limit=2, offset=1)] == [ids[3], ids[2]]
    assert [r.id for r in store.list_records(order="importance", descending=False)] == ids
    assert [r.id for r in store.list_records(where={"i": {"$gte": 3}})] == [ids[4], ids[3]]
    assert store.list_records(layer="assets") == []
    assert store.count() == 5
    assert store.count("interact") == 5
    assert store.count("assets") == 0


def test_rebuild_index_and_save(open_store: Opener, backend: str) -> None:
    store = open_store()
    vecs = unit_vectors(20, 16, seed=13)
    ids = store.add([f"t{i}" for i in range(20)], vectors=vecs)
    store.delete(ids[:3])
    store.rebuild_index()
    assert store.stats()["layers"]["interact"] == {
        "records": 17,
        "index": "flat",
        "indexed": 17,
        "tombstones": 0,
        "compacting": False,
    }
    assert store.search(vecs[10], k=1)[0].id == ids[10]
    assert store.save() is False  # the rebuild already saved this state
    store.add(["more"], vectors=unit_vectors(1, 16, seed=14))
    # local saves its faiss index files; PostgreSQL keeps its index itself (nothing to save)
    assert store.save() is (backend == "local")


def test_remaining_async_twins(open_store: Opener, embedder: HashingEmbedder, clock: Clock) -> None:
    store = open_store(embedder)

    async def scenario() -> None:
        ids = await store.aadd_stream(["one two", ("three four", {"k": 1})], batch_size=1)
        hits = await store.asearch_many(["one two", "three four"], k=1)
        assert [h[0].id for h in hits] == ids
        assert await store.apromote(dry_run=True) == []
        clock.advance(2 * 24 * 3600)
        assert sorted((await store.aexpire())["expired"]) == sorted(ids)
        await store.aclose()

    asyncio.run(scenario())


def test_export_selected_layers(open_store: Opener) -> None:
    import io

    store = open_store()
    store.add(["a"], vectors=unit_vectors(1, 16, seed=15), layer="assets")
    store.add(["b"], vectors=unit_vectors(1, 16, seed=16))
    buf = io.StringIO()
    assert store.export_jsonl(buf, layers=["assets"]) == 1
    assert '"text": "a"' in buf.getvalue()
    assert "vector" not in buf.getvalue()
