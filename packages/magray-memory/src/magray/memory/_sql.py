"""The SQL both backends share, and the small dialect object that tells them apart.

SQLite (the local backend) and PostgreSQL (``_postgres.py``) store the same
record columns and answer the same ``where`` grammar (``_filters.py``). What differs
is written once per dialect here: the parameter marker, the true/false literals,
how a metadata key is read (``json_type``/``json_extract`` over TEXT in SQLite,
``jsonb_typeof``/``#>>`` over ``jsonb`` in PostgreSQL) and how a vector comes back.
Everything else (the filter compiler, the ``list`` query, row → :class:`Record`)
is one function used by both backends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from types import EllipsisType
from typing import TYPE_CHECKING, Any

import numpy as np

from magray.memory._filters import compile_where
from magray.memory._types import Layer, Record

if TYPE_CHECKING:
    from magray.memory._backend import NewRecord

__all__ = [
    "HISTORY_COLUMNS",
    "ORDERS",
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "row_to_record",
    "select_query",
    "INSERT_COLUMNS",
    "add_details",
    "history_row",
    "new_values",
    "update_changes",
]

# Columns `list` may sort by (anything else sorts by created_at).
ORDERS = ("created_at", "updated_at", "last_access", "access_count", "importance", "label")

# The columns a new record row is inserted with (``new_values`` gives all but ``dim``).
INSERT_COLUMNS = (
    "id, layer, text, metadata, content_hash, created_at, updated_at, last_access, "
    "access_count, importance, expires_at, pinned, model_id, dim"
)

# The columns of a history event, in the order :func:`history_row` gives them.
HISTORY_COLUMNS = "record_id, event, at, layer, details"

# The JSON types a filter value of each kind matches, in SQLite's and PostgreSQL's words.
_JSON_TYPES = {
    "bool": "('true', 'false')",
    "number": "('integer', 'real')",
    "str": "('text')",
    "null": "('null')",
}
_JSONB_TYPES = {"bool": "boolean", "number": "number", "str": "string", "null": "null"}


class Dialect:
    """What one SQL engine spells differently; the SQLite spelling by default."""

    name = "sqlite"
    mark = "?"  # the parameter placeholder
    true = "1"
    false = "0"

    for_update = ""  # appended to a SELECT whose row the transaction goes on to change
    chunk = 900  # most values one ``IN`` list takes (SQLite's parameter limit)

    def marks(self, n: int) -> str:
        """``n`` parameter placeholders, comma-separated."""
        return ", ".join([self.mark] * n)

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column IN (values)`` and its parameters (for a short list)."""
        return f"{column} IN ({self.marks(len(values))})", list(values)

    def in_lists(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """:meth:`in_list` for any number of values: one clause per chunk of them."""
        for start in range(0, len(values), self.chunk):
            yield self.in_list(column, values[start : start + self.chunk])

    def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` once per row of parameters."""
        conn.executemany(sql, rows)

    def compared(self, key: str, column: str) -> str:
        """A record column as the left side of ``=``/``<``: ``column`` unless collated."""
        return column

    def _path(self, key: str) -> str:
        return "$." + ".".join(f'"{segment}"' for segment in key.split("."))

    def _json_type(self, key: str) -> str:
        return f"json_type(metadata, '{self._path(key)}')"

    def _json_value(self, key: str) -> str:
        return f"json_extract(metadata, '{self._path(key)}')"

    def meta_null(self, key: str, params: list[Any]) -> str:
        """Metadata ``key`` holds JSON null."""
        return f"{self._json_type(key)} = 'null'"

    def meta_eq(self, key: str, kind: str, value: Any, params: list[Any]) -> str:
        """Metadata ``key`` holds ``value`` of ``kind`` (a bool never equals a number)."""
        params.append(int(value) if kind == "bool" else value)
        return f"({self._json_type(key)} IN {_JSON_TYPES[kind]} AND {self._json_value(key)} = ?)"

    def meta_exists(self, key: str, params: list[Any]) -> str:
        """Metadata ``key`` is present (also when it holds null)."""
        return f"{self._json_type(key)} IS NOT NULL"

    def meta_range(self, key: str, kind: str, op: str, value: Any, params: list[Any]) -> str:
        """Metadata ``key`` holds a ``kind`` value (number or str) that is ``op value``."""
        params.append(value)
        return f"({self._json_type(key)} IN {_JSON_TYPES[kind]} AND {self._json_value(key)} {op} ?)"

    def vector(self, raw: Any) -> np.ndarray:
        """A stored vector as float32 (a BLOB of float32 in SQLite)."""
        return np.frombuffer(raw, dtype=np.float32)


class PostgresDialect(Dialect):
    """PostgreSQL + pgvector: metadata in ``jsonb``, strings compared byte-wise.

    Each comparison reads the value only when its JSON type matches
    (``CASE jsonb_typeof(...)``), so, as in SQLite, a bool never equals a number and
    a numeric range never matches strings. Strings compare byte-wise (``COLLATE
    "C"``) like SQLite's default collation. Equality on a metadata key also adds a
    ``metadata @> {...}`` containment test, which the GIN index on ``metadata`` can
    answer; it is implied by the exact test, so it never changes the result.
    """

    name = "postgres"
    mark = "%s"
    true = "TRUE"
    false = "FALSE"
    for_update = " FOR UPDATE"  # row-locked, so concurrent updates never get lost
    chunk = 1 << 30  # one array parameter takes them all

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s)", [list(values)]

    def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)

    def compared(self, key: str, column: str) -> str:
        return f'{column} COLLATE "C"' if key == "_id" else column

    def _path(self, key: str) -> str:
        return "{" + ",".join(f'"{segment}"' for segment in key.split(".")) + "}"

    def _typed(self, key: str, kind: str, params: list[Any]) -> str:
        """The metadata value of ``key`` as SQL of ``kind``, NULL when its JSON type differs."""
        params.append(self._path(key))
        params.append(self._path(key))
        cast = {"number": "::float8", "bool": "::boolean", "str": ' COLLATE "C"'}[kind]
        return (
            f"(CASE WHEN jsonb_typeof(metadata #> %s::text[]) = '{_JSONB_TYPES[kind]}' "
            f"THEN (metadata #>> %s::text[]){cast} END)"
        )

    def meta_null(self, key: str, params: list[Any]) -> str:
        params.append(self._path(key))
        return "jsonb_typeof(metadata #> %s::text[]) = 'null'"

    def meta_eq(self, key: str, kind: str, value: Any, params: list[Any]) -> str:
        nested: Any = value
        for segment in reversed(key.split(".")):
            nested = {segment: nested}
        params.append(json.dumps(nested))
        expr = self._typed(key, kind, params)
        params.append(value)
        return f"(metadata @> %s::jsonb AND {expr} = %s)"

    def meta_exists(self, key: str, params: list[Any]) -> str:
        params.append(self._path(key))
        return "metadata #> %s::text[] IS NOT NULL"

    def meta_range(self, key: str, kind: str, op: str, value: Any, params: list[Any]) -> str:
        expr = self._typed(key, kind, params)
        params.append(value)
        return f"({expr} {op} %s)"

    def vector(self, raw: Any) -> np.ndarray:
        # pgvector's loader yields numpy arrays in some versions, Vector objects in others
        return np.asarray(raw.to_numpy() if hasattr(raw, "to_numpy") else raw, np.float32)


SQLITE = Dialect()
POSTGRES = PostgresDialect()


def row_to_record(
    row: Sequence[Any], *, with_vector: bool = False, dialect: Dialect = SQLITE
) -> Record:
    """A :class:`Record` from a row of the record columns (``label, id, layer, text,
    metadata, content_hash, created_at, updated_at, last_access, access_count,
    importance, expires_at, pinned, model_id, dim`` and, ``with_vector``, the vector)."""
    return Record(
        id=row[1],
        layer=Layer(row[2]),
        text=row[3],
        metadata=json.loads(row[4]),
        created_at=row[6],
        updated_at=row[7],
        last_access=row[8],
        access_count=int(row[9]),
        importance=row[10],
        expires_at=row[11],
        pinned=bool(row[12]),
        content_hash=row[5],
        model_id=row[13],
        dim=row[14],
        vector=dialect.vector(row[15]) if with_vector else None,
    )


def select_query(
    dialect: Dialect,
    *,
    table: str,
    columns: str,
    layer: Layer | None,
    where: dict[str, Any] | None,
    limit: int | None,
    offset: int,
    order: str,
    descending: bool,
) -> tuple[str, list[Any]]:
    """The ``list`` query (records of a layer matching ``where``, sorted) and its
    parameters; an unknown ``order`` sorts by ``created_at``, ties by label."""
    if order not in ORDERS:
        order = "created_at"
    sql, params = compile_where(where, dialect)
    args: list[Any] = []
    clause = sql
    if layer is not None:
        clause = f"layer = {dialect.mark} AND ({sql})"
        args.append(layer.value)
    args.extend(params)
    direction = "DESC" if descending else "ASC"
    query = (
        f"SELECT {columns} FROM {table} WHERE {clause} "
        f"ORDER BY {order} {direction}, label {direction}"
    )
    if limit is not None:
        query += f" LIMIT {dialect.mark} OFFSET {dialect.mark}"
        args.extend([limit, offset])
    return query, args


def history_row(
    record_id: str, event: str, at: float, layer: str | None, details: dict[str, Any] | None
) -> tuple[Any, ...]:
    """The parameters of one history event (:data:`HISTORY_COLUMNS`), details as JSON."""
    return (record_id, event, at, layer, json.dumps(details or {}, sort_keys=True))


def new_values(record_id: str, r: NewRecord, now: float, model_id: str) -> tuple[Any, ...]:
    """The values of :data:`INSERT_COLUMNS` for a new record (``dim`` is left to the backend)."""
    return (
        record_id,
        r.layer.value,
        r.text,
        r.metadata_json,
        r.content_hash,
        now if r.created_at is None else r.created_at,
        now if r.updated_at is None else r.updated_at,
        now if r.last_access is None else r.last_access,
        r.access_count,
        r.importance,
        r.expires_at,
        int(r.pinned),
        model_id,
    )


def add_details(r: NewRecord) -> dict[str, Any]:
    """The details of a record's ``add`` history event."""
    return {"chars": len(r.text), "content_hash": r.content_hash}


def update_changes(
    row: Sequence[Any],
    *,
    text: str | None,
    content_hash: str | None,
    metadata_json: str | None,
    importance: float | None,
    pinned: bool | None,
    layer: Layer | None,
    expires_at: float | EllipsisType | None,
    vector: np.ndarray | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What an update changes in the record of ``row`` (record columns): the details of its
    ``update`` history event (empty: nothing changes), and the new values, keyed among
    ``text, content_hash, metadata_json, importance, pinned, layer, expires_at, vector``
    (a new vector also means a new model id and dim)."""
    changed: dict[str, Any] = {}
    sets: dict[str, Any] = {}
    if text is not None and text != row[3]:
        changed["text"] = {"chars": len(text), "content_hash": content_hash}
        sets.update(text=text, content_hash=content_hash)
    if metadata_json is not None and metadata_json != row[4]:
        changed["metadata"] = True
        sets["metadata_json"] = metadata_json
    if importance is not None and importance != row[10]:
        changed["importance"] = [row[10], importance]
        sets["importance"] = importance
    if pinned is not None and pinned != bool(row[12]):
        changed["pinned"] = pinned
        sets["pinned"] = pinned
    if layer is not None and layer.value != row[2]:
        changed["layer"] = [row[2], layer.value]
        sets["layer"] = layer.value
    if not isinstance(expires_at, EllipsisType) and expires_at != row[11]:
        changed["expires_at"] = [row[11], expires_at]
        sets["expires_at"] = expires_at
    if vector is not None:
        sets["vector"] = vector
        if "text" not in changed:
            changed["vector"] = True
    return changed, sets
