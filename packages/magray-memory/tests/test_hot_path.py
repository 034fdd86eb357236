"""The single-query search path: same answers as the general path, cheap bookkeeping.

``MemoryStore.search`` without a filter runs a lean path (one faiss call per layer into
small buffers, a WAL-header freshness check, a logged access count); these tests hold it
to the results of ``search_many`` and of brute force, and check each shortcut's fallback.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from magray.memory import Hit, Layer, MemoryStore
from magray.memory._access import TOUCH_FLUSH_HITS, AccessLog
from magray.memory._cache import HitRowCache
from magray.memory._local import LocalBackend
from memtestkit import unit_vectors, vector_store

DIM = 16


def _local(store: MemoryStore) -> LocalBackend:
    backend = store._backend
    assert isinstance(backend, LocalBackend)
    return backend


def _store(path: Path, **settings: object) -> MemoryStore:
    return vector_store(path, DIM, **settings)


@pytest.mark.parametrize("flat_threshold", [10_000, 50])  # a flat layer, an HNSW layer
def test_single_query_path_matches_search_many_and_brute_force(
    tmp_path: Path, flat_threshold: int
) -> None:
    n = 300
    vectors = unit_vectors(n, DIM, seed=1, clusters=5)
    queries = unit_vectors(20, DIM, seed=2, clusters=5)
    with _store(tmp_path / "s", flat_threshold=flat_threshold, hnsw_ef_search=400) as store:
        ids = store.add([f"t{i}" for i in range(n)], vectors=vectors, layer="assets")
        kind = store.stats()["layers"]["assets"]["index"]
        assert kind == ("flat" if flat_threshold > n else "hnsw")
        many = store.search_many(queries, k=7)
        for q, batch in zip(queries, many, strict=True):
            one = store.search(q, k=7)
            assert [(h.id, h.text) for h in one] == [(h.id, h.text) for h in batch]
            assert [h.score for h in one] == pytest.approx([h.score for h in batch], abs=1e-6)
            exact = np.argsort(-(vectors @ q), kind="stable")[:7]
            assert [h.id for h in one] == [ids[i] for i in exact]


def test_ties_are_ordered_by_insertion_on_every_path(tmp_path: Path) -> None:
    """Equal scores (identical vectors) come back oldest first whatever path found them."""
    v = unit_vectors(1, DIM, seed=3)
    other = unit_vectors(3, DIM, seed=4)
    with _store(tmp_path / "s") as store:
        ids = store.add([f"same {i}" for i in range(6)], vectors=np.repeat(v, 6, axis=0))
        store.add(["a", "b", "c"], vectors=other, layer="insights")
        one = [h.id for h in store.search(v[0], k=6)]
        assert one == ids
        assert [h.id for h in store.search_many(v, k=6)[0]] == ids
        assert [h.id for h in store.search(v[0], k=6, layers=["interact"])] == ids


def test_k_beyond_the_layer_and_empty_layers(tmp_path: Path) -> None:
    vectors = unit_vectors(4, DIM, seed=5)
    with _store(tmp_path / "s") as store:
        assert store.search(vectors[0], k=10) == []
        store.add(["a", "b", "c", "d"], vectors=vectors, layer="insights")
        hits = store.search(vectors[0], k=10)
        assert len(hits) == 4
        assert hits[0].text == "a"
        assert hits[0].layer is Layer.INSIGHTS


def test_tombstones_and_expired_records_never_come_back(tmp_path: Path) -> None:
    clock = [1000.0]
    vectors = unit_vectors(40, DIM, seed=6)
    with _store(tmp_path / "s", tombstone_ratio=0.9) as store:
        store.clock = lambda: clock[0]
        ids = store.add([f"t{i}" for i in range(20)], vectors=vectors[:20], layer="interact")
        keep = store.add([f"k{i}" for i in range(20)], vectors=vectors[20:], layer="assets")
        store.delete(ids[:5])
        assert store.stats()["layers"]["interact"]["tombstones"] == 5
        found = {h.id for q in vectors[:20] for h in store.search(q, k=3)}
        assert not found & set(ids[:5])
        clock[0] += 2 * 86_400  # past interact's 24 h TTL: only assets remain
        found = {h.id for q in vectors for h in store.search(q, k=3)}
        assert found <= set(keep)


def test_an_already_unit_query_is_used_as_is_and_others_are_normalised(tmp_path: Path) -> None:
    vectors = unit_vectors(30, DIM, seed=7)
    with _store(tmp_path / "s") as store:
        store.add([f"t{i}" for i in range(30)], vectors=vectors)
        unit = store.search(vectors[4], k=5)
        scaled = store.search(vectors[4] * np.float32(3.0), k=5)
        assert [h.id for h in unit] == [h.id for h in scaled]
        assert [h.score for h in unit] == pytest.approx([h.score for h in scaled], abs=1e-6)
        assert unit[0].score == pytest.approx(1.0, abs=1e-6)
        strided = np.repeat(vectors[4], 2)[::2]  # not contiguous: copied before faiss
        assert [h.id for h in store.search(strided, k=5)] == [h.id for h in unit]


def test_another_connections_commit_is_seen_through_the_wal_header(tmp_path: Path) -> None:
    vectors = unit_vectors(3, DIM, seed=8)
    path = tmp_path / "s"
    with _store(path) as store, _store(path) as other:
        store.add(["a"], vectors=vectors[:1], ids=["a"])
        before = _local(store).db.wal_header()
        assert before is not None
        assert len(before) == 48
        assert store.search(vectors[0], k=1)[0].id == "a"
        other.add(["b"], vectors=vectors[1:2], ids=["b"])
        assert _local(store).db.wal_header() != before
        assert store.search(vectors[1], k=1)[0].id == "b"
        other.delete(["b"])
        assert store.search(vectors[1], k=1)[0].id == "a"
        # a raw SQLite write that only touches a row is seen too (it changes data_version)
        with sqlite3.connect(path / "memory.db") as conn:
            conn.execute("UPDATE records SET importance = 0.9 WHERE id = 'a'")
        assert store.get(["a"])[0].importance == pytest.approx(0.9)


def test_without_a_readable_wal_header_every_search_asks_sqlite(tmp_path: Path) -> None:
    vectors = unit_vectors(2, DIM, seed=9)
    path = tmp_path / "s"
    with _store(path) as store, _store(path) as other:
        _local(store).db.wal_header = lambda: None  # type: ignore[method-assign]
        store.add(["a"], vectors=vectors[:1], ids=["a"])
        assert store.search(vectors[0], k=1)[0].id == "a"
        other.add(["b"], vectors=vectors[1:], ids=["b"])
        assert store.search(vectors[1], k=1)[0].id == "b"


def test_access_log_folds_counts_per_id() -> None:
    log = AccessLog()
    assert not log.add(["b", "a"], 10.0)
    assert not log.add(["a"], 12.0)
    assert not log.add(["a", "c"], 11.0)
    assert len(log) == 5
    assert log.drain() == [(3, 12.0, "a"), (1, 10.0, "b"), (1, 11.0, "c")]
    assert len(log) == 0
    assert log.drain() == []
    due = [log.add(["x"] * 1024, 1.0) for _ in range(TOUCH_FLUSH_HITS // 1024)]
    assert due[-1]
    assert not any(due[:-1])


def test_search_hits_are_counted_once_each(tmp_path: Path) -> None:
    vectors = unit_vectors(5, DIM, seed=10)
    with _store(tmp_path / "s") as store:
        ids = store.add([f"t{i}" for i in range(5)], vectors=vectors)
        for _ in range(3):
            store.search(vectors[0], k=2)
        store.search(vectors[1], k=1)
        counts = {r.id: r.access_count for r in store.get(ids)}
    top2 = {h for h in counts if counts[h] >= 3}
    assert ids[0] in top2
    assert counts[ids[1]] >= 1
    assert sum(counts.values()) == 3 * 2 + 1


def test_hit_row_cache_is_first_in_first_out() -> None:
    row = ("id", "text", "{}", Layer.ASSETS)
    cache = HitRowCache(max_bytes=3 * (300 + 10))
    cache.put_many([(1, row), (2, row), (3, row)])
    rows, missing = cache.lookup([1, 4])
    assert rows == [row, None]
    assert missing
    cache.put(5, row)  # the oldest (1) goes although it was just hit
    assert 1 not in cache
    assert cache.lookup([2, 3, 5]) == ([row, row, row], False)
    assert (cache.hits, cache.misses) == (4, 1)


def test_hits_are_plain_dataclasses(tmp_path: Path) -> None:
    vectors = unit_vectors(1, DIM, seed=11)
    with _store(tmp_path / "s") as store:
        store.add(["x"], [{"k": 1}], vectors=vectors, ids=["x"])
        hit = store.search(vectors[0], k=1)[0]
    assert isinstance(hit, Hit)
    assert dataclasses.asdict(hit)["metadata"] == {"k": 1}
    assert dataclasses.replace(hit, score=0.5).score == 0.5


def test_a_full_access_log_is_written_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search that fills the log does not wait for the UPDATEs; a read of the counts
    waits for them."""
    import threading

    monkeypatch.setattr("magray.memory._access.TOUCH_FLUSH_HITS", 10)
    vectors = unit_vectors(20, DIM, seed=12)
    with _store(tmp_path / "s") as store:
        ids = store.add([f"t{i}" for i in range(20)], vectors=vectors)
        backend = _local(store)
        started, release = threading.Event(), threading.Event()
        written: list[int] = []

        def hold(records: int) -> None:
            written.append(records)
            started.set()
            assert release.wait(30)

        backend._on_access_written = hold
        for q in vectors[:2]:
            store.search(q, k=5)  # 10 hits: due, handed to the writer thread
        assert started.wait(30)
        assert backend._access_writer is not None
        assert backend._access_writer.is_alive()
        for q in vectors[2:6]:  # searches go on while the writer is held
            assert len(store.search(q, k=5)) == 5
        release.set()
        counts = {r.id: r.access_count for r in store.get(ids)}  # joins, then writes the rest
        assert written == [len({h for q in vectors[:2] for h in _ids(store, q)})]
        assert sum(counts.values()) == 6 * 5


def _ids(store: MemoryStore, q: np.ndarray) -> list[str]:
    backend = _local(store)
    labels, _ = backend.layers["interact"].search_one(q, 5)
    return [row[0] for row in backend.db.hit_rows(labels).values()]


def test_a_failed_background_write_loses_only_those_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("magray.memory._access.TOUCH_FLUSH_HITS", 5)
    vectors = unit_vectors(10, DIM, seed=13)
    with _store(tmp_path / "s") as store:
        ids = store.add([f"t{i}" for i in range(10)], vectors=vectors)
        backend = _local(store)

        def broken() -> sqlite3.Connection:
            raise sqlite3.OperationalError("disk I/O error")

        backend.db.connect_side = broken  # type: ignore[method-assign]
        store.search(vectors[0], k=5)  # due: the writer fails and logs a warning
        backend._join_access_writer()
        assert len(store.search(vectors[1], k=3)) == 3  # below the threshold: kept
        counts = {r.id: r.access_count for r in store.get(ids)}
        assert sum(counts.values()) == 3


def test_hit_row_cache_keeps_high_labels_in_its_overflow_and_evicts_both() -> None:
    def row(i: int) -> tuple[str, str, str, Layer]:
        return (f"i{i:03d}", "t", "{}", Layer.ASSETS)

    size = 300 + 4 + 1 + 2  # the estimate: overhead + id + text + metadata JSON
    cache = HitRowCache(max_bytes=4 * size, slot_labels=8)
    cache.put_many([(3, row(3)), (100, row(100)), (5, row(5)), (7, row(7))])
    assert len(cache._slots) == 8  # grown up to slot_labels, no further
    assert cache._overflow == {100: row(100)}
    assert cache.lookup([5, 100, 3]) == ([row(5), row(100), row(3)], False)
    assert cache.lookup([6, 200]) == ([None, None], True)
    cache.put(3, ("changed", "t", "{}", Layer.ASSETS))  # a label's row never changes: kept
    assert cache.lookup([3])[0] == [row(3)]
    cache.put_many([(1, row(1)), (101, row(101))])  # two over budget: 3 and 100 go first
    assert 3 not in cache
    assert 100 not in cache
    assert [lb in cache for lb in (5, 7, 1, 101)] == [True] * 4
    assert cache.nbytes == 4 * size
    cache.clear()
    assert len(cache) == 0
    assert cache.lookup([5]) == ([None], True)


def test_a_reopened_store_reserves_hit_row_slots_up_to_its_highest_label(tmp_path: Path) -> None:
    vectors = unit_vectors(30, DIM, seed=14)
    with _store(tmp_path / "s") as store:
        store.add([f"t{i}" for i in range(30)], vectors=vectors)
    with _store(tmp_path / "s") as store:
        slots = _local(store)._hit_cache._slots
        assert len(slots) == 31  # labels start at 1
        assert len(store.search(vectors[3], k=4)) == 4
        assert _local(store)._hit_cache._slots is slots  # the search did not grow it
    with _store(tmp_path / "off", hit_cache_bytes=0) as store:
        assert _local(store)._hit_cache._slots == []


def test_warm_up_fills_the_hit_cache_newest_first_within_its_budget(tmp_path: Path) -> None:
    import asyncio

    vectors = unit_vectors(60, DIM, seed=15)
    path = tmp_path / "s"
    with _store(path) as store:
        ids = store.add([f"t{i:02d}" for i in range(60)], vectors=vectors, layer="assets")
        store.delete(ids[:5])
    with _store(path) as store:
        backend = _local(store)
        assert len(backend._hit_cache) == 0
        assert store.warm_up() == 55  # deleted records are not read
        assert backend._hit_cache.lookup(list(range(6, 61)))[1] is False
        assert store.warm_up() == 0  # everything is in already
        misses = backend._hit_cache.misses
        assert store.search(vectors[30], k=3)[0].text == "t30"
        assert backend._hit_cache.misses == misses  # no SQLite read
    row_bytes = 300 + 32 + 3 + 2  # overhead + uuid id + "tNN" + "{}"
    with _store(path, hit_cache_bytes=20 * row_bytes) as store:
        assert asyncio.run(store.awarm_up()) == 20
        cached = [label for label in range(1, 61) if label in _local(store)._hit_cache]
        assert cached == list(range(41, 61))  # the newest twenty, none evicted
    with _store(path, hit_cache_bytes=0) as store:
        assert store.warm_up() == 0
