"""Schema versions: migrations run in order, in one transaction; newer databases are refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from magray.common.errors import StorageError
from magray.memory import MemoryStore, StoreCorruptError
from magray.memory._sqlite import MIGRATIONS, SCHEMA_VERSION
from memtestkit import Clock


def test_version_1_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.mkdir()
    conn = sqlite3.connect(path / "memory.db", isolation_level=None)
    conn.execute("BEGIN")
    MIGRATIONS[0](conn)  # the version-1 schema: vectors inside the records table
    vec = np.array([1, 0, 0, 0], dtype=np.float32)
    conn.execute(
        "INSERT INTO records (id, layer, text, metadata, vector, content_hash, created_at, "
        "updated_at, last_access, access_count, importance, expires_at, pinned, model_id, dim) "
        "VALUES ('old', 'assets', 'from v1', ?, ?, 'h', 1, 1, 1, 0, 0.5, NULL, 0, 'm', 4)",
        (json.dumps({"a": 1}), vec.tobytes()),
    )
    conn.execute("INSERT INTO changes (op, label, layer) VALUES ('add', 1, 'assets')")
    conn.execute("INSERT INTO meta (key, value) VALUES ('model_id', 'm'), ('dim', '4')")
    conn.execute("PRAGMA user_version=1")
    conn.execute("COMMIT")
    conn.close()
    with MemoryStore.open(path, None, clock=Clock()) as store:
        assert store.get("old").metadata == {"a": 1}
        assert store.search(vec, k=1)[0].id == "old"
        store.add(["new"], vectors=[[0, 1, 0, 0]])
        assert store.count() == 2
    conn = sqlite3.connect(path / "memory.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    columns = {row[1] for row in conn.execute("PRAGMA table_info(records)")}
    assert "vector" not in columns
    conn.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with MemoryStore.open(path, None, dim=4):
        pass
    conn = sqlite3.connect(path / "memory.db")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="newer") as err:
        MemoryStore.open(path, None)
    assert "pip install -U" in (err.value.hint or "")


def test_garbage_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.mkdir()
    (path / "memory.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorruptError) as err:
        MemoryStore.open(path, None, dim=4)
    assert "backup" in (err.value.hint or "")
