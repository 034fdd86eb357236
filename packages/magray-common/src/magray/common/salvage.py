"""Reading SQLite files that cannot be opened the usual way: damaged, or read-only.

SQLite reports damage lazily: a query fails with ``database disk image is
malformed`` only when it touches a damaged page, and everything else of the file
still reads. :func:`damaged_copy` opens a private copy of the file (with its
``-wal`` and ``-journal`` beside it, so committed but uncheckpointed writes count)
and never writes to the original; :func:`readable_rows` walks one table by rowid
ranges and splits every range that fails in halves until the damage is fenced to
single rowids, so one bad page costs only the rows on it. The packages that own
the schema (``magray todo check --repair``, ``magray memory check --repair``)
validate the rows they get and write them into a fresh database.

A database this process may read but not write (file or directory permissions,
a read-only mount) cannot be opened read-write, and in WAL mode not even with
``mode=ro`` when its ``-shm`` file is missing: :func:`read_only_uris` lists the
ways to try, ``mode=ro`` first (it sees the ``-wal``), then ``immutable=1`` when
there is no WAL content to miss, and :func:`is_refusal` tells such a refusal
from other errors.

::

    with damaged_copy(path) as conn:
        problems = integrity_problems(conn)
        stats = TableStats("todo_task")
        for row in readable_rows(conn, "todo_task", stats):
            ...
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CORRUPT_ERRORS",
    "is_refusal",
    "read_only_uris",
    "TableStats",
    "damaged_copy",
    "integrity_problems",
    "is_corruption",
    "readable_rows",
    "table_columns",
]

CORRUPT_ERRORS = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
"""SQLite's names (prefixes) for errors that mean the file itself is damaged."""

_SIDE_FILES = ("-wal", "-journal")


def is_corruption(exc: BaseException) -> bool:
    """True when ``exc`` (a ``sqlite3.Error``, or an error wrapping one as ``orig``)
    says the database file is damaged or is not a database."""
    inner = getattr(exc, "orig", None) or exc
    name = str(getattr(inner, "sqlite_errorname", "") or "")
    if name:
        return name.startswith(CORRUPT_ERRORS)
    text = str(inner).lower()
    return "malformed" in text or "not a database" in text


def is_refusal(exc: BaseException) -> bool:
    """True when ``exc`` says the file may not be opened or written as asked (read-only
    file, directory or mount; permission; the ``-shm``/``-wal`` cannot be created)."""
    inner = getattr(exc, "orig", None) or exc
    name = str(getattr(inner, "sqlite_errorname", "") or "")
    return name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM"))


def read_only_uris(path: Path) -> list[str]:
    """URIs that open ``path`` read-only, in the order to try them (``uri=True``)."""
    uri = path.absolute().as_uri()
    wal = path.with_name(path.name + "-wal")
    uris = [f"{uri}?mode=ro"]
    try:
        empty_wal = wal.stat().st_size == 0
    except FileNotFoundError:
        empty_wal = True
    if empty_wal:
        uris.append(f"{uri}?immutable=1")
    return uris


@dataclass
class TableStats:
    """What :func:`readable_rows` read from one table, and what it could not."""

    table: str
    rows: int = 0
    unreadable: list[tuple[int, int]] = field(default_factory=list)
    """Rowid ranges (inclusive) that could not be read; their rows, if any, are lost."""
    table_unreadable: bool = False
    """True when no row of the table could be located at all."""

    @property
    def complete(self) -> bool:
        """True when every rowid range of the table was read."""
        return not self.unreadable and not self.table_unreadable

    @property
    def unreadable_rowids(self) -> int:
        """How many rowids fall in unreadable ranges (an upper bound on the lost rows)."""
        return sum(b - a + 1 for a, b in self.unreadable)


@contextlib.contextmanager
def damaged_copy(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a private copy of the database at ``path`` (closed and removed
    on exit). The original and its side files are only read."""
    with tempfile.TemporaryDirectory(prefix="magray-salvage-") as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        for suffix in _SIDE_FILES:
            side = path.with_name(path.name + suffix)
            if side.exists():
                shutil.copyfile(side, copy.with_name(copy.name + suffix))
        conn = sqlite3.connect(copy, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()


def integrity_problems(conn: sqlite3.Connection, *, limit: int = 20) -> list[str]:
    """SQLite's ``integrity_check`` findings (at most ``limit``); empty when the file
    is sound. A file too damaged to check yields the error as its one finding."""
    try:
        rows = conn.execute(f"PRAGMA integrity_check({int(limit)})").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    found = [str(r[0]) for r in rows]
    return [] if found == ["ok"] else found


def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The column names of ``table`` in the damaged file (empty when its schema is unreadable)."""
    try:
        return [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")')]
    except sqlite3.DatabaseError:
        return []


def readable_rows(
    conn: sqlite3.Connection,
    table: str,
    stats: TableStats,
    *,
    columns: Sequence[str] | None = None,
    batch: int = 1024,
) -> Iterator[tuple[object, ...]]:
    """Every row of ``table`` that can still be read, in rowid order.

    Args:
        conn: A connection from :func:`damaged_copy`.
        table: The table (a rowid table).
        stats: Counts what was read and records the unreadable ranges.
        columns: The columns to read (default: all, in table order).
        batch: Rows per range query while nothing fails.
    """
    cols = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    query = f'SELECT {cols} FROM "{table}" WHERE rowid BETWEEN ? AND ? ORDER BY rowid'
    top = _max_rowid(conn, table)
    if top is None:  # not one rowid could be found: the table's tree is unreadable
        stats.table_unreadable = True
        return
    lowest = _min_rowid(conn, table)
    start = 1 if lowest is None else min(1, lowest)  # zero and negative rowids are legal
    while start <= top:
        end = min(start + batch - 1, top)
        yield from _range(conn, query, start, end, stats)
        start = end + 1


def _range(
    conn: sqlite3.Connection, query: str, a: int, b: int, stats: TableStats
) -> Iterator[tuple[object, ...]]:
    try:
        rows = conn.execute(query, (a, b)).fetchall()
    except sqlite3.DatabaseError:
        if a == b:
            if stats.unreadable and stats.unreadable[-1][1] == a - 1:
                stats.unreadable[-1] = (stats.unreadable[-1][0], a)
            else:
                stats.unreadable.append((a, a))
            return
        middle = (a + b) // 2
        yield from _range(conn, query, a, middle, stats)
        yield from _range(conn, query, middle + 1, b, stats)
        return
    stats.rows += len(rows)
    yield from rows


def _max_rowid(conn: sqlite3.Connection, table: str) -> int | None:
    try:
        row = conn.execute(f'SELECT max(rowid) FROM "{table}"').fetchone()
        return int(row[0]) if row and row[0] is not None else 0
    except sqlite3.DatabaseError:
        pass
    # The right edge of the tree is damaged: find the largest readable rowid by doubling.
    best: int | None = None
    probe = 1
    while probe < 1 << 48:
        try:
            row = conn.execute(
                f'SELECT rowid FROM "{table}" WHERE rowid >= ? ORDER BY rowid LIMIT 1', (probe,)
            ).fetchone()
        except sqlite3.DatabaseError:
            probe *= 2  # damaged around here: look higher
            continue
        if row is None:
            break
        best = int(row[0])
        probe = max(probe * 2, best + 1)
    return best


def _min_rowid(conn: sqlite3.Connection, table: str) -> int | None:
    try:
        row = conn.execute(f'SELECT min(rowid) FROM "{table}"').fetchone()
        return int(row[0]) if row and row[0] is not None else None
    except sqlite3.DatabaseError:
        return None
