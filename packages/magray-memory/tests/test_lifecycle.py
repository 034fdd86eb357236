"""Layers with TTLs, promotion with explainable scores, expiry with archiving, history."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from magray.common.settings import MemorySettings
from magray.memory import Layer, MemoryStore, PromotionPolicy, RecordNotFoundError
from memtestkit import Clock, unit_vectors

Opener = Callable[..., MemoryStore]
HOUR = 3600.0
DAY = 24 * HOUR


def test_ttls_per_layer(open_store: Opener, clock: Clock) -> None:
    store = open_store()
    vecs = unit_vectors(3, 16)
    a = store.add(["i"], vectors=vecs[:1])[0]
    b = store.add(["n"], vectors=vecs[1:2], layer="insights")[0]
    c = store.add(["s"], vectors=vecs[2:3], layer=Layer.ASSETS)[0]
    assert store.get(a).expires_at == clock.now + 24 * HOUR
    assert store.get(b).expires_at == clock.now + 90 * DAY
    assert store.get(c).expires_at is None


def test_configurable_ttls(target: object, clock: Clock) -> None:
    settings = MemorySettings(ttl_interact_hours=1, ttl_insights_days=2)
    with MemoryStore.open(target, None, dim=4, settings=settings, clock=clock) as store:  # type: ignore[arg-type]
        (rid,) = store.add(["x"], vectors=[[1, 0, 0, 0]])
        assert store.get(rid).expires_at == clock.now + HOUR
        clock.advance(HOUR + 1)
        assert store.expire()["expired"] == [rid]


def test_expire_deletes_and_archives_pinned(open_store: Opener, clock: Clock) -> None:
    store = open_store()
    vecs = unit_vectors(4, 16, seed=1)
    plain = store.add(["plain"], vectors=vecs[:1])[0]
    pinned = store.add(["pinned"], vectors=vecs[1:2], pinned=True)[0]
    fresh_ins = store.add(["insight"], vectors=vecs[2:3], layer="insights")[0]
    clock.advance(23 * HOUR)
    assert store.expire() == {"expired": [], "archived": []}
    clock.advance(2 * HOUR)
    assert store.expire(dry_run=True) == {"expired": [plain], "archived": [pinned]}
    assert store.count() == 3
    assert store.expire() == {"expired": [plain], "archived": [pinned]}
    assert store.count() == 2
    assert store.get(pinned).layer is Layer.ASSETS
    assert store.get(pinned).expires_at is None
    assert store.get(fresh_ins).layer is Layer.INSIGHTS
    events = [e["event"] for e in store.history(plain)]
    assert events == ["add", "expire"]
    assert [e["event"] for e in store.history(pinned)] == ["add", "archive"]
    assert store.search(vecs[0], k=5, layers=["interact"]) == []
    with pytest.raises(RecordNotFoundError):
        store.get(plain)


def test_expire_without_archiving(open_store: Opener, clock: Clock) -> None:
    store = open_store()
    pinned = store.add(["pinned"], vectors=unit_vectors(1, 16), pinned=True)[0]
    clock.advance(25 * HOUR)
    assert store.expire(archive_pinned=False) == {"expired": [pinned], "archived": []}


def test_explain_features_are_the_documented_formula(open_store: Opener, clock: Clock) -> None:
    store = open_store()
    (rid,) = store.add(["x"], vectors=unit_vectors(1, 16), importance=0.8)
    why = store.explain(rid)
    assert why.features == {"access": 0.0, "recency": 1.0, "age": 0.0, "importance": 0.8}
    assert why.score == pytest.approx(0.3 * 0.8 + 0.2 * 1.0)
    assert why.promote_to is None
    assert "below" in why.reason
    assert sum(why.contributions.values()) == pytest.approx(why.score)
    assert why.to_dict()["layer"] == "interact"


def test_search_hits_count_as_accesses_and_drive_promotion(
    open_store: Opener, clock: Clock
) -> None:
    store = open_store()
    vecs = unit_vectors(3, 16, seed=5)
    used, unused, _ = store.add(["used", "unused", "other"], vectors=vecs, importance=0.5)
    clock.advance(2 * HOUR)
    for _ in range(8):
        store.search(vecs[0], k=1)
    record = store.get(used)
    assert record.access_count == 8
    assert record.last_access == clock.now
    assert store.get(unused).access_count == 0
    why = store.explain(used)
    assert why.features["access"] == pytest.approx(0.7217, abs=1e-3)  # log1p(8)/log1p(20)
    assert why.promote_to is Layer.INSIGHTS
    plan = store.promote(dry_run=True)
    assert [(p["id"], p["from"], p["to"]) for p in plan] == [(used, "interact", "insights")]
    assert store.get(used).layer is Layer.INTERACT
    store.promote()
    moved = store.get(used)
    assert moved.layer is Layer.INSIGHTS
    assert moved.expires_at == clock.now + 90 * DAY
    assert moved.access_count == 8  # stats survive the move
    history = store.history(used)
    assert [e["event"] for e in history] == ["add", "promote"]
    assert history[1]["details"]["from"] == "interact"
    assert history[1]["details"]["features"]["access"] == pytest.approx(0.7217, abs=1e-3)
    assert store.search(vecs[0], k=1, layers=["insights"])[0].id == used


def test_promotion_to_assets_needs_the_higher_threshold(open_store: Opener, clock: Clock) -> None:
    store = open_store()
    vecs = unit_vectors(1, 16, seed=6)
    (rid,) = store.add(["x"], vectors=vecs, layer="insights", importance=1.0)
    clock.advance(7 * DAY)
    for _ in range(20):
        store.search(vecs[0], k=1)
    why = store.explain(rid)
    assert why.score == pytest.approx(0.4 + 0.2 + 0.1 + 0.3)
    assert store.promote()[0]["to"] == "assets"
    assert store.get(rid).layer is Layer.ASSETS
    assert store.promote() == []  # assets is the top


def test_young_records_are_not_promoted(open_store: Opener, clock: Clock) -> None:
    store = open_store(policy=PromotionPolicy(min_age=12 * HOUR))
    vecs = unit_vectors(1, 16, seed=7)
    (rid,) = store.add(["x"], vectors=vecs, importance=1.0)
    for _ in range(30):
        store.search(vecs[0], k=1)
    assert "less than" in store.explain(rid).reason
    assert store.promote() == []
    clock.advance(12 * HOUR)
    assert store.promote()[0]["id"] == rid


def test_history_of_updates_and_deletes(open_store: Opener, clock: Clock) -> None:
    store = open_store()
    (rid,) = store.add(["x"], vectors=unit_vectors(1, 16))
    clock.advance(5)
    store.update(rid, metadata={"a": 1})
    store.update(rid, metadata={"a": 1})  # no change, no event
    clock.advance(5)
    store.delete([rid])
    events = store.history(rid)
    assert [e["event"] for e in events] == ["add", "update", "delete"]
    assert events[1]["details"] == {"metadata": True}
    assert events[2]["at"] == clock.now
    with pytest.raises(RecordNotFoundError):
        store.history("never-existed")
