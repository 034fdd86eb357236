"""Errors raised by magray-memory.

Every class subclasses one of :mod:`magray.common.errors`, so callers can catch
either the precise memory error or the generic family::

    MagrayError
    ├── NotFoundError
    │   └── RecordNotFoundError       no record with that id
    ├── ConflictError
    │   ├── DuplicateIdError          add() with an id that already exists
    │   └── ModelMismatchError        the store is pinned to another embedding model/dim
    ├── InvalidInputError             (used directly) empty text, NaN vector, wrong dim, bad filter
    ├── StorageError
    │   └── StoreCorruptError         the SQLite file itself is unreadable
    └── DependencyMissingError        (used directly) no embedder / reranker installed
"""

from __future__ import annotations

from magray.common.errors import ConflictError, NotFoundError, StorageError

__all__ = [
    "DuplicateIdError",
    "ModelMismatchError",
    "RecordNotFoundError",
    "StoreCorruptError",
]


class RecordNotFoundError(NotFoundError):
    """No record has the given id."""

    code = "memory.not_found"


class DuplicateIdError(ConflictError):
    """``add`` was given an id that is already in the store."""

    code = "memory.duplicate_id"


class ModelMismatchError(ConflictError):
    """The store is pinned to another embedding model id or dimension."""

    code = "memory.model_mismatch"


class StoreCorruptError(StorageError):
    """The store's SQLite database cannot be read."""

    code = "memory.corrupt"
