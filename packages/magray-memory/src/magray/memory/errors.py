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
    │   ├── StoreCorruptError         the SQLite file itself is damaged (SQLITE_CORRUPT/NOTADB)
    │   ├── DatabaseMissingError      index files exist but memory.db is missing or empty
    │   ├── DatabaseRegressedError    memory.db lost changes the saved index had seen
    │   ├── StorageFullError          (magray.common) no space / file size limit
    │   ├── ReadOnlyStorageError      (magray.common) a write to a read-only store
    │   └── StoragePermissionError    (magray.common) the OS refused a path
    └── DependencyMissingError        (used directly) no embedder / reranker installed
"""

from __future__ import annotations

from magray.common.errors import ConflictError, NotFoundError, StorageError

__all__ = [
    "DatabaseMissingError",
    "DatabaseRegressedError",
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


class DatabaseMissingError(StorageError):
    """The store's index files exist but ``memory.db`` (the source of truth) is missing or
    empty: opening it as a new store would silently lose every record."""

    code = "memory.db_missing"


class DatabaseRegressedError(StorageError):
    """``memory.db`` is behind the saved index: it lost changes the index had seen (a
    damaged WAL, or an older copy of the file put back)."""

    code = "memory.db_regressed"
