"""Reopen, catch-up, rebuild on missing/corrupt/stale index, tombstones, vacuum, backup, export."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from magray.common.health import HealthRegistry, Status
from magray.common.settings import MemorySettings, Settings
from magray.memory import MemoryStore
from magray.memory.errors import DatabaseRegressedError
from memtestkit import Clock, HashingEmbedder, unit_vectors

DIM = 16


def _fill(path: Path, n: int = 120, *, clock: Clock, seed: int = 0, **kw: object) -> list[str]:
    vecs = unit_vectors(n, DIM, seed=seed)
    with MemoryStore.open(path, None, dim=DIM, clock=clock, **kw) as store:  # type: ignore[arg-type]
        return store.add([f"text {seed}-{i}" for i in range(n)], vectors=vecs)


def _top(path: Path, q: np.ndarray, clock: Clock, **kw: object) -> list[str]:
    with MemoryStore.open(path, None, clock=clock, **kw) as store:  # type: ignore[arg-type]
        return [h.id for h in store.search(q, k=10)]


def test_reopen_loads_saved_index(store_dir: Path, clock: Clock) -> None:
    _fill(store_dir, clock=clock)
    with MemoryStore.open(store_dir, None, clock=clock) as store:
        assert store.stats()["index_status"] == {"index": "loaded", "caught_up": 0}
        assert store.count() == 120
    manifest = json.loads((store_dir / "index" / "manifest.json").read_text())
    assert manifest["watermark"] == 120
    assert manifest["dim"] == DIM


@pytest.mark.parametrize("damage", ["delete_dir", "garbage_index", "garbage_manifest", "truncate"])
def test_damaged_index_is_rebuilt_from_sqlite(store_dir: Path, clock: Clock, damage: str) -> None:
    _fill(store_dir, clock=clock)
    q = unit_vectors(1, DIM, seed=99)[0]
    before = _top(store_dir, q, clock)
    index_dir = store_dir / "index"
    if damage == "delete_dir":
        shutil.rmtree(index_dir)
    elif damage == "garbage_manifest":
        (index_dir / "manifest.json").write_text("{not json")
    else:
        target = next(index_dir.glob("interact.*.faiss"))
        if damage == "garbage_index":
            target.write_bytes(b"\x00garbage" * 100)
        else:
            target.write_bytes(target.read_bytes()[:100])
    with MemoryStore.open(store_dir, None, clock=clock) as store:
        status = store.stats()["index_status"]
        assert status["index"] == "rebuilt"
        assert status["reason"]
        assert store.count() == 120
        assert [h.id for h in store.search(q, k=10)] == before
    with MemoryStore.open(store_dir, None, clock=clock) as store:  # the rebuilt index was saved
        assert store.stats()["index_status"]["index"] == "loaded"


def test_stale_index_catches_up_from_change_log(store_dir: Path, clock: Clock) -> None:
    ids = _fill(store_dir, clock=clock)
    saved = store_dir.parent / "index-copy"
    shutil.copytree(store_dir / "index", saved)
    more = _fill(store_dir, 30, clock=clock, seed=1)
    with MemoryStore.open(store_dir, None, clock=clock) as store:
        store.delete(ids[:5])
    shutil.rmtree(store_dir / "index")
    shutil.copytree(saved, store_dir / "index")  # the index as it was before the last writes
    with MemoryStore.open(store_dir, None, clock=clock) as store:
        status = store.stats()["index_status"]
        assert status["index"] == "loaded"
        assert status["caught_up"] > 30
        assert store.consistency()["interact"] == {"records": 145, "indexed": 145, "ok": True}
        vec = unit_vectors(30, DIM, seed=1)[3]
        assert store.search(vec, k=1)[0].id == more[3]
        first = unit_vectors(120, DIM, seed=0)[0]
        assert ids[0] not in {h.id for h in store.search(first, k=20)}


def test_index_ahead_of_store_is_refused_then_recovered(store_dir: Path, clock: Clock) -> None:
    """An index from a later state (e.g. an older memory.db put back) is never trusted, and
    the database's regression is not silent: opening refuses, recover=True rebuilds."""
    _fill(store_dir, clock=clock)
    db_copy = store_dir.parent / "db-copy"
    db_copy.mkdir()
    with MemoryStore.open(store_dir, None, clock=clock) as store:
        store.backup(db_copy)
    _fill(store_dir, 10, clock=clock, seed=5)
    shutil.copy(store_dir / "index" / "manifest.json", db_copy / "index" / "manifest.json")
    for f in (store_dir / "index").glob("*.*"):
        shutil.copy(f, db_copy / "index" / f.name)
    with pytest.raises(DatabaseRegressedError, match="lost changes") as info:
        MemoryStore.open(db_copy, None, clock=clock)
    assert info.value.code == "memory.db_regressed"
    assert "--repair" in (info.value.hint or "")
    with MemoryStore.open(db_copy, None, clock=clock, recover=True) as store:
        status = store.stats()["index_status"]
        assert status["index"] == "rebuilt"
        assert status["recovered"]["lost_records"] == 10
        assert store.count() == 120
        assert store.consistency()["interact"]["ok"]
        assert store.check()["ok"]
    with MemoryStore.open(db_copy, None, clock=clock) as store:  # recovered for good
        assert store.stats()["index_status"]["index"] == "loaded"


def test_other_process_writes_are_seen(store_dir: Path, clock: Clock) -> None:
    _fill(store_dir, 10, clock=clock)
    reader = MemoryStore.open(store_dir, None, clock=clock)
    writer = MemoryStore.open(store_dir, None, clock=clock)
    try:
        vec = unit_vectors(1, DIM, seed=42)
        (rid,) = writer.add(["from the writer"], vectors=vec)
        assert reader.search(vec[0], k=1)[0].id == rid
        writer.delete([rid])
        assert rid not in {h.id for h in reader.search(vec[0], k=5)}
    finally:
        reader.close()
        writer.close()


def test_tombstones_then_compaction(store_dir: Path, clock: Clock) -> None:
    settings = MemorySettings(tombstone_ratio=0.3)
    vecs = unit_vectors(300, DIM, seed=4)
    with MemoryStore.open(store_dir, None, dim=DIM, clock=clock, settings=settings) as store:
        ids = store.add([f"t{i}" for i in range(300)], vectors=vecs)
        store.delete(ids[:80])
        layer = store.stats()["layers"]["interact"]
        assert layer["tombstones"] == 80
        assert layer["indexed"] == 220
        for i in range(0, 80, 7):
            assert ids[i] not in {h.id for h in store.search(vecs[i], k=5)}
        store.delete(ids[80:100])  # 100 / 300 > 0.3: compacted
        layer = store.stats()["layers"]["interact"]
        assert layer["tombstones"] == 0
        assert layer["indexed"] == 200
        assert store.search(vecs[150], k=1)[0].id == ids[150]


def test_flat_switches_to_hnsw_past_threshold(store_dir: Path, clock: Clock) -> None:
    settings = MemorySettings(flat_threshold=100)
    vecs = unit_vectors(150, DIM, seed=6)
    with MemoryStore.open(store_dir, None, dim=DIM, clock=clock, settings=settings) as store:
        ids = store.add([f"t{i}" for i in range(90)], vectors=vecs[:90])
        assert store.stats()["layers"]["interact"]["index"] == "flat"
        ids += store.add([f"t{i}" for i in range(90, 150)], vectors=vecs[90:])
        assert store.stats()["layers"]["interact"]["index"] == "hnsw"
        assert store.search(vecs[120], k=1)[0].id == ids[120]
    with MemoryStore.open(store_dir, None, clock=clock, settings=settings) as store:
        assert store.stats()["layers"]["interact"]["index"] == "hnsw"
        assert store.search(vecs[5], k=1)[0].id == ids[5]


def test_vacuum_really_reclaims_space(store_dir: Path, clock: Clock) -> None:
    secret = "SECRET-PASSAGE-{}-" + "x" * 2000
    vecs = unit_vectors(400, DIM, seed=8)
    with MemoryStore.open(store_dir, None, dim=DIM, clock=clock) as store:
        ids = store.add([secret.format(i) for i in range(400)], vectors=vecs)
        store.add(["keep me"], vectors=unit_vectors(1, DIM, seed=9))
        store.save()
        db = store_dir / "memory.db"
        store.delete(ids)
        before = store.stats()["bytes"]
        report = store.vacuum()
        after = store.stats()["bytes"]
        assert after["db"] + after["db_wal"] < (before["db"] + before["db_wal"]) / 4
        assert report["bytes_after"]["index"] < report["bytes_before"]["index"]
        assert store.stats()["layers"]["interact"]["tombstones"] == 0
        assert store.count() == 1
    for name in ("memory.db", "memory.db-wal"):
        path = store_dir / name
        if path.exists():
            assert b"SECRET-PASSAGE" not in path.read_bytes()
    for path in (store_dir / "index").iterdir():
        assert b"SECRET-PASSAGE" not in path.read_bytes()
    assert db.exists()
    with MemoryStore.open(store_dir, None, clock=clock) as store:
        assert store.stats()["index_status"]["index"] == "loaded"
        assert store.count() == 1
        assert len(store.history(ids[0])) == 2


def test_backup_opens_as_a_store(store_dir: Path, clock: Clock, tmp_path: Path) -> None:
    ids = _fill(store_dir, clock=clock)
    q = unit_vectors(1, DIM, seed=3)[0]
    with MemoryStore.open(store_dir, None, clock=clock) as store:
        report = store.backup(tmp_path / "bk")
        assert report["bytes"] > 0
        expected = [h.id for h in store.search(q, k=5)]
    with MemoryStore.open(tmp_path / "bk", None, clock=clock) as copy:
        assert copy.stats()["index_status"]["index"] == "loaded"
        assert [h.id for h in copy.search(q, k=5)] == expected
        assert copy.get(ids[7]).text == "text 0-7"


def test_export_import_roundtrip(store_dir: Path, clock: Clock, tmp_path: Path) -> None:
    emb = HashingEmbedder()
    with MemoryStore.open(store_dir, emb, clock=clock) as store:
        ids = store.add(["one fish", "two fish", "red fish"], [{"n": 1}, {"n": 2}, {"n": 3}])
        store.update(ids[2], layer="assets", importance=0.9)
        buf = io.StringIO()
        assert store.export_jsonl(buf, with_vectors=True) == 3
        assert store.export_jsonl(tmp_path / "plain.jsonl") == 3
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert {x["id"] for x in lines} == set(ids)
    assert len(lines[0]["vector"]) == emb.dim
    other = HashingEmbedder()
    with MemoryStore.open(tmp_path / "copy", other, clock=clock) as copy:
        counts = copy.import_jsonl(io.StringIO(buf.getvalue()))
        assert counts == {"imported": 3, "skipped": 0, "embedded": 0}
        assert other.texts_embedded == 0
        assert copy.get(ids[2]).layer.value == "assets"
        assert copy.get(ids[2]).importance == 0.9
        assert copy.import_jsonl(tmp_path / "plain.jsonl")["skipped"] == 3
        assert copy.search("red fish", k=1)[0].id == ids[2]
    with MemoryStore.open(tmp_path / "copy2", HashingEmbedder(), clock=clock) as copy:
        counts = copy.import_jsonl(tmp_path / "plain.jsonl")
        assert counts == {"imported": 3, "skipped": 0, "embedded": 3}


def test_health_checks(store_dir: Path, clock: Clock) -> None:
    from magray.memory._health import register

    settings = Settings(memory=MemorySettings(path=store_dir))
    registry = HealthRegistry()
    register(registry, settings)
    assert registry.run(["memory.store"]).checks[0].message == "no memory store yet"
    _fill(store_dir, clock=clock)
    assert registry.run(["memory.store"]).status is Status.OK
    shutil.rmtree(store_dir / "index")
    (store_dir / "index").mkdir()
    (store_dir / "index" / "manifest.json").write_text("garbage")
    report = registry.run(["memory.store"])
    assert report.status is Status.DEGRADED
    assert "rebuilt" in report.checks[0].message
    # the rebuilt index was saved, but damage stays a health entry for a week
    report = registry.run(["memory.store"])
    assert report.status is Status.DEGRADED
    assert "1 damage event(s)" in report.checks[0].message
    assert "unreadable index manifest" in report.checks[0].message
