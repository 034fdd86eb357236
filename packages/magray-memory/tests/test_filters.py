"""Filtered search returns exactly the top-k among matching records (checked by brute force)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from magray.common.settings import MemorySettings
from magray.memory import Layer, MemoryStore
from memtestkit import Clock, fresh_schema, unit_vectors

N = 600
DIM = 16
PROJECTS = ["alpha", "beta", "gamma", "delta"]
_NOW = Clock(1_700_000_000.0 + N)


# ---------------------------------------------------------------- reference semantics
def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return "str" if isinstance(v, str) else "other"


_MISSING = object()


def _lookup(record: Mapping[str, Any], key: str) -> Any:
    fields = {"_created_at": "created_at", "_importance": "importance", "_id": "id"}
    if key in fields:
        return record[fields[key]]
    node: Any = record["metadata"]
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _eq(value: Any, target: Any) -> bool:
    if value is _MISSING:
        return False
    return _kind(value) == _kind(target) and value == target


def matches(record: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """The documented filter semantics, written independently of the SQL compiler."""
    for key, cond in where.items():
        if key == "$and":
            if not all(matches(record, sub) for sub in cond):
                return False
            continue
        if key == "$or":
            if not any(matches(record, sub) for sub in cond):
                return False
            continue
        value = _lookup(record, key)
        conds = cond if isinstance(cond, dict) else {"$eq": cond}
        for op, target in conds.items():
            if op == "$eq":
                ok = _eq(value, target)
            elif op == "$ne":
                ok = not _eq(value, target)
            elif op == "$in":
                ok = any(_eq(value, t) for t in target)
            elif op == "$nin":
                ok = not any(_eq(value, t) for t in target)
            elif op == "$exists":
                ok = (value is not _MISSING) == target
            elif value is _MISSING or _kind(value) != _kind(target) or _kind(value) == "bool":
                ok = False
            else:
                ok = {
                    "$gt": value > target,
                    "$gte": value >= target,
                    "$lt": value < target,
                    "$lte": value <= target,
                }[op]
            if not ok:
                return False
    return True


def _metadata(i: int, rng: np.random.Generator) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "project": PROJECTS[i % 4],
        "n": int(rng.integers(0, 10)),
        "score": float(np.round(rng.random(), 3)),
        "flag": bool(i % 3 == 0),
        "nested": {"a": i % 5},
    }
    if i % 7 == 0:
        meta["tag"] = "rare"
    if i % 11 == 0:
        meta["n"] = str(meta["n"])  # a string where most records hold numbers
    if i % 13 == 0:
        meta["flag"] = 1  # a number where most hold bools
    return meta


@pytest.fixture(
    scope="module", params=["local", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def corpus(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Path | str, list[dict[str, Any]], np.ndarray]:
    """600 records with mixed-type metadata, stored on each backend in turn."""
    rng = np.random.default_rng(7)
    vectors = unit_vectors(N, DIM, seed=7, clusters=8)
    records = []
    for i in range(N):
        layer = ["interact", "insights", "assets"][0 if i < 400 else (1 if i < 520 else 2)]
        records.append(
            {
                "id": f"r{i}",
                "metadata": _metadata(i, rng),
                "layer": layer,
                "importance": float(np.round(rng.random(), 2)),
                "created_at": 1_700_000_000.0 + i,
            }
        )
    path: Path | str = tmp_path_factory.mktemp("filters") / "store"
    if request.param == "postgres":
        path = fresh_schema(request.getfixturevalue("pg_server_dsn"))
    clock = Clock()
    settings = MemorySettings(flat_threshold=150, dedupe=False)
    with MemoryStore.open(path, None, dim=DIM, settings=settings, clock=clock) as store:
        for i, rec in enumerate(records):
            clock.now = rec["created_at"]
            store.add(
                [f"text {i}"],
                [rec["metadata"]],
                ids=[rec["id"]],
                vectors=vectors[i : i + 1],
                layer=rec["layer"],
                importance=rec["importance"],
            )
        clock.now = 1_700_000_000.0 + N
    return path, records, vectors


def _brute(
    records: list[dict[str, Any]],
    vectors: np.ndarray,
    q: np.ndarray,
    k: int,
    *,
    where: Mapping[str, Any] | None,
    layers: list[str] | None = None,
) -> list[tuple[str, float]]:
    scores = vectors @ q
    keep = [
        i
        for i, r in enumerate(records)
        if (where is None or matches(r, where)) and (layers is None or r["layer"] in layers)
    ]
    keep.sort(key=lambda i: -scores[i])
    return [(records[i]["id"], float(scores[i])) for i in keep[:k]]


FILTERS: list[dict[str, Any]] = [
    {"project": "alpha"},
    {"project": {"$in": ["beta", "delta"]}},
    {"project": {"$nin": ["beta", "delta"]}},
    {"project": {"$ne": "gamma"}},
    {"n": {"$gte": 3, "$lt": 6}},
    {"n": {"$gt": 8}},
    {"n": "4"},
    {"n": {"$lte": "5"}},
    {"score": {"$lt": 0.1}},
    {"flag": True},
    {"flag": 1},
    {"flag": {"$ne": True}},
    {"tag": "rare"},
    {"tag": {"$exists": True}},
    {"tag": {"$exists": False}, "project": "beta"},
    {"nested.a": 2},
    {"nested.a": {"$in": [0, 4]}, "flag": False},
    {"$or": [{"project": "alpha", "n": {"$lt": 2}}, {"tag": "rare"}]},
    {"$and": [{"score": {"$gte": 0.5}}, {"project": {"$in": ["gamma"]}}]},
    {"_created_at": {"$gte": 1_700_000_100.0, "$lt": 1_700_000_450.0}},
    {"_importance": {"$gt": 0.9}},
    {"missing": {"$in": []}},
    {"project": "nobody"},
]


@pytest.mark.parametrize("where", FILTERS, ids=[str(f) for f in FILTERS])
def test_filtered_top_k_is_exact(
    corpus: tuple[Path | str, list[dict[str, Any]], np.ndarray], where: dict[str, Any]
) -> None:
    path, records, vectors = corpus
    with MemoryStore.open(
        path, None, settings=MemorySettings(flat_threshold=150), clock=_NOW
    ) as store:
        assert store.stats()["layers"]["interact"]["index"] == "hnsw"
        for qi in (0, 123, 555):
            q = vectors[qi]
            for k in (1, 10, 50):
                got = [(h.id, h.score) for h in store.search(q, k=k, where=where)]
                want = _brute(records, vectors, q, k, where=where)
                assert len(got) == len(want)
                assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
                # ids agree except for exact score ties
                if len(want) and len({round(s, 5) for _, s in want}) == len(want):
                    assert [i for i, _ in got] == [i for i, _ in want]
                for rid, _ in got:
                    assert matches(next(r for r in records if r["id"] == rid), where)


def test_filter_with_layers(corpus: tuple[Path | str, list[dict[str, Any]], np.ndarray]) -> None:
    path, records, vectors = corpus
    with MemoryStore.open(path, None, clock=_NOW) as store:
        where = {"project": "alpha"}
        got = store.search(vectors[3], k=20, where=where, layers=["insights", "assets"])
        want = _brute(records, vectors, vectors[3], 20, where=where, layers=["insights", "assets"])
        assert [h.id for h in got] == [i for i, _ in want]
        assert {h.layer for h in got} <= {Layer.INSIGHTS, Layer.ASSETS}


def test_hnsw_selector_path_never_leaks_outside_filter(
    corpus: tuple[Path | str, list[dict[str, Any]], np.ndarray],
) -> None:
    """With exact_filter_limit=0 the HNSW bitmap selector does the filtering."""
    path, records, vectors = corpus
    settings = MemorySettings(flat_threshold=150, exact_filter_limit=0)
    with MemoryStore.open(path, None, settings=settings, clock=_NOW) as store:
        recalls = []
        for qi in range(0, N, 25):
            where = {"project": {"$in": ["alpha", "gamma"]}}
            got = store.search(vectors[qi], k=10, where=where, layers=["interact"])
            want = _brute(records, vectors, vectors[qi], 10, where=where, layers=["interact"])
            assert all(matches(next(r for r in records if r["id"] == h.id), where) for h in got)
            recalls.append(len({h.id for h in got} & {i for i, _ in want}) / 10)
        assert np.mean(recalls) >= 0.9


def test_unfiltered_hnsw_recall(
    corpus: tuple[Path | str, list[dict[str, Any]], np.ndarray],
) -> None:
    path, records, vectors = corpus
    with MemoryStore.open(
        path, None, settings=MemorySettings(flat_threshold=150), clock=_NOW
    ) as store:
        recalls = []
        for qi in range(0, N, 20):
            got = {h.id for h in store.search(vectors[qi], k=10)}
            want = {i for i, _ in _brute(records, vectors, vectors[qi], 10, where=None)}
            recalls.append(len(got & want) / 10)
        assert np.mean(recalls) >= 0.95


def test_expired_records_are_not_returned_before_expire_runs(target: Path | str) -> None:
    clock = Clock()
    with MemoryStore.open(target, None, dim=DIM, clock=clock) as store:
        vecs = unit_vectors(3, DIM, seed=3)
        old = store.add(["old"], vectors=vecs[:1])
        clock.advance(20 * 3600)
        new = store.add(["new"], vectors=vecs[1:2])
        keep = store.add(["kept"], vectors=vecs[2:3], layer="assets")
        clock.advance(5 * 3600)  # `old` is 25 h old: past the 24 h interact TTL
        ids = {h.id for h in store.search(vecs[0], k=10)}
        assert ids == {new[0], keep[0]}
        ids = {h.id for h in store.search(vecs[0], k=10, where={"_importance": 0.5})}
        assert ids == {new[0], keep[0]}
        assert math.isclose(store.get(old[0]).expires_at or 0, clock.now - 3600)


def test_access_statistics_filters_use_sql(target: Path | str) -> None:
    clock = Clock()
    with MemoryStore.open(target, None, dim=DIM, clock=clock) as store:
        vecs = unit_vectors(4, DIM, seed=11)
        ids = store.add([f"t{i}" for i in range(4)], vectors=vecs)
        store.search(vecs[1], k=1)
        store.search(vecs[1], k=1)
        store.search(vecs[2], k=1)
        hot = store.search(vecs[0], k=4, where={"_access_count": {"$gte": 2}})
        assert [h.id for h in hot] == [ids[1]]
        used = store.search(vecs[0], k=4, where={"_last_access": {"$gt": 0}})
        assert len(used) == 4
        assert {h.id for h in store.search(vecs[0], k=4, where={"_id": ids[3]})} == {ids[3]}


def test_record_field_value_types_are_checked(target: Path | str) -> None:
    from magray.common.errors import InvalidInputError

    with MemoryStore.open(target, None, dim=DIM) as store:
        store.add(["x"], vectors=unit_vectors(1, DIM))
        with pytest.raises(InvalidInputError, match="_created_at"):
            store.search(unit_vectors(1, DIM)[0], where={"_created_at": {"$gt": "yesterday"}})
        with pytest.raises(InvalidInputError, match="_id"):
            store.search(unit_vectors(1, DIM)[0], where={"_id": 3})


@pytest.mark.parametrize("where", [None, {"project": "alpha"}, {"n": {"$gte": 3}}])
@pytest.mark.parametrize("exact_limit", [0, 5000])
def test_search_many_equals_single_searches(
    corpus: tuple[Path | str, list[dict[str, Any]], np.ndarray],
    where: dict[str, Any] | None,
    exact_limit: int,
) -> None:
    path, _, vectors = corpus
    settings = MemorySettings(flat_threshold=150, exact_filter_limit=exact_limit)
    with MemoryStore.open(path, None, settings=settings, clock=_NOW) as store:
        queries = vectors[[0, 50, 450, 599]]
        many = store.search_many(queries, k=7, where=where)
        single = [store.search(q, k=7, where=where) for q in queries]
        assert [[h.id for h in hits] for hits in many] == [[h.id for h in s] for s in single]
        assert np.allclose(
            [h.score for hits in many for h in hits],
            [h.score for s in single for h in s],
            atol=1e-5,
        )


INVALID: list[Any] = [
    [1],
    {"x": {"$foo": 1}},
    {"x": {}},
    {"$or": []},
    {"$or": [{}]},
    {"bad key": 1},
    {"x": [1]},
    {"x": {"$in": 3}},
    {"x": {"$exists": 1}},
    {"x": {"$gt": True}},
    {"_id": 3},
    {"_created_at": "x"},
    {"x": math.nan},
]


@pytest.mark.parametrize("where", [*FILTERS, {"a.b": None, "_id": {"$gte": "a"}}])
def test_one_compiler_binds_every_placeholder_in_both_dialects(where: dict[str, Any]) -> None:
    """Each dialect's pieces add exactly one parameter per placeholder they write."""
    from magray.memory._filters import compile_where
    from magray.memory._sql import POSTGRES, SQLITE

    sql, params = compile_where(where, SQLITE)
    assert sql.count("?") == len(params)
    assert "%s" not in sql
    pg_sql, pg_params = compile_where(where, POSTGRES)
    assert pg_sql.count("%s") == len(pg_params)
    assert "?" not in pg_sql


@pytest.mark.parametrize("where", INVALID, ids=[str(w) for w in INVALID])
def test_invalid_filters_fail_alike_in_both_dialects(where: Any) -> None:
    from magray.common.errors import InvalidInputError
    from magray.memory._filters import compile_where
    from magray.memory._sql import POSTGRES, SQLITE

    messages = []
    for dialect in (SQLITE, POSTGRES):
        with pytest.raises(InvalidInputError) as info:
            compile_where(where, dialect)
        messages.append((str(info.value), info.value.hint))
    assert messages[0] == messages[1]
