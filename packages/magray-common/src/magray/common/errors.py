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
    ├── ModelError                  "model"             embedding/rerank model problems
    ├── LLMError                    "llm"               language-model provider problems
    ├── ToolError                   "tool"              a tool failed while running
    └── DependencyMissingError      "dependency_missing" an optional extra is not installed

The names avoid shadowing builtins (``PermissionError``, ``TimeoutError``) and
pydantic's ``ValidationError``.
"""

from __future__ import annotations

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
    "StorageError",
    "ToolError",
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
