"""Damage is detected and never silent: checksums of saved index files, a database that is
missing, emptied or behind its index, a damaged WAL (the failures of issue #16)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from magray.common.health import HealthRegistry, Status
from magray.common.settings import MemorySettings, Settings
from magray.memory import MemoryStore
from magray.memory.errors import DatabaseMissingError, DatabaseRegressedError
from memtestkit import Clock, unit_vectors

DIM = 16


def _fill(path: Path, n: int = 500, *, layer: str = "interact", seed: int = 0) -> np.ndarray:
    vectors = unit_vectors(n, DIM, seed=seed)
    settings = MemorySettings(flat_threshold=100)  # HNSW layers, as on a real store
    with MemoryStore.open(path, None, dim=DIM, settings=settings) as store:
        store.add(
            [f"text {seed}-{i}" for i in range(n)],
            ids=[f"r{seed}-{i}" for i in range(n)],
            vectors=vectors,
            layer=layer,
            metadata=[{"n": i, "tag": f"t{i % 7}"} for i in range(n)],
        )
        store.search(vectors[0], k=3, where={"tag": "t1"})  # two filters: columns get built
        store.search(vectors[0], k=3, where={"tag": "t2"})
    return vectors


def _self_hits(path: Path, vectors: np.ndarray, seed: int = 0) -> int:
    with MemoryStore.open(path, None) as store:
        return sum(store.search(v, k=1)[0].id == f"r{seed}-{i}" for i, v in enumerate(vectors))


def _garble(path: Path, offset: int, size: int) -> None:
    data = bytearray(path.read_bytes())
    start = offset if offset >= 0 else len(data) + offset
    data[start : start + size] = np.random.default_rng(3).bytes(min(size, len(data) - start))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("layer", "offset", "size"),
    [("interact", 4096, 4096), ("assets", -65536, 65536)],
    ids=["4k-inside-interact", "64k-at-the-end-of-assets"],
)
def test_garbage_inside_a_faiss_file_is_caught_by_its_checksum(
    store_dir: Path, layer: str, offset: int, size: int
) -> None:
    """Before: the layer loaded as `loaded` and 499/500 self-queries were wrong."""
    vectors = _fill(store_dir, 2000 if size > 4096 else 500, layer=layer)
    (target,) = (store_dir / "index").glob(f"{layer}.*.faiss")
    assert target.stat().st_size > size + 4096
    _garble(target, offset, size)
    with MemoryStore.open(store_dir, None) as store:
        status = store.stats()["index_status"]
        assert status["index"] == "rebuilt"
        assert status["damaged"] is True
        assert "failed its checksum" in status["reason"]
        (event,) = store.check()["damage_events"]
        assert target.name in event["details"]["reason"]
    assert _self_hits(store_dir, vectors) == len(vectors)  # every self-query right again


def test_a_damaged_file_is_a_health_entry(store_dir: Path, tmp_path: Path) -> None:
    _fill(store_dir, 200)
    (state,) = [p for p in (store_dir / "index").glob("interact.*.npz") if ".cols." not in p.name]
    _garble(state, 40, 64)
    settings = Settings(memory=MemorySettings(path=store_dir))
    registry = HealthRegistry()
    from magray.memory._health import register

    register(registry, settings)
    # the first open rebuilt it; the health check opens a healthy store and still tells
    with MemoryStore.open(store_dir, None) as store:
        assert store.stats()["index_status"]["damaged"] is True
    (result,) = registry.run(["memory.store"]).checks
    assert result.status is Status.DEGRADED
    assert "failed its checksum" in result.message


def test_damaged_filter_columns_are_not_used(store_dir: Path) -> None:
    vectors = _fill(store_dir, 300)
    (columns,) = (store_dir / "index").glob("interact.*.cols.npz")
    _garble(columns, 200, 64)
    with MemoryStore.open(store_dir, None) as store:
        hits = store.search(vectors[5], k=300, where={"tag": "t5"})
        assert sorted(h.id for h in hits) == sorted(f"r0-{i}" for i in range(5, 300, 7))
        assert store.check()["damage_events"][0]["event"] == "index_damaged"


def test_an_edited_manifest_fails_its_checksum(store_dir: Path) -> None:
    _fill(store_dir, 200)
    manifest = store_dir / "index" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"watermark": 200', '"watermark": 150'))
    with MemoryStore.open(store_dir, None) as store:
        status = store.stats()["index_status"]
        assert status["index"] == "rebuilt"
        assert "manifest.json failed its checksum" in status["reason"]


@pytest.mark.parametrize("how", ["deleted", "emptied"])
def test_a_missing_database_is_never_opened_as_a_new_store(store_dir: Path, how: str) -> None:
    """Before: the store opened as a new empty store with no warning."""
    _fill(store_dir, 200)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_dir / 'memory.db'}{suffix}").unlink(missing_ok=True)
    if how == "emptied":
        (store_dir / "memory.db").write_bytes(b"")
    with pytest.raises(DatabaseMissingError) as info:
        MemoryStore.open(store_dir, None, dim=DIM)
    assert info.value.code == "memory.db_missing"
    assert "check --repair" in (info.value.hint or "")
    with MemoryStore.open(store_dir, None, recover=True) as store:
        assert store.pinned == ("external", DIM)  # pinned like the index was
        assert store.count() == 0
        assert store.stats()["index_status"]["recovered"]["lost_records"] == 200
        report = store.check()
        assert report["ok"]
        assert report["damage_events"][0]["event"] == "recovered"


def test_a_database_that_regrew_over_lost_changes_is_caught(
    store_dir: Path, tmp_path: Path
) -> None:
    """The same number of changes written again after a rollback: the watermark alone
    cannot tell, the history tip saved with the index can."""
    _fill(store_dir, 100)
    old = tmp_path / "old"
    with MemoryStore.open(store_dir, None) as store:
        store.backup(old)
        store.add(["later"] * 1, vectors=unit_vectors(1, DIM, seed=9))
    # the old database regrows past the index's watermark with other records
    shutil.rmtree(old / "index")
    with MemoryStore.open(old, None) as store:
        store.add(["other", "records"], vectors=unit_vectors(2, DIM, seed=8))
    shutil.copy(old / "memory.db", store_dir / "memory.db")
    for suffix in ("-wal", "-shm"):
        Path(f"{store_dir / 'memory.db'}{suffix}").unlink(missing_ok=True)
    with pytest.raises(DatabaseRegressedError, match="history event"):
        MemoryStore.open(store_dir, None)


# Adds 30 batches with an index saved at the end, then waits to be killed (its WAL stays).
_WRITER = r"""
import sys, time
import numpy as np
from magray.memory import MemoryStore

store = MemoryStore.open(sys.argv[1], None, dim=16)
rng = np.random.default_rng(0)
for b in range(30):
    store.add([f"t{b}-{i}" for i in range(100)], vectors=rng.normal(size=(100, 16)) + 0.1)
store.save()
print("SAVED", flush=True)
time.sleep(60)
"""


def test_a_damaged_wal_is_not_silent(store_dir: Path) -> None:
    """Before: a damaged WAL rolled back 800 of 7,500 records and `consistency` said ok."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(store_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "SAVED"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    wal = Path(f"{store_dir / 'memory.db'}-wal")
    assert wal.stat().st_size > 100_000, "the WAL holds the batches"
    _garble(wal, wal.stat().st_size // 2, 4096)
    os.unlink(f"{store_dir / 'memory.db'}-shm")
    with pytest.raises(DatabaseRegressedError) as info:
        MemoryStore.open(store_dir, None)
    assert info.value.details["db_last_change"] < info.value.details["index_watermark"]
    with MemoryStore.open(store_dir, None, recover=True) as store:
        lost = store.stats()["index_status"]["recovered"]["lost_records"]
        assert lost == 3000 - store.count() > 0
        assert all(c["ok"] for c in store.consistency().values())


def test_consistency_sees_labels_the_database_no_longer_has(store_dir: Path) -> None:
    _fill(store_dir, 50)
    with MemoryStore.open(store_dir, None) as store:
        backend = store.backend
        index = backend.layers["interact"]  # type: ignore[attr-defined]
        label = int(index.labels()[0])
        backend.db.conn.execute("DELETE FROM records WHERE label = ?", (label,))  # type: ignore[attr-defined]
        backend.db.conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO records SELECT label + 1000, id || 'x', layer, text, metadata, "
            "content_hash, created_at, updated_at, last_access, access_count, importance, "
            "expires_at, pinned, model_id, dim FROM records WHERE label = ?",
            (label + 1,),
        )  # same count, a label the index lacks and one the database lacks
        assert not store.consistency()["interact"]["ok"]
        report = store.check()
        assert report["layers"]["interact"]["unknown_to_db"] == 1
        assert report["layers"]["interact"]["missing_in_index"] == 1
        assert not report["ok"]


def test_check_reports_and_repairs_a_damaged_index(store_dir: Path, clock: Clock) -> None:
    vectors = _fill(store_dir, 300)
    with MemoryStore.open(store_dir, None) as store:
        assert store.check()["ok"]
        (target,) = (store_dir / "index").glob("interact.*.faiss")
        _garble(target, 4096, 512)  # damaged on disk while the store is open
        report = store.check()
        assert not report["ok"]
        assert report["checksums"][0].startswith(target.name)
        repaired = store.check(repair=True)
        assert repaired["ok"]
        assert repaired["repaired"] == ["index rebuilt from SQLite and saved"]
    assert _self_hits(store_dir, vectors) == len(vectors)


def test_an_index_saved_before_checksums_loads_and_is_saved_with_them(store_dir: Path) -> None:
    """An upgrade must not rebuild every store (15 minutes for an HNSW layer of 1M)."""
    vectors = _fill(store_dir, 300)
    manifest_path = store_dir / "index" / "manifest.json"
    raw = json.loads(manifest_path.read_text())
    for info in raw["layers"].values():  # what format 1 wrote: no digests, no columns
        for key in ("index_xxh3", "state_xxh3", "columns", "columns_xxh3"):
            info.pop(key, None)
    for key in ("checksum", "db_tip"):
        raw.pop(key)
    manifest_path.write_text(json.dumps({**raw, "format": 1}))
    with MemoryStore.open(store_dir, None) as store:
        status = store.stats()["index_status"]
        assert status["index"] == "loaded"
        assert "without checksums" in status["unverified"]
    saved = json.loads(manifest_path.read_text())
    assert saved["format"] == 2
    assert saved["layers"]["interact"]["index_xxh3"]
    with MemoryStore.open(store_dir, None) as store:
        assert store.stats()["index_status"] == {"index": "loaded", "caught_up": 0}
    assert _self_hits(store_dir, vectors) == len(vectors)
