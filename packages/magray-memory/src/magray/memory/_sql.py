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
from collections.abc import Sequence
from types import EllipsisType
from typing import Any

import numpy as np

from magray.memory._filters import compile_where
from magray.memory._types import Layer, Record

__all__ = [
    "ORDERS",
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "row_to_record",
    "select_query",
    "update_details",
]

# Columns `list` may sort by (anything else sorts by created_at).
ORDERS = ("created_at", "updated_at", "last_access", "access_count", "importance", "label")

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


def update_details(
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
) -> dict[str, Any]:
    """What an update changes in the record of ``row`` (record columns), as the details of
    its ``update`` history event; empty when nothing changes."""
    changed: dict[str, Any] = {}
    if text is not None and text != row[3]:
        changed["text"] = {"chars": len(text), "content_hash": content_hash}
    if metadata_json is not None and metadata_json != row[4]:
        changed["metadata"] = True
    if importance is not None and importance != row[10]:
        changed["importance"] = [row[10], importance]
    if pinned is not None and pinned != bool(row[12]):
        changed["pinned"] = pinned
    if layer is not None and layer.value != row[2]:
        changed["layer"] = [row[2], layer.value]
    if not isinstance(expires_at, EllipsisType) and expires_at != row[11]:
        changed["expires_at"] = [row[11], expires_at]
    if vector is not None and "text" not in changed:
        changed["vector"] = True
    return changed
