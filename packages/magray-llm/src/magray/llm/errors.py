"""Errors raised by magray-llm, all subclasses of :class:`magray.common.errors.LLMError`.

::

    MagrayError
    └── LLMError                        "llm"
        ├── LLMAuthError                "llm.auth"              bad or missing API key
        ├── LLMModelNotFoundError       "llm.model_not_found"   unknown or unconfigured model
        ├── LLMRateLimitError           "llm.rate_limit"        429 (retriable)
        ├── LLMContextWindowError       "llm.context_window"    prompt too long for the model
        ├── LLMConnectionError          "llm.network"           server unreachable (retriable)
        ├── LLMTimeoutError             "llm.timeout"           request too slow (retriable)
        ├── LLMServerError              "llm.server"            5xx from the provider (retriable)
        │   └── LLMUnavailableError     "llm.unavailable"       every deployment cooling down
        ├── LLMBadRequestError          "llm.bad_request"       the provider rejected the request
        ├── StructuredOutputError       "llm.structured_output" no valid JSON after repairs
        └── LLMNotConfiguredError       "llm.not_configured"    no model set (also a ConfigError)
"""

from __future__ import annotations

from typing import Any

from magray.common.errors import ConfigError, LLMError, NotFoundError

__all__ = [
    "LLMAuthError",
    "LLMBadRequestError",
    "LLMConnectionError",
    "LLMContextWindowError",
    "LLMError",
    "LLMModelNotFoundError",
    "LLMNotConfiguredError",
    "LLMRateLimitError",
    "LLMServerError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "StructuredOutputError",
]


class LLMAuthError(LLMError):
    """The provider refused the credentials (401/403)."""

    code = "llm.auth"


class LLMModelNotFoundError(LLMError, NotFoundError):
    """The model or its provider is unknown, or a model asked for by name is not configured.

    magray's one "model not found" error for language models (also a ``NotFoundError``:
    exit code 3 in the CLI); magray-router raises it for ``/model NAME`` too.
    """

    code = "llm.model_not_found"


class LLMRateLimitError(LLMError):
    """The provider is rate limiting us (429)."""

    code = "llm.rate_limit"
    default_retriable = True


class LLMContextWindowError(LLMError):
    """The prompt does not fit into the model's context window."""

    code = "llm.context_window"


class LLMConnectionError(LLMError):
    """The server could not be reached (DNS, refused connection, reset)."""

    code = "llm.network"
    default_retriable = True


class LLMTimeoutError(LLMError):
    """The request did not finish within its timeout."""

    code = "llm.timeout"
    default_retriable = True


class LLMServerError(LLMError):
    """The provider failed with a server-side error (5xx)."""

    code = "llm.server"
    default_retriable = True


class LLMUnavailableError(LLMServerError):
    """No deployment of a model name can take the call: all are cooling down after failures."""

    code = "llm.unavailable"


class LLMBadRequestError(LLMError):
    """The provider rejected the request as invalid (400/422)."""

    code = "llm.bad_request"


class StructuredOutputError(LLMError):
    """The model did not produce output matching the schema, even after repair attempts.

    Attributes:
        raw: The model's last raw reply.
        errors: The validation error of each attempt, oldest first.
    """

    code = "llm.structured_output"

    def __init__(
        self,
        message: str,
        *,
        raw: str,
        errors: list[str],
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message,
            hint=hint,
            details={**(details or {}), "raw": raw, "errors": errors},
        )
        self.raw = raw
        self.errors = errors


class LLMNotConfiguredError(LLMError, ConfigError):
    """No model is configured, so an LLM call cannot be made."""

    code = "llm.not_configured"
