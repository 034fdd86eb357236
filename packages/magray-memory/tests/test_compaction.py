"""Background compaction of HNSW layers: searches stay exact, writes meanwhile are kept."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from magray.common.settings import MemorySettings
from magray.memory import MemoryStore
from memtestkit import unit_vectors

DIM = 16
ALL = {"i": {"$gte": 0}}  # matches every record; few matches take the exact (brute-force) path


def _settings(**extra: object) -> MemorySettings:
    return MemorySettings(flat_threshold=50, tombstone_ratio=0.2, dedupe=False, **extra)  # type: ignore[arg-type]


def _exact(model: dict[str, np.ndarray], q: np.ndarray, k: int) -> list[str]:
    """Brute-force top-k over the test's own copy of the live records."""
    ids = list(model)
    scores = np.array([float(model[i] @ q) for i in ids])
    return [ids[j] for j in np.argsort(-scores, kind="stable")[:k]]


def _agree(store: MemoryStore, model: dict[str, np.ndarray], queries: np.ndarray) -> None:
    for q in queries:
        assert [h.id for h in store.search(q, k=5, where=ALL)] == _exact(model, q, 5)


def test_hnsw_layer_compacts_in_the_background_and_catches_up(tmp_path: Path) -> None:
    vecs = unit_vectors(400, DIM, seed=1, clusters=8)
    queries = unit_vectors(8, DIM, seed=2, clusters=8)
    store = MemoryStore.open(tmp_path / "s", None, dim=DIM, settings=_settings())
    ids = store.add(
        [f"t{i}" for i in range(400)], [{"i": i} for i in range(400)], vectors=vecs, layer="assets"
    )
    model = dict(zip(ids, vecs, strict=True))
    assert store.stats()["layers"]["assets"]["index"] == "hnsw"
    backend = store._backend  # type: ignore[attr-defined]
    entered, release = threading.Event(), threading.Event()

    def hold(layer: str) -> None:
        entered.set()
        assert release.wait(60)

    backend.compaction_hook = hold
    store.delete(ids[:100])  # 100 of 400 dead > 20%: the write returns, compaction runs
    for i in ids[:100]:
        del model[i]
    assert entered.wait(60)
    layer = store.stats()["layers"]["assets"]
    assert layer["compacting"] is True
    assert layer["tombstones"] == 100
    _agree(store, model, queries)  # the old index filters its tombstones meanwhile

    # writes while the compacted index waits to be swapped in
    store.delete(ids[100:110])
    for i in ids[100:110]:
        del model[i]
    extra = unit_vectors(30, DIM, seed=3, clusters=8)
    new_ids = store.add(
        [f"n{i}" for i in range(30)],
        [{"i": 1000 + i} for i in range(30)],
        vectors=extra,
        layer="assets",
    )
    model.update(zip(new_ids, extra, strict=True))
    store.update(ids[200], text="changed", metadata={"i": 200, "changed": True}, vector=vecs[200])
    release.set()
    assert backend.wait_for_compaction(60)

    layer = store.stats()["layers"]["assets"]
    assert layer["compacting"] is False
    assert layer["indexed"] == layer["records"] == 400 - 110 + 30
    assert layer["tombstones"] == 11  # the 10 deleted and the updated record's old label
    _agree(store, model, queries)
    assert store.search(extra[3], k=1)[0].id == new_ids[3]
    changed = store.search(vecs[200], k=1, where={"changed": True})[0]
    assert (changed.id, changed.text) == (ids[200], "changed")
    store.close()

    with MemoryStore.open(tmp_path / "s", None, settings=_settings()) as again:
        assert again.stats()["layers"]["assets"]["tombstones"] == 11  # the saved new index
        _agree(again, model, queries)


def test_compaction_is_inline_when_background_is_off(tmp_path: Path) -> None:
    vecs = unit_vectors(200, DIM, seed=4, clusters=4)
    with MemoryStore.open(
        tmp_path / "s", None, dim=DIM, settings=_settings(background_compaction=False)
    ) as store:
        ids = store.add([f"t{i}" for i in range(200)], [{"i": i} for i in range(200)], vectors=vecs)
        store.delete(ids[:80])  # at least min_compact (64) and over 20%
        layer = store.stats()["layers"]["interact"]
        assert (layer["index"], layer["tombstones"], layer["compacting"]) == ("hnsw", 0, False)
        model = dict(zip(ids[80:], vecs[80:], strict=True))
        _agree(store, model, unit_vectors(4, DIM, seed=5, clusters=4))


def test_close_during_compaction_discards_it_safely(tmp_path: Path) -> None:
    vecs = unit_vectors(300, DIM, seed=6, clusters=4)
    store = MemoryStore.open(tmp_path / "s", None, dim=DIM, settings=_settings())
    ids = store.add([f"t{i}" for i in range(300)], [{"i": i} for i in range(300)], vectors=vecs)
    backend = store._backend  # type: ignore[attr-defined]
    entered, release = threading.Event(), threading.Event()
    backend.compaction_hook = lambda layer: (entered.set(), release.wait(60))
    store.delete(ids[:100])
    assert entered.wait(60)
    store.close()  # the job finds the store closed and drops its index
    release.set()
    assert backend.wait_for_compaction(60)
    with MemoryStore.open(tmp_path / "s", None, settings=_settings()) as again:
        assert again.count() == 200
        model = dict(zip(ids[100:], vecs[100:], strict=True))
        _agree(again, model, unit_vectors(4, DIM, seed=7, clusters=4))
