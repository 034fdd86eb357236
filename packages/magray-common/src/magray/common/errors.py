"""The one error hierarchy of magray.

Every error raised on purpose by a magray library is a :class:`MagrayError`.
It carries a stable machine-readable ``code``, a human ``message``, an optional
``hint`` telling the user what to do, a ``retriable`` flag and free-form
``details``. Packages add subclasses in their own ``errors`` module; the CLI is
the only place that turns them into exit codes and one-line messages.

::

    MagrayError                     code "error"
    ├── ConfigError                 "config"            bad settings or config file
    ├── NotFoundError               "not_found"         a record, task, model or file is missing
    ├── InvalidInputError           "validation"        bad argument or data from the caller
    ├── ConflictError               "conflict"          duplicate id, concurrent change, clash
    ├── PermissionDeniedError       "permission"        sandbox or file-system refusal
    ├── OperationTimeoutError       "timeout"           an operation ran past its deadline
    ├── StorageError                "storage"           database/index I/O or corruption
    │   ├── StorageFullError        "storage.full"      no space left, or a file size limit
    │   ├── ReadOnlyStorageError    "storage.read_only" a read-only file, directory or mount
    │   └── StoragePermissionError  "storage.permission" the OS refused access to a path
    ├── ModelError                  "model"             embedding/rerank model problems
    ├── LLMError                    "llm"               language-model provider problems
    ├── ToolError                   "tool"              a tool failed while running
    └── DependencyMissingError      "dependency_missing" an optional extra is not installed

:func:`storage_error` turns an ``OSError`` or ``sqlite3.Error`` into the matching
storage error, so no raw I/O exception reaches a library's caller.

The names avoid shadowing builtins (``PermissionError``, ``TimeoutError``) and
pydantic's ``ValidationError``.
"""

from __future__ import annotations

import errno
import os
from typing import Any, ClassVar

__all__ = [
    "ConfigError",
    "ConflictError",
    "DependencyMissingError",
    "InvalidInputError",
    "LLMError",
    "MagrayError",
    "ModelError",
    "NotFoundError",
    "OperationTimeoutError",
    "PermissionDeniedError",
    "ReadOnlyStorageError",
    "StorageError",
    "StorageFullError",
    "StoragePermissionError",
    "ToolError",
    "storage_error",
]


class MagrayError(Exception):
    """Base class of every error magray raises on purpose.

    Args:
        message: What went wrong, in one sentence.
        hint: What the user can do about it.
        code: Overrides the class's stable code (e.g. ``"config.invalid"``).
        retriable: Whether repeating the same call may succeed.
        details: Extra structured context (shown with ``--json``).
    """

    code: ClassVar[str] = "error"
    default_retriable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        retriable: bool | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code  # type: ignore[misc]  # instance override of the class code
        self.retriable = self.default_retriable if retriable is None else retriable
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view: ``{"code", "message", "hint", "retriable", "details"}``."""
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "retriable": self.retriable,
            "details": self.details,
        }


class ConfigError(MagrayError):
    """Settings or a config file are invalid or unreadable."""

    code = "config"


class NotFoundError(MagrayError):
    """Something the caller named does not exist."""

    code = "not_found"


class InvalidInputError(MagrayError):
    """An argument or input value is invalid (wrong shape, NaN, empty text, ...)."""

    code = "validation"


class ConflictError(MagrayError):
    """The operation clashes with existing state (duplicate id, concurrent change)."""

    code = "conflict"


class PermissionDeniedError(MagrayError):
    """A policy or the operating system refused the operation."""

    code = "permission"


class OperationTimeoutError(MagrayError):
    """An operation did not finish within its deadline."""

    code = "timeout"
    default_retriable = True


class StorageError(MagrayError):
    """Reading or writing persistent state failed, or stored data is corrupt."""

    code = "storage"


class StorageFullError(StorageError):
    """A write failed for lack of space: a full disk or quota, or a file size limit."""

    code = "storage.full"


class ReadOnlyStorageError(StorageError):
    """A write was refused because the file, its directory or the mount is read-only."""

    code = "storage.read_only"


class StoragePermissionError(StorageError, PermissionDeniedError):
    """The operating system refused access to a path (``details["path"]`` names it)."""

    code = "storage.permission"


_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_PERMISSION_ERRNOS = {errno.EACCES, errno.EPERM}


def _size_limit() -> int | None:
    """This process's file size limit (``RLIMIT_FSIZE``) in bytes, or None when unlimited."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _out_of_space(path: str | None) -> bool:
    """Whether the file system holding ``path`` has (almost) no space left for us."""
    probe = path
    while probe:
        try:
            st = os.statvfs(probe)
        except (OSError, AttributeError):
            probe = os.path.dirname(probe) if os.path.dirname(probe) != probe else None
            continue
        return st.f_bavail * st.f_frsize < 1024 * 1024 or st.f_favail == 0
    return False


def _full(where: str, path: str | None, cause: str) -> StorageFullError:
    limit = _size_limit()
    if limit is not None and not _out_of_space(path):
        return StorageFullError(
            f"{where}: the file size limit of this process ({limit} bytes, RLIMIT_FSIZE) "
            f"was reached ({cause})",
            hint="raise the limit (`ulimit -f`) or keep the store smaller; nothing of the "
            "failed write was stored",
            details={"path": path, "limit_bytes": limit},
        )
    return StorageFullError(
        f"{where}: no space left on the device ({cause})",
        hint="free disk space (or raise the quota), then retry; nothing of the failed write "
        "was stored",
        details={"path": path},
        retriable=True,
    )


def _read_only(where: str, path: str | None, cause: str) -> ReadOnlyStorageError:
    return ReadOnlyStorageError(
        f"{where}: the storage is read-only ({cause})",
        hint=f"make {path or 'the directory'} writable for this user (uid {_uid()}) or "
        "remount the file system read-write",
        details={"path": path},
    )


def _uid() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else "?"


def storage_error(
    exc: BaseException, *, path: str | os.PathLike[str] | None = None, where: str = "storage"
) -> StorageError | None:
    """The :class:`StorageError` for an ``OSError`` or ``sqlite3.Error``, or ``None``.

    ``None`` means the failure is none of the kinds told apart here (full, read-only,
    permission denied, busy), e.g. a corrupt database: the caller decides. ``path`` names
    the file or directory involved when the exception does not (``OSError.filename`` wins).

    Args:
        exc: The exception caught.
        path: The file or directory the operation used.
        where: What was being done, e.g. ``"memory store /x: add"``; starts the message.
    """
    import sqlite3

    shown = os.fspath(path) if path is not None else None
    if isinstance(exc, OSError):
        if exc.filename is not None:
            shown = os.fsdecode(exc.filename)
        cause = exc.strerror or str(exc)
        if exc.errno in _FULL_ERRNOS:
            return _full(where, shown, cause)
        if exc.errno == errno.EROFS:
            return _read_only(where, shown, cause)
        if exc.errno in _PERMISSION_ERRNOS:
            return StoragePermissionError(
                f"{where}: permission denied on {shown}",
                hint=f"give this user (uid {_uid()}) access to {shown}, or use another path",
                details={"path": shown},
            )
        return StorageError(
            f"{where}: I/O error on {shown}: {cause}",
            hint="check the disk and the path; the operation did not complete",
            details={"path": shown, "errno": exc.errno},
        )
    if isinstance(exc, sqlite3.Error):
        name = str(getattr(exc, "sqlite_errorname", "") or "")
        cause = f"{exc} [{name}]" if name else str(exc)
        # A write refused for a file size limit (EFBIG) reaches SQLite as SQLITE_IOERR_WRITE.
        write_failed = name.startswith("SQLITE_IOERR") and "WRITE" in name
        if name == "SQLITE_FULL" or (
            write_failed and (_out_of_space(shown) or _size_limit() is not None)
        ):
            return _full(where, shown, cause)
        if name.startswith("SQLITE_READONLY"):
            return _read_only(where, shown, cause)
        if name in ("SQLITE_PERM", "SQLITE_AUTH") or name.startswith("SQLITE_CANTOPEN"):
            return StoragePermissionError(
                f"{where}: cannot open {shown} ({cause})",
                hint=f"check that {shown} and its directory exist and that this user "
                f"(uid {_uid()}) may read and write them",
                details={"path": shown},
            )
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return StorageError(
                f"{where}: the database is busy ({cause})",
                hint="another process holds a long write transaction; try again",
                retriable=True,
                details={"path": shown},
            )
        if name.startswith("SQLITE_IOERR"):
            return StorageError(
                f"{where}: disk I/O error on {shown} ({cause})",
                hint="check the disk (dmesg, SMART) and free space; the operation did not complete",
                details={"path": shown},
            )
    return None


class ModelError(MagrayError):
    """A model is missing, invalid or failed at inference time."""

    code = "model"


class LLMError(MagrayError):
    """A language-model provider call failed."""

    code = "llm"


class ToolError(MagrayError):
    """A tool failed while running."""

    code = "tool"


class DependencyMissingError(MagrayError):
    """An optional dependency (a package extra) is not installed."""

    code = "dependency_missing"

    @classmethod
    def for_extra(cls, *, distribution: str, extra: str, feature: str) -> DependencyMissingError:
        """The error for a feature that needs ``pip install "<distribution>[<extra>]"``."""
        return cls(
            f"{feature} needs the optional '{extra}' extra of {distribution}, "
            "which is not installed",
            hint=f'pip install "{distribution}[{extra}]"',
            details={"distribution": distribution, "extra": extra},
        )
