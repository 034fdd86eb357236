"""magray.common.salvage on real damaged SQLite files."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from pathlib import Path

import pytest

from magray.common.salvage import (
    TableStats,
    damaged_copy,
    integrity_problems,
    is_corruption,
    readable_rows,
    table_columns,
)

ROWS = 4000


def _payload(i: int) -> str:
    return f"row {i} " + "x" * 150


def _database(path: Path, *, wal: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO item VALUES (?, ?)", ((i, _payload(i)) for i in range(1, ROWS + 1))
    )
    conn.execute("COMMIT")
    return conn


def _damage_leaf(path: Path, *, seed: int = 7) -> None:
    """Overwrite one page in the middle of the file (a leaf of ``item``) with noise."""
    size = path.stat().st_size
    page = 4096
    middle = (size // page // 2) * page
    with path.open("r+b") as f:
        f.seek(middle)
        f.write(random.Random(seed).randbytes(page))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_sound_file_reads_whole(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    _database(path).close()
    with damaged_copy(path) as conn:
        assert integrity_problems(conn) == []
        stats = TableStats("item")
        rows = list(readable_rows(conn, "item", stats))
    assert len(rows) == ROWS
    assert stats.complete
    assert stats.rows == ROWS


def test_a_damaged_page_costs_only_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    _database(path).close()
    _damage_leaf(path)
    before = _sha(path)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        sqlite3.connect(path).execute("SELECT count(*), sum(length(body)) FROM item").fetchone()
    assert is_corruption(caught.value)
    with damaged_copy(path) as conn:
        assert integrity_problems(conn)  # SQLite's own check sees the damage
        assert table_columns(conn, "item") == ["id", "body"]
        stats = TableStats("item")
        rows = list(readable_rows(conn, "item", stats, batch=256))
    assert _sha(path) == before  # the original is only read
    assert not stats.complete
    assert ROWS - 100 < len(rows) < ROWS  # one 4 KiB leaf holds ~25 rows of this size
    assert all(body == _payload(int(i)) for i, body in rows)  # nothing read is garbage
    lost = set(range(1, ROWS + 1)) - {int(i) for i, _ in rows}
    fenced = {i for a, b in stats.unreadable for i in range(a, b + 1)}
    assert lost <= fenced
    assert stats.unreadable_rowids < 100


def test_uncheckpointed_wal_writes_count(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    conn = _database(path, wal=True)  # still open: the rows may live only in the -wal
    conn.execute("INSERT INTO item VALUES (?, ?)", (ROWS + 1, _payload(ROWS + 1)))
    assert path.with_name(path.name + "-wal").exists()
    with damaged_copy(path) as copy:
        stats = TableStats("item")
        rows = list(readable_rows(copy, "item", stats))
    conn.close()
    assert len(rows) == ROWS + 1


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"this is not sqlite" * 500)
    with damaged_copy(path) as conn:
        assert integrity_problems(conn)
        assert table_columns(conn, "item") == []
        stats = TableStats("item")
        assert list(readable_rows(conn, "item", stats)) == []
    assert stats.table_unreadable
    assert not stats.complete


def test_a_zero_rowid_is_read(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO item VALUES (?, ?)", [(0, "zero"), (1, "one")])
    conn.commit()
    conn.close()
    with damaged_copy(path) as copy:
        stats = TableStats("item")
        rows = list(readable_rows(copy, "item", stats))
    assert [r[1] for r in rows] == ["zero", "one"]
