"""``where`` filters: a small, documented query language compiled to SQL.

The grammar (values are JSON scalars: str, int, float, bool, None)::

    {"project": "x"}                       equality on a metadata key
    {"project": {"$in": ["x", "y"]}}       membership ($nin: not in)
    {"n": {"$gte": 2, "$lt": 5}}           numeric or string ranges ($gt $gte $lt $lte)
    {"n": {"$ne": 3}}                      inequality (also true when the key is missing)
    {"tag": {"$exists": true}}             key present
    {"a.b": 1}                             nested keys with dots
    {"_created_at": {"$gte": 1.7e9}}       record fields: _created_at _updated_at
                                           _last_access _importance _access_count _id _pinned
    {"$or": [{...}, {...}]}, {"$and": [...]}

Several keys in one dict are ANDed. Values compare by kind: a bool never equals
a number, and a range on numbers never matches strings (unlike raw SQLite, where
every TEXT sorts after every INTEGER).

One compiler serves both backends: :func:`compile_where` takes the
:class:`~magray.memory._sql.Dialect` (SQLite or PostgreSQL) that spells a
metadata comparison, a placeholder and the boolean literals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from magray.common.errors import InvalidInputError

if TYPE_CHECKING:
    from magray.memory._sql import Dialect

__all__ = ["ACCESS_FIELDS", "RECORD_FIELDS", "compile_where"]

RECORD_FIELDS = {
    "_created_at": "created_at",
    "_updated_at": "updated_at",
    "_last_access": "last_access",
    "_importance": "importance",
    "_access_count": "access_count",
    "_expires_at": "expires_at",
    "_id": "id",
    "_pinned": "pinned",
}
# Record fields that change on every search hit: filtered in SQLite, not in memory.
ACCESS_FIELDS = {"_last_access", "_access_count"}
_KEY = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_OPS = {"$eq", "$ne", "$in", "$nin", "$exists", *_RANGE}
_HINT = (
    'filters look like {"key": "value"}, {"key": {"$in": [1, 2]}}, {"n": {"$gte": 3}}; '
    "see docs/memory.md#filters"
)


def compile_where(where: Mapping[str, Any] | None, dialect: Dialect) -> tuple[str, list[Any]]:
    """SQL boolean expression over table ``records`` and its parameters, in ``dialect``.

    Returns ``(dialect.true, [])`` for an empty filter.

    Raises:
        InvalidInputError: The filter does not follow the grammar.
    """
    if not where:
        return dialect.true, []
    if not isinstance(where, Mapping):
        raise InvalidInputError(f"where must be a dict, not {type(where).__name__}", hint=_HINT)
    params: list[Any] = []
    return _clause(where, params, dialect), params


def _clause(where: Mapping[str, Any], params: list[Any], dialect: Dialect) -> str:
    """Validate the grammar and join the comparisons of one filter dict."""
    parts = []
    for key, cond in where.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list | tuple) or not cond:
                raise InvalidInputError(f"{key} needs a non-empty list of filters", hint=_HINT)
            subs = []
            for sub in cond:
                if not isinstance(sub, Mapping) or not sub:
                    raise InvalidInputError(f"{key} items must be non-empty dicts", hint=_HINT)
                subs.append(f"({_clause(sub, params, dialect)})")
            parts.append(f"({(' AND ' if key == '$and' else ' OR ').join(subs)})")
            continue
        if not isinstance(key, str) or not (_KEY.match(key) or key in RECORD_FIELDS):
            raise InvalidInputError(
                f"invalid filter key {key!r}",
                hint="keys are letters, digits, _ and -, with dots for nesting; " + _HINT,
            )
        if isinstance(cond, Mapping):
            if not cond:
                raise InvalidInputError(f"empty condition for {key!r}", hint=_HINT)
            for operator, value in cond.items():
                parts.append(_op(key, operator, value, params, dialect))
        else:
            parts.append(_op(key, "$eq", cond, params, dialect))
    return " AND ".join(parts)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError("filter values must be finite numbers", hint=_HINT)
        return "number"
    if isinstance(value, str):
        return "str"
    raise InvalidInputError(
        f"filter values must be str, int, float, bool or None, not {type(value).__name__}",
        hint=_HINT,
    )


def _check_field_value(key: str, kind: str) -> None:
    if key not in RECORD_FIELDS:
        return
    wanted = ("str",) if key == "_id" else ("number", "bool", "null")
    if kind not in wanted:
        raise InvalidInputError(
            f"{key} compares with {' or '.join(wanted)} values, not {kind}", hint=_HINT
        )


def _eq(key: str, value: Any, params: list[Any], dialect: Dialect) -> str:
    kind = _kind(value)
    _check_field_value(key, kind)
    column = RECORD_FIELDS.get(key)
    if column is not None:  # a record column: plain SQL comparison
        if kind == "null":
            return f"{column} IS NULL"
        params.append(int(value) if kind == "bool" else value)
        return f"{dialect.compared(key, column)} = {dialect.mark}"
    if kind == "null":
        return dialect.meta_null(key, params)
    return dialect.meta_eq(key, kind, value, params)


def _op(key: str, op: str, value: Any, params: list[Any], dialect: Dialect) -> str:
    if op not in _OPS:
        raise InvalidInputError(
            f"unknown filter operator {op!r} on {key!r}",
            hint=f"operators: {', '.join(sorted(_OPS))}",
        )
    if op == "$eq":
        return _eq(key, value, params, dialect)
    if op == "$ne":
        return f"NOT COALESCE({_eq(key, value, params, dialect)}, {dialect.false})"
    if op in ("$in", "$nin"):
        if not isinstance(value, list | tuple | set | frozenset):
            raise InvalidInputError(f"{op} on {key!r} needs a list of values", hint=_HINT)
        if not value:
            return dialect.false if op == "$in" else dialect.true
        inner = " OR ".join(f"({_eq(key, v, params, dialect)})" for v in value)
        return f"({inner})" if op == "$in" else f"NOT COALESCE(({inner}), {dialect.false})"
    column = RECORD_FIELDS.get(key)
    if op == "$exists":
        if not isinstance(value, bool):
            raise InvalidInputError(f"$exists on {key!r} needs true or false", hint=_HINT)
        test = f"{column} IS NOT NULL" if column is not None else dialect.meta_exists(key, params)
        return test if value else f"NOT ({test})"
    kind = _kind(value)
    _check_field_value(key, kind)
    if kind not in ("number", "str"):
        raise InvalidInputError(
            f"{op} on {key!r} needs a number or a string, not {value!r}", hint=_HINT
        )
    if column is None:
        return dialect.meta_range(key, kind, _RANGE[op], value, params)
    params.append(value)
    return f"({column} IS NOT NULL AND {dialect.compared(key, column)} {_RANGE[op]} {dialect.mark})"
