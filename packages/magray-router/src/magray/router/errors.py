"""Errors of magray-router.

::

    MagrayError (magray.common.errors)
    ├── InvalidInputError
    │   ├── EmptyRequestError        "router.empty"      nothing to answer
    │   └── PlanInvalidError         "router.plan_invalid" a plan that cannot run
    ├── NotFoundError
    │   └── UnknownModelError        "router.model"      /model names no configured model
    └── ToolError
        └── PlanFailedError          "router.plan"       plan steps failed after recovery
"""

from __future__ import annotations

from typing import Any

from magray.common.errors import InvalidInputError, NotFoundError, ToolError

__all__ = ["EmptyRequestError", "PlanFailedError", "PlanInvalidError", "UnknownModelError"]


class EmptyRequestError(InvalidInputError):
    """The request has no text (and nothing came on stdin)."""

    code = "router.empty"


class PlanInvalidError(InvalidInputError):
    """A plan names unknown tools, repeats ids, has a cycle or lacks arguments.

    ``details["problems"]`` lists every problem found.
    """

    code = "router.plan_invalid"


class UnknownModelError(NotFoundError):
    """A model name that is not configured (``/model NAME``)."""

    code = "router.model"


class PlanFailedError(ToolError):
    """A plan's steps failed even after retries, the fallback model and a replan.

    ``details["report"]`` holds the plan report as a dict.
    """

    code = "router.plan"

    def __init__(self, message: str, *, report: dict[str, Any], hint: str | None = None) -> None:
        super().__init__(message, hint=hint, details={"report": report})
