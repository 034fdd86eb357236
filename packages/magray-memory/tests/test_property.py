"""Random add/update/delete/search/reopen sequences agree with a brute-force numpy model."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from magray.common.settings import MemorySettings
from magray.memory import MemoryStore
from memtestkit import Clock

DIM = 8
LAYERS = ["interact", "insights", "assets"]
TAGS = ["a", "b", "c"]

wheres = st.one_of(
    st.none(),
    st.builds(lambda t: {"tag": t}, st.sampled_from(TAGS)),
    st.builds(lambda ts: {"tag": {"$in": ts}}, st.lists(st.sampled_from(TAGS), max_size=2)),
    st.builds(lambda lo, hi: {"n": {"$gte": lo, "$lt": hi}}, st.integers(0, 5), st.integers(0, 9)),
    st.builds(lambda t: {"tag": {"$ne": t}}, st.sampled_from(TAGS)),
)


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _matches(meta: dict[str, Any], where: dict[str, Any] | None) -> bool:
    if where is None:
        return True
    if "n" in where:
        return where["n"]["$gte"] <= meta["n"] < where["n"]["$lt"]
    cond = where["tag"]
    if isinstance(cond, str):
        return meta["tag"] == cond
    if "$in" in cond:
        return meta["tag"] in cond["$in"]
    return meta["tag"] != cond["$ne"]


class StoreMachine(RuleBasedStateMachine):
    """The store and a dict of records must always agree."""

    flat_threshold = 10_000

    def __init__(self) -> None:
        super().__init__()
        # tmpfs when available: this test checks logic, not fsync durability (test_crash does)
        shm = Path("/dev/shm")
        base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.dir = Path(tempfile.mkdtemp(prefix="magray-prop-", dir=base))
        self.model: dict[str, dict[str, Any]] = {}
        self.counter = 0
        self.clock = Clock()
        self.settings = MemorySettings(
            flat_threshold=self.flat_threshold, dedupe=False, tombstone_ratio=0.2
        )
        self.store = self._open()

    def _open(self) -> MemoryStore:
        return MemoryStore.open(self.dir, None, dim=DIM, settings=self.settings, clock=self.clock)

    @initialize()
    def start(self) -> None:
        pass

    @rule(
        seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
        layer=st.sampled_from(LAYERS),
        tag=st.sampled_from(TAGS),
        n=st.integers(0, 9),
    )
    def add(self, seeds: list[int], layer: str, tag: str, n: int) -> None:
        ids = [f"id{self.counter + i}" for i in range(len(seeds))]
        self.counter += len(seeds)
        vecs = np.stack([_vec(s) for s in seeds])
        meta = {"tag": tag, "n": n}
        assert (
            self.store.add(
                [f"t {i}" for i in ids], [meta] * len(ids), ids=ids, vectors=vecs, layer=layer
            )
            == ids
        )
        for i, rid in enumerate(ids):
            self.model[rid] = {"vec": vecs[i], "layer": layer, "meta": dict(meta)}

    @precondition(lambda self: self.model)
    @rule(
        data=st.data(), seed=st.integers(0, 10_000), what=st.sampled_from(["vec", "meta", "layer"])
    )
    def update(self, data: st.DataObject, seed: int, what: str) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model)))
        if what == "vec":
            self.store.update(rid, vector=_vec(seed))
            self.model[rid]["vec"] = _vec(seed)
        elif what == "meta":
            meta = {"tag": TAGS[seed % 3], "n": seed % 10}
            self.store.update(rid, metadata=meta)
            self.model[rid]["meta"] = meta
        else:
            layer = LAYERS[seed % 3]
            self.store.update(rid, layer=layer)
            self.model[rid]["layer"] = layer

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model)), max_size=3, unique=True))
        assert sorted(self.store.delete(ids)) == sorted(ids)
        for rid in ids:
            del self.model[rid]

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self._open()

    @rule()
    def vacuum(self) -> None:
        self.store.vacuum()

    @rule(
        seed=st.integers(0, 10_000),
        k=st.integers(1, 12),
        where=wheres,
        layers=st.none() | st.lists(st.sampled_from(LAYERS), min_size=1, max_size=2, unique=True),
    )
    def search(
        self, seed: int, k: int, where: dict[str, Any] | None, layers: list[str] | None
    ) -> None:
        q = _vec(seed)
        if where is None and self.flat_threshold < 10_000:
            where = {"n": {"$gte": 0, "$lt": 10}}  # exact path inside HNSW layers
        hits = self.store.search(q, k=k, where=where, layers=layers)
        cands = [
            (rid, float(r["vec"] @ q))
            for rid, r in self.model.items()
            if _matches(r["meta"], where) and (layers is None or r["layer"] in layers)
        ]
        cands.sort(key=lambda c: -c[1])
        want = cands[:k]
        assert len(hits) == len(want)
        assert np.allclose([h.score for h in hits], [s for _, s in want], atol=1e-5)
        for h in hits:
            rec = self.model[h.id]
            assert h.layer.value == rec["layer"]
            assert h.metadata == rec["meta"]

    @invariant()
    def counts_agree(self) -> None:
        for layer in LAYERS:
            assert self.store.count(layer) == sum(
                1 for r in self.model.values() if r["layer"] == layer
            )

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class HNSWStoreMachine(StoreMachine):
    flat_threshold = 6


_fast = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_slow = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestStoreAgreesWithModel = StoreMachine.TestCase
TestStoreAgreesWithModel.settings = _fast
TestHNSWStoreAgreesWithModel = HNSWStoreMachine.TestCase
TestHNSWStoreAgreesWithModel.settings = _fast


@pytest.mark.slow
@pytest.mark.parametrize("machine", [StoreMachine, HNSWStoreMachine])
def test_store_agrees_with_model_long(machine: type[StoreMachine]) -> None:
    case = machine.TestCase
    case.settings = _slow
    case("runTest").runTest()


# ---------------------------------------------------------------- the same on PostgreSQL
_PG: dict[str, str] = {}


class PostgresStoreMachine(StoreMachine):
    """The same rules against the postgres backend (each example in its own schema)."""

    flat_threshold = 6  # small, so the HNSW index and its exact fallback are exercised

    def __init__(self) -> None:
        from memtestkit import fresh_schema

        self.target = fresh_schema(_PG["dsn"])
        super().__init__()

    def _open(self) -> MemoryStore:
        return MemoryStore.open(
            self.target, None, dim=DIM, settings=self.settings, clock=self.clock
        )


@pytest.mark.postgres
class TestPostgresStoreAgreesWithModel(PostgresStoreMachine.TestCase):  # type: ignore[name-defined,misc]
    settings = settings(
        max_examples=25,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )

    @pytest.fixture(autouse=True)
    def _server(self, pg_server_dsn: str) -> None:
        _PG["dsn"] = pg_server_dsn
