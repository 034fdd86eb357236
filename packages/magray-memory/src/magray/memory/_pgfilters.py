"""``where`` filters compiled to PostgreSQL (same grammar and semantics as ``_filters``).

Metadata lives in a ``jsonb`` column. Each comparison reads the value only when
its JSON type matches (``CASE jsonb_typeof(...)``), so, as in the local backend, a
bool never equals a number and a numeric range never matches strings. Strings
compare byte-wise (``COLLATE "C"``) like SQLite's default collation. Equality on a
metadata key also adds a ``metadata @> {...}`` containment test, which the GIN
index on ``metadata`` can answer; it is implied by the exact test, so it never
changes the result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from magray.common.errors import InvalidInputError
from magray.memory._filters import (
    _HINT,
    _OPS,
    _RANGE,
    RECORD_FIELDS,
    _check_field_value,
    _kind,
    walk_clause,
)

__all__ = ["compile_where_pg"]

_PG_TYPES = {"bool": "boolean", "number": "number", "str": "string", "null": "null"}


def compile_where_pg(where: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """SQL boolean expression over the records table and its ``%s`` parameters.

    Raises:
        InvalidInputError: The filter does not follow the grammar.
    """
    if not where:
        return "TRUE", []
    if not isinstance(where, Mapping):
        raise InvalidInputError(f"where must be a dict, not {type(where).__name__}", hint=_HINT)
    params: list[Any] = []
    return walk_clause(where, params, _op), params


def _path(key: str) -> str:
    return "{" + ",".join(f'"{segment}"' for segment in key.split(".")) + "}"


def _typed(key: str, kind: str, params: list[Any]) -> str:
    """The metadata value of ``key`` as SQL of ``kind``, NULL when its JSON type differs."""
    params.append(_path(key))
    params.append(_path(key))
    cast = {"number": "::float8", "bool": "::boolean", "str": ' COLLATE "C"'}[kind]
    return (
        f"(CASE WHEN jsonb_typeof(metadata #> %s::text[]) = '{_PG_TYPES[kind]}' "
        f"THEN (metadata #>> %s::text[]){cast} END)"
    )


def _nested(key: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for segment in reversed(key.split(".")):
        out = {segment: out}
    return dict(out)


def _eq(key: str, value: Any, params: list[Any]) -> str:
    kind = _kind(value)
    _check_field_value(key, kind)
    column = RECORD_FIELDS.get(key)
    if column is not None:
        if kind == "null":
            return f"{column} IS NULL"
        params.append(int(value) if kind == "bool" else value)
        return f"{column} = %s" if key != "_id" else f'{column} COLLATE "C" = %s'
    if kind == "null":
        params.append(_path(key))
        return "jsonb_typeof(metadata #> %s::text[]) = 'null'"
    params.append(json.dumps(_nested(key, value)))
    contains = "metadata @> %s::jsonb"
    expr = _typed(key, kind, params)
    params.append(value)
    return f"({contains} AND {expr} = %s)"


def _op(key: str, op: str, value: Any, params: list[Any]) -> str:
    if op not in _OPS:
        raise InvalidInputError(
            f"unknown filter operator {op!r} on {key!r}",
            hint=f"operators: {', '.join(sorted(_OPS))}",
        )
    if op == "$eq":
        return _eq(key, value, params)
    if op == "$ne":
        return f"NOT COALESCE({_eq(key, value, params)}, FALSE)"
    if op in ("$in", "$nin"):
        if not isinstance(value, list | tuple | set | frozenset):
            raise InvalidInputError(f"{op} on {key!r} needs a list of values", hint=_HINT)
        if not value:
            return "FALSE" if op == "$in" else "TRUE"
        inner = " OR ".join(f"({_eq(key, v, params)})" for v in value)
        return f"({inner})" if op == "$in" else f"NOT COALESCE(({inner}), FALSE)"
    column = RECORD_FIELDS.get(key)
    if op == "$exists":
        if not isinstance(value, bool):
            raise InvalidInputError(f"$exists on {key!r} needs true or false", hint=_HINT)
        if column is not None:
            test = f"{column} IS NOT NULL"
        else:
            params.append(_path(key))
            test = "metadata #> %s::text[] IS NOT NULL"
        return test if value else f"NOT ({test})"
    kind = _kind(value)
    _check_field_value(key, kind)
    if kind not in ("number", "str"):
        raise InvalidInputError(
            f"{op} on {key!r} needs a number or a string, not {value!r}", hint=_HINT
        )
    if column is not None:
        params.append(value)
        collate = ' COLLATE "C"' if key == "_id" else ""
        return f"({column} IS NOT NULL AND {column}{collate} {_RANGE[op]} %s)"
    expr = _typed(key, kind, params)
    params.append(value)
    return f"({expr} {_RANGE[op]} %s)"
