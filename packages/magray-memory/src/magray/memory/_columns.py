"""In-memory filter columns: ``where`` evaluated with numpy, aligned with index positions.

Each layer's :class:`LayerMeta` holds, for every position of that layer's
faiss index, the record's id, metadata and filterable record fields. Because
every change to a record gives it a new label (and so a new position), a
position's data never changes: columns only grow, and compaction takes a
subset. Metadata keys become typed columns on first use (kind codes, numbers,
dictionary-encoded strings), so a filter over 100k records is a few vectorised
comparisons instead of a SQL scan that parses every row's JSON.

The semantics are the ones :mod:`magray.memory._filters` compiles to SQL (the
SQL path serves ``list`` and filters on access statistics); tests check both
against an independent reference.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from magray.memory._filters import ACCESS_FIELDS

__all__ = [
    "JSON_KINDS",
    "RECORD_FIELDS",
    "FIELD_NAMES",
    "BaseRows",
    "LayerMeta",
    "MetaRow",
    "SavedColumn",
    "filter_keys",
    "uses_access_fields",
]

MISSING, NULL, BOOL, NUMBER, STR, OTHER = range(6)
# SQLite json_type() -> kind code
JSON_KINDS = {
    None: MISSING,
    "null": NULL,
    "true": BOOL,
    "false": BOOL,
    "integer": NUMBER,
    "real": NUMBER,
    "text": STR,
    "array": OTHER,
    "object": OTHER,
}
_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_NUMERIC_FIELDS = {
    "_created_at": "created",
    "_updated_at": "updated",
    "_importance": "importance",
    "_expires_at": "expires",
    "_pinned": "pinned",
}


FIELD_NAMES = ("created", "updated", "importance", "expires", "pinned")

RECORD_FIELDS = frozenset(_NUMERIC_FIELDS)
"""Record fields a filter may read that every :class:`LayerMeta` holds (``_id`` is apart)."""

SavedColumn = tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]
"""A metadata column as saved: kinds, numbers, string codes, the strings."""


@dataclass(frozen=True, slots=True)
class MetaRow:
    """The filterable part of one record."""

    id: str
    metadata: str | dict[str, Any]
    created_at: float
    updated_at: float
    importance: float
    expires_at: float | None
    pinned: bool


def filter_keys(where: Mapping[str, Any]) -> frozenset[str]:
    """The metadata keys and record fields a filter reads (through ``$and``/``$or``)."""
    keys: set[str] = set()
    for key, cond in where.items():
        if key in ("$and", "$or"):
            for sub in cond:
                keys |= filter_keys(sub)
        else:
            keys.add(key)
    return frozenset(keys)


def uses_access_fields(where: Mapping[str, Any]) -> bool:
    """Whether a filter reads access statistics (kept only in SQLite)."""
    return not ACCESS_FIELDS.isdisjoint(filter_keys(where))


class _Growable:
    """A numpy array with amortised O(1) append."""

    def __init__(self, dtype: Any) -> None:
        self.data = np.empty(0, dtype=dtype)
        self.n = 0

    def extend(self, values: Sequence[Any] | np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.data):
            self.data = np.resize(self.data, max(need, 2 * len(self.data), 256))
        self.data[self.n : need] = values
        self.n = need

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.n]


def _lookup(meta: dict[str, Any], path: list[str]) -> tuple[int, float, str | None]:
    node: Any = meta
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return MISSING, np.nan, None
        node = node[part]
    if node is None:
        return NULL, np.nan, None
    if isinstance(node, bool):
        return BOOL, float(node), None
    if isinstance(node, int | float):
        return NUMBER, float(node), None
    if isinstance(node, str):
        return STR, np.nan, node
    return OTHER, np.nan, None


class _KeyColumn:
    """One metadata key over all positions: kind, number value, string code."""

    def __init__(self, key: str) -> None:
        self.path = key.split(".")
        self.kinds = _Growable(np.int8)
        self.nums = _Growable(np.float64)
        self.codes = _Growable(np.int32)
        self.vocab: dict[str, int] = {}
        self.words: list[str] = []

    def extend(self, metas: Iterable[dict[str, Any]]) -> None:
        kinds, nums, texts = [], [], []
        for meta in metas:
            kind, num, text = _lookup(meta, self.path)
            kinds.append(kind)
            nums.append(num)
            texts.append(text)
        self.extend_raw(kinds, nums, texts)

    def extend_raw(
        self,
        kinds: Sequence[int] | np.ndarray,
        nums: Sequence[float] | np.ndarray,
        texts: Sequence[str | None],
    ) -> None:
        codes = []
        for text in texts:
            if text is None:
                codes.append(-1)
            else:
                code = self.vocab.get(text)
                if code is None:
                    code = self.vocab[text] = len(self.words)
                    self.words.append(text)
                codes.append(code)
        self.kinds.extend(kinds)
        self.nums.extend(nums)
        self.codes.extend(codes)

    def load(
        self, kinds: np.ndarray, nums: np.ndarray, codes: np.ndarray, words: list[str]
    ) -> None:
        """Start from saved arrays (positions ``[0, len(kinds))``) instead of rows."""
        self.kinds.extend(kinds)
        self.nums.extend(nums)
        self.codes.extend(codes)
        self.words = list(words)
        self.vocab = {word: code for code, word in enumerate(self.words)}

    def eq(self, value: Any) -> np.ndarray:
        kinds = self.kinds.view
        if value is None:
            out: np.ndarray = kinds == NULL
            return out
        if isinstance(value, bool):
            return np.asarray((kinds == BOOL) & (self.nums.view == float(value)), dtype=bool)
        if isinstance(value, int | float):
            return np.asarray((kinds == NUMBER) & (self.nums.view == float(value)), dtype=bool)
        code = self.vocab.get(value)
        if code is None:
            return np.zeros(len(kinds), dtype=bool)
        return np.asarray(self.codes.view == code, dtype=bool)

    def compare(self, op: str, value: Any) -> np.ndarray:
        if isinstance(value, str):
            lut = np.array([_CMP[op](w, value) for w in self.words] + [False], dtype=bool)
            return np.asarray(lut[self.codes.view], dtype=bool)  # code -1 hits the trailing False
        with np.errstate(invalid="ignore"):
            hit = (self.kinds.view == NUMBER) & _CMP[op](self.nums.view, float(value))
        return np.asarray(hit, dtype=bool)

    def exists(self) -> np.ndarray:
        out: np.ndarray = self.kinds.view != MISSING
        return out


class BaseRows(Protocol):
    """Filterable fields of positions ``[0, n)`` read from storage on demand."""

    n: int

    def fields(self) -> dict[str, np.ndarray]: ...
    def key(self, key: str) -> tuple[np.ndarray, np.ndarray, list[str | None]]: ...
    def ids(self) -> list[str]: ...
    def saved_column(self, key: str) -> SavedColumn | None: ...


class LayerMeta:
    """Filterable fields of every position of one layer index.

    Args:
        base: Positions loaded from storage (columns are read per metadata key
            when a filter first needs them); later positions are appended as rows.
    """

    def __init__(self, base: BaseRows | None = None) -> None:
        self._base = base
        self.base_n = 0 if base is None else base.n
        self._ids: list[str] = []  # appended positions only
        self.metas: list[dict[str, Any]] = []  # appended positions only
        self.created = _Growable(np.float64)
        self.updated = _Growable(np.float64)
        self.importance = _Growable(np.float64)
        self.expires = _Growable(np.float64)
        self.pinned = _Growable(np.float64)
        if base is not None:
            fields = base.fields()
            for name in FIELD_NAMES:
                getattr(self, name).extend(fields[name])
        self._keys: dict[str, _KeyColumn] = {}
        self._id_array: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.base_n + len(self.metas)

    def append(self, rows: Sequence[MetaRow]) -> None:
        metas = [
            json.loads(r.metadata) if isinstance(r.metadata, str) else r.metadata for r in rows
        ]
        self._ids.extend(r.id for r in rows)
        self.metas.extend(metas)
        self.created.extend([r.created_at for r in rows])
        self.updated.extend([r.updated_at for r in rows])
        self.importance.extend([r.importance for r in rows])
        self.expires.extend([np.nan if r.expires_at is None else r.expires_at for r in rows])
        self.pinned.extend([1.0 if r.pinned else 0.0 for r in rows])
        for column in self._keys.values():
            column.extend(metas)
        self._id_array = None

    def take(self, positions: np.ndarray) -> LayerMeta | None:
        """A LayerMeta of the given positions, in that order (for compaction); ``None``
        when part of it lives in storage (it is then reloaded on first use)."""
        if self._base is not None:
            return None
        out = LayerMeta()
        pos = positions.tolist()
        out.append(
            [
                MetaRow(
                    self._ids[p],
                    self.metas[p],
                    float(self.created.data[p]),
                    float(self.updated.data[p]),
                    float(self.importance.data[p]),
                    None if np.isnan(self.expires.data[p]) else float(self.expires.data[p]),
                    bool(self.pinned.data[p]),
                )
                for p in pos
            ]
        )
        return out

    @property
    def column_keys(self) -> frozenset[str]:
        """The metadata keys whose columns are built."""
        return frozenset(self._keys)

    def snapshot(self) -> dict[str, np.ndarray]:
        """The record fields and every metadata column built so far, as arrays for
        :func:`~magray.memory._savedcols.save_columns`."""
        keys = sorted(self._keys)
        out: dict[str, np.ndarray] = {name: getattr(self, name).view for name in FIELD_NAMES}
        out["keys"] = np.array(json.dumps(keys))
        for i, key in enumerate(keys):
            column = self._keys[key]
            out[f"k{i}_kinds"] = column.kinds.view
            out[f"k{i}_nums"] = column.nums.view
            out[f"k{i}_codes"] = column.codes.view
            out[f"k{i}_words"] = np.array(json.dumps(column.words))
        return out

    def expired(self, now: float) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            out: np.ndarray = self.expires.view <= now
        return out

    # ------------------------------------------------------------ evaluation
    def mask(self, where: Mapping[str, Any]) -> np.ndarray:
        """Positions matching ``where`` (already validated by ``compile_where``)."""
        out = np.ones(self.n, dtype=bool)
        for key, cond in where.items():
            if key == "$and":
                for sub in cond:
                    out &= self.mask(sub)
            elif key == "$or":
                any_of = np.zeros(self.n, dtype=bool)
                for sub in cond:
                    any_of |= self.mask(sub)
                out &= any_of
            else:
                conds = cond if isinstance(cond, Mapping) else {"$eq": cond}
                for op, value in conds.items():
                    out &= self._op(key, op, value)
        return out

    def _column(self, key: str) -> _KeyColumn:
        column = self._keys.get(key)
        if column is None:
            column = _KeyColumn(key)
            if self._base is not None:
                saved = self._base.saved_column(key)
                if saved is not None:
                    column.load(*saved)
                else:
                    column.extend_raw(*self._base.key(key))
            column.extend(self.metas)
            self._keys[key] = column
        return column

    def _op(self, key: str, op: str, value: Any) -> np.ndarray:
        if key in _NUMERIC_FIELDS or key == "_id":
            return self._field_op(key, op, value)
        column = self._column(key)
        if op == "$eq":
            return column.eq(value)
        if op == "$ne":
            return ~column.eq(value)
        if op in ("$in", "$nin"):
            hit = np.zeros(self.n, dtype=bool)
            for v in value:
                hit |= column.eq(v)
            return hit if op == "$in" else ~hit
        if op == "$exists":
            return column.exists() if value else ~column.exists()
        return column.compare(op, value)

    def _field_op(self, key: str, op: str, value: Any) -> np.ndarray:
        if key == "_id":
            if self._id_array is None:
                base = [] if self._base is None else self._base.ids()
                self._id_array = np.array(base + self._ids, dtype=object)
            arr: np.ndarray = self._id_array
        else:
            arr = getattr(self, _NUMERIC_FIELDS[key]).view
        if op == "$exists":
            present = ~np.isnan(arr) if arr.dtype.kind == "f" else np.ones(self.n, dtype=bool)
            return present if value else ~present
        if op in ("$in", "$nin"):
            hit = np.zeros(self.n, dtype=bool)
            for v in value:
                hit |= self._field_eq(arr, v)
            return hit if op == "$in" else ~hit
        if op == "$eq":
            return self._field_eq(arr, value)
        if op == "$ne":
            return ~self._field_eq(arr, value)
        with np.errstate(invalid="ignore"):
            out: np.ndarray = _CMP[op](arr, value)
        return out.astype(bool)

    def _field_eq(self, arr: np.ndarray, value: Any) -> np.ndarray:
        if value is None:
            if arr.dtype.kind == "f":
                out: np.ndarray = np.isnan(arr)
                return out
            return np.zeros(self.n, dtype=bool)
        if isinstance(value, bool):
            value = int(value)
        return np.asarray(arr == value, dtype=bool)
