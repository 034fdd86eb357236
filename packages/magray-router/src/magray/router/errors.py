"""Errors of magray-router.

::

    MagrayError (magray.common.errors)
    ├── InvalidInputError
    │   ├── EmptyRequestError        "router.empty"      nothing to answer
    │   └── PlanInvalidError         "router.plan_invalid" a plan that cannot run
    └── ToolError
        └── PlanFailedError          "router.plan"       plan steps failed after recovery

A model that is not configured (``/model NAME``, ``--model NAME``) is magray-llm's
``LLMModelNotFoundError`` (``llm.model_not_found``), the one "model not found" error;
``UnknownModelError`` is its deprecated old name here.
"""

from __future__ import annotations

import warnings
from typing import Any

from magray.common.errors import InvalidInputError, ToolError

__all__ = ["EmptyRequestError", "PlanFailedError", "PlanInvalidError"]


class EmptyRequestError(InvalidInputError):
    """The request has no text (and nothing came on stdin)."""

    code = "router.empty"


class PlanInvalidError(InvalidInputError):
    """A plan names unknown tools, repeats ids, has a cycle or lacks arguments.

    ``details["problems"]`` lists every problem found.
    """

    code = "router.plan_invalid"


class PlanFailedError(ToolError):
    """A plan's steps failed even after retries, the fallback model and a replan.

    ``details["report"]`` holds the plan report as a dict.
    """

    code = "router.plan"

    def __init__(self, message: str, *, report: dict[str, Any], hint: str | None = None) -> None:
        super().__init__(message, hint=hint, details={"report": report})


def __getattr__(name: str) -> Any:
    """``UnknownModelError``: deprecated, now magray-llm's ``LLMModelNotFoundError``."""
    if name != "UnknownModelError":
        raise AttributeError(f"module 'magray.router.errors' has no attribute {name!r}")
    warnings.warn(
        "magray.router.UnknownModelError is now magray.llm.LLMModelNotFoundError; "
        "the old name is removed in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    from magray.llm import LLMModelNotFoundError

    return LLMModelNotFoundError
