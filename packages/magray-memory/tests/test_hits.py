"""The search-hit path: the bounded row cache, write-through on add, metadata decoding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from magray.memory import Layer, MemoryStore
from magray.memory._cache import BoundedLRU, EmbeddingCache, HitRowCache
from memtestkit import unit_vectors, vector_store

DIM = 16


def test_bounded_lru_evicts_by_bytes_and_entries() -> None:
    lru: BoundedLRU[str, str] = BoundedLRU(max_entries=3, max_bytes=10, size=len)
    lru.put_many([("a", "xxxx"), ("b", "xxxx")])
    assert lru.nbytes == 8
    lru.put("c", "xxxx")  # 12 bytes > 10: the oldest goes
    assert "a" not in lru
    assert "b" in lru
    assert "c" in lru
    assert lru.nbytes == 8
    lru.get("b")  # b becomes most recent, so c is evicted next
    lru.put_many([("d", "x"), ("e", "x")])  # 4 entries > 3
    assert sorted(lru._data) == ["b", "d", "e"]
    lru.put("huge", "x" * 11)  # larger than the whole budget: not cached
    assert "huge" not in lru
    found, missing = lru.get_many(["b", "zz", "d"])
    assert found == {"b": "xxxx", "d": "x"}
    assert missing == ["zz"]
    assert lru.hits == 3
    assert lru.misses == 1
    lru.discard(["b"])
    assert lru.nbytes == 2
    lru.clear()
    assert len(lru) == 0
    assert lru.nbytes == 0


def test_zero_sized_caches_keep_nothing() -> None:
    rows = HitRowCache(max_bytes=0)
    rows.put(1, ("id", "text", "{}", Layer.ASSETS))
    assert len(rows) == 0
    emb = EmbeddingCache(max_entries=0)
    emb.put("m", "k", np.ones(4, dtype=np.float32))
    assert emb.get("m", "k") is None


def _store(path: Path, **settings: object) -> MemoryStore:
    return vector_store(path, DIM, **settings)


def test_added_rows_are_cached_and_hits_match_sqlite(tmp_path: Path) -> None:
    vectors = unit_vectors(200, DIM, seed=3)
    meta = [{"i": i, "tags": ["a", str(i)], "nested": {"x": i / 2}} for i in range(200)]
    with _store(tmp_path / "s") as store:
        store.add([f"text {i}" for i in range(200)], meta, vectors=vectors, layer="insights")
        backend = store._backend
        assert len(backend._hit_cache) == 200  # written through on add
        warm = [store.search(v, k=5) for v in vectors[:20]]
        backend._hit_cache.clear()
        cold = [store.search(v, k=5) for v in vectors[:20]]  # rows read back from SQLite
    assert warm == cold
    assert warm[0][0].metadata == {"i": 0, "tags": ["a", "0"], "nested": {"x": 0.0}}
    assert warm[0][0].layer is Layer.INSIGHTS


def test_search_works_with_the_hit_cache_off(tmp_path: Path) -> None:
    vectors = unit_vectors(50, DIM, seed=4)
    with _store(tmp_path / "s", hit_cache_bytes=0) as store:
        ids = store.add([f"t{i}" for i in range(50)], vectors=vectors)
        assert len(store._backend._hit_cache) == 0
        hits = store.search(vectors[7], k=3)
        assert hits[0].id == ids[7]
        assert hits[0].text == "t7"


def test_hit_metadata_is_a_fresh_dict_each_time(tmp_path: Path) -> None:
    vectors = unit_vectors(3, DIM, seed=5)
    with _store(tmp_path / "s") as store:
        store.add(["a", "b", "c"], [{"k": [1]}, {}, {"k": 2}], vectors=vectors)
        first = store.search(vectors[0], k=1)[0]
        first.metadata["k"].append(99)
        first.metadata["new"] = True
        again = store.search(vectors[0], k=1)[0]
        assert again.metadata == {"k": [1]}
        assert store.get([first.id])[0].metadata == {"k": [1]}


def test_metadata_json_can_decode_beyond_orjson(tmp_path: Path) -> None:
    """Integers beyond 64 bits are valid JSON that orjson refuses: the json fallback reads them."""
    big = 2**70
    vectors = unit_vectors(2, DIM, seed=6)
    with _store(tmp_path / "s") as store:
        store.add(["big", "small"], [{"n": big}, {"n": 1}], vectors=vectors)
        store._backend._hit_cache.clear()
        assert store.search(vectors[0], k=1)[0].metadata == {"n": big}


def test_hits_of_another_process_writes_are_read_from_sqlite(tmp_path: Path) -> None:
    """Rows added by another process are not in this process's cache: they come from SQLite."""
    path = tmp_path / "s"
    vectors = unit_vectors(2, DIM, seed=7)
    with _store(path) as store:
        store.add(["mine"], [{"who": "me"}], vectors=vectors[:1], ids=["a"])
        np.save(tmp_path / "v.npy", vectors[1:])
        code = (
            "import numpy as np\n"
            "from magray.common.settings import MemorySettings\n"
            "from magray.memory import MemoryStore\n"
            f"s = MemoryStore.open({str(path)!r}, None, dim={DIM}, "
            "settings=MemorySettings(dedupe=False))\n"
            f"s.add(['theirs'], [{{'who': 'them'}}], ids=['b'], "
            f"vectors=np.load({str(tmp_path / 'v.npy')!r}))\n"
            "s.close()\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        hit = store.search(vectors[1], k=1)[0]
        assert (hit.id, hit.text, hit.metadata) == ("b", "theirs", {"who": "them"})


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_lean_query_path_still_rejects_non_finite(tmp_path: Path, bad: float) -> None:
    from magray.common.errors import InvalidInputError

    with _store(tmp_path / "s") as store:
        store.add(["x"], vectors=unit_vectors(1, DIM))
        query = np.ones(DIM, dtype=np.float32)
        query[3] = bad
        with pytest.raises(InvalidInputError, match="NaN or infinity"):
            store.search(query, k=1)
        with pytest.raises(InvalidInputError, match="all zeros"):
            store.search(np.zeros(DIM, dtype=np.float32), k=1)


def test_first_filter_on_a_key_runs_as_sql_then_columns_are_built(tmp_path: Path) -> None:
    """A one-shot filtered search does not pay for building the filter columns; a repeated
    filter on the same keys uses them; both give the same exact top-k."""
    n = 400
    vectors = unit_vectors(n, DIM, seed=8, clusters=4)
    meta = [{"p": i % 10, "tag": "even" if i % 2 == 0 else "odd"} for i in range(n)]
    path = tmp_path / "s"
    with _store(path, flat_threshold=50) as store:
        store.add([f"t{i}" for i in range(n)], meta, vectors=vectors, layer="assets")
    queries = unit_vectors(5, DIM, seed=9, clusters=4)

    def exact(q: np.ndarray, where: dict[str, object]) -> list[str]:
        rows = [i for i in range(n) if all(meta[i][k] == v for k, v in where.items())]
        scores = vectors[rows] @ q
        return [f"t{rows[j]}" for j in np.argsort(-scores, kind="stable")[:5]]

    with _store(path, flat_threshold=50) as store:
        backend = store._backend
        where = {"p": 3, "tag": "odd"}
        first = [[h.text for h in store.search(q, k=5, where=where)] for q in queries[:1]]
        assert backend.meta.get("assets") is None  # no columns read for the first filter
        later = [[h.text for h in store.search(q, k=5, where=where)] for q in queries]
        columns = backend.meta["assets"]
        assert columns is not None
        assert set(columns._keys) == {"p", "tag"}
        assert first[0] == later[0]
        for q, got in zip(queries, later, strict=True):
            assert got == exact(q, where)
        # a filter on another key set starts on SQL again
        assert [h.text for h in store.search(queries[0], k=5, where={"p": 4})] == exact(
            queries[0], {"p": 4}
        )
        assert set(columns._keys) == {"p", "tag"}
