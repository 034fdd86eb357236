"""What only the postgres backend has: several processes on one server store, schema
versions, DSN handling, health. (The shared API suite runs on both backends elsewhere.)"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from magray.common.errors import InvalidInputError, StorageError
from magray.common.health import HealthRegistry, Status
from magray.common.settings import MemorySettings, Settings
from magray.memory import MemoryStore
from magray.memory._postgres import redact, split_dsn
from memtestkit import Clock, unit_vectors

pytestmark = pytest.mark.postgres

WRITER = r"""
import sys
import numpy as np
from magray.memory import MemoryStore

dsn, name = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(abs(hash(name)) % 1000)
with MemoryStore.open(dsn, None) as store:
    for i in range(20):
        v = rng.normal(size=(1, 8)).astype("float32")
        store.add([f"{name} note {i}"], metadata=[{"writer": name}], vectors=v)
        shared = rng.normal(size=(1, 8)).astype("float32")
        store.add([f"shared fact {i}"], vectors=shared)  # same text from every writer
    target = store.list_records(where={"_id": sys.argv[3]}, limit=1)[0]
    for i in range(10):  # values unique across writers, so every update changes something
        store.update(target.id, importance=round(0.01 + 0.09 * i + 0.003 * int(name[1:]), 4))
"""


def test_several_processes_share_one_store_without_lost_writes(
    pg_server_dsn: str, tmp_path: Path
) -> None:
    from memtestkit import fresh_schema

    dsn = fresh_schema(pg_server_dsn)
    with MemoryStore.open(dsn, None, dim=8) as store:
        (target,) = store.add(["contended"], vectors=unit_vectors(1, 8), layer="assets")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), dsn, f"w{n}", target], stderr=subprocess.PIPE
        )
        for n in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    with MemoryStore.open(dsn, None) as store:
        # 3 x 20 own notes + 20 shared facts, deduplicated across processes + the target
        assert store.count() == 60 + 20 + 1
        for n in range(3):
            assert len(store.list_records(where={"writer": f"w{n}"}, limit=None)) == 20
        updates = [e for e in store.history(target) if e["event"] == "update"]
        assert len(updates) == 30  # every process's 10 updates were applied and logged
        # row locks serialise them: each update saw the value the previous one wrote
        chain = [e["details"]["importance"] for e in updates]
        assert chain[0][0] == 0.5
        assert all(prev[1] == cur[0] for prev, cur in itertools.pairwise(chain))
        assert store.get(target).importance == chain[-1][1]
        assert all(c["ok"] for c in store.consistency().values())


def test_dsn_handling() -> None:
    assert redact("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert split_dsn("postgresql://h/db?sslmode=require&schema=team_a") == (
        "postgresql://h/db?sslmode=require",
        "team_a",
    )
    with pytest.raises(InvalidInputError, match="schema"):
        split_dsn("postgresql://h/db?schema=Drop;Table")


def test_two_stores_on_one_server_are_isolated(pg_server_dsn: str) -> None:
    sep = "&" if "?" in pg_server_dsn else "?"
    with (
        MemoryStore.open(f"{pg_server_dsn}{sep}schema=iso_a", None, dim=4) as a,
        MemoryStore.open(f"{pg_server_dsn}{sep}schema=iso_b", None, dim=6) as b,
    ):
        a.add(["only in a"], vectors=[[1, 0, 0, 0]])
        assert (a.count(), b.count()) == (1, 0)
        assert (a.pinned[1], b.pinned[1]) == (4, 6)


def test_newer_schema_version_is_refused(pg_server_dsn: str) -> None:
    from memtestkit import fresh_schema

    dsn = fresh_schema(pg_server_dsn)
    with MemoryStore.open(dsn, None, dim=4) as store:
        backend = store.backend
        with backend._tx() as conn:  # type: ignore[attr-defined]
            backend._set_meta(conn, "schema_version", "999")  # type: ignore[attr-defined]
    with pytest.raises(StorageError, match="schema version 999") as err:
        MemoryStore.open(dsn, None)
    assert "upgrade" in (err.value.hint or "")


def test_settings_select_the_backend(pg_server_dsn: str, clock: Clock) -> None:
    from memtestkit import fresh_schema

    settings = MemorySettings(backend="postgres", dsn=fresh_schema(pg_server_dsn))
    with MemoryStore.open(None, None, dim=4, settings=settings, clock=clock) as store:
        assert store.backend.name == "postgres"
        store.add(["x"], vectors=[[0, 1, 0, 0]])
        assert store.stats()["backend"] == "postgres"
        assert store.search(np.array([0, 1, 0, 0], dtype=np.float32), k=1)[0].text == "x"


def test_health_check_on_postgres(pg_server_dsn: str) -> None:
    from magray.memory._health import register
    from memtestkit import fresh_schema

    dsn = fresh_schema(pg_server_dsn)
    registry = HealthRegistry()
    register(registry, Settings(memory=MemorySettings(backend="postgres", dsn=dsn)))
    assert "no memory store yet" in registry.run(["memory.store"]).checks[0].message
    with MemoryStore.open(dsn, None, dim=4) as store:
        store.add(["x"], vectors=[[0, 1, 0, 0]])
    report = registry.run(["memory.store"])
    assert report.status is Status.OK
    assert "1 records" in report.checks[0].message
    registry = HealthRegistry()
    register(registry, Settings(memory=MemorySettings(backend="postgres")))
    assert registry.run(["memory.store"]).status is Status.FAILED


def test_hnsw_index_is_built_in_bulk_past_flat_threshold(pg_server_dsn: str) -> None:
    from memtestkit import fresh_schema

    settings = MemorySettings(flat_threshold=100, dedupe=False)
    vecs = unit_vectors(2600, 8, seed=5, clusters=20)
    with MemoryStore.open(fresh_schema(pg_server_dsn), None, dim=8, settings=settings) as store:
        store.add([f"a{i}" for i in range(50)], vectors=vecs[:50])
        backend = store.backend
        with backend._tx() as conn:  # type: ignore[attr-defined]
            assert not backend._has_index(conn)  # type: ignore[attr-defined]
        store.add([f"b{i}" for i in range(2500)], vectors=vecs[50:2550])  # bulk load
        with backend._tx() as conn:  # type: ignore[attr-defined]
            assert backend._has_index(conn)  # type: ignore[attr-defined]
        store.add([f"c{i}" for i in range(50)], vectors=vecs[2550:])  # row by row into it
        assert store.stats()["layers"]["interact"]["index"] == "hnsw"
        hits = 0
        for qi in range(0, 2600, 100):
            want = set(np.argsort(-(vecs @ vecs[qi]))[:10].tolist())
            got = store.search(vecs[qi], k=10)
            names = [h.text for h in got]
            index = {f"a{i}": i for i in range(50)}
            index.update({f"b{i}": 50 + i for i in range(2500)})
            index.update({f"c{i}": 2550 + i for i in range(50)})
            hits += len({index[n] for n in names} & want)
        assert hits / (26 * 10) >= 0.9
        store.rebuild_index()
        assert store.search(vecs[7], k=1)[0].text == "a7"


def test_dropped_connections_are_retried(
    pg_server_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server-side kills of every pooled connection: the next calls reconnect and succeed."""
    import psycopg

    import magray.memory._pgcore as pg
    from memtestkit import fresh_schema

    backoffs: list[float] = []
    monkeypatch.setattr(pg.time, "sleep", backoffs.append)  # no real waiting; counts retries
    dsn = fresh_schema(pg_server_dsn)
    with MemoryStore.open(dsn, None, dim=4) as store:
        store.add(["before"], vectors=[[1, 0, 0, 0]])
        libpq_dsn, _ = split_dsn(dsn)
        with psycopg.connect(libpq_dsn, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                "AND backend_type = 'client backend'"
            ).fetchone()
        assert killed is not None
        assert killed[0] >= 1
        store.add(["after"], vectors=[[0, 1, 0, 0]])
        assert {h.text for h in store.search(np.array([1, 1, 0, 0], np.float32), k=5)} == {
            "before",
            "after",
        }
    assert backoffs  # the killed connection failed once and the transaction was retried


def test_ef_search_follows_the_table_size_as_on_local(
    pg_server_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset, efSearch comes from auto_ef_search of the table's row estimate (or a bounded
    count before PostgreSQL has analysed it), cached for 30 s."""
    from magray.memory import _pgsearch
    from memtestkit import fresh_schema

    seen: list[int] = []

    def recording(live: int) -> int:
        seen.append(live)
        return 64

    monkeypatch.setattr(_pgsearch, "auto_ef_search", recording)
    vecs = unit_vectors(30, 8, seed=6)
    with MemoryStore.open(fresh_schema(pg_server_dsn), None, dim=8) as store:
        store.add([f"t{i}" for i in range(30)], vectors=vecs)
        assert store.search(vecs[3], k=2)[0].text == "t3"
        store.search(vecs[4], k=2)  # cached: not asked again
        assert seen == [30]
        assert store.warm_up() == 0  # no hit-row cache on postgres
        backend = store.backend
        with backend._tx() as conn:  # type: ignore[attr-defined]
            conn.execute(f"ANALYZE {backend._s}.records")  # type: ignore[attr-defined]
        backend._ef_auto = None  # type: ignore[attr-defined]
        store.search(vecs[5], k=2)
        assert seen == [30, 30]
    with MemoryStore.open(
        fresh_schema(pg_server_dsn), None, dim=8, settings=MemorySettings(hnsw_ef_search=80)
    ) as store:
        store.add(["x"], vectors=vecs[:1])
        store.search(vecs[0], k=1)
    assert seen == [30, 30]  # a configured efSearch is used as it is
