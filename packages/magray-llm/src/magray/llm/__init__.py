"""magray-llm: one client for every LLM provider (over litellm), structured output, and prompts.

Example::

    from magray.llm import LLMClient

    client = LLMClient("openai/gpt-4o-mini")
    reply = client.complete("Say hi in one word")
    print(reply.text, reply.usage.total_tokens)

OpenAI-compatible models (``openai/...``, ``local/...``) are called directly over
HTTP; litellm serves the other providers and several deployments, and is imported only
by a call that needs it, never by ``import magray.llm``.

The routing agents (intent, tool selection, parameter extraction, planning, their
coordinator and evaluation) moved to :mod:`magray.router.rules` after 0.1.0: routing
has one home. Their old names here still work for one release, with a
``DeprecationWarning``, when magray-router is installed (see :func:`__getattr__`).
"""

from __future__ import annotations

import importlib
import warnings
from importlib.metadata import version as _version
from typing import Any

from magray.llm._backend import warm_up
from magray.llm._client import AsyncCompletionStream, CompletionStream, LLMClient
from magray.llm._config import ModelConfig, RetryPolicy
from magray.llm._models import ModelInfo, describe_models
from magray.llm._prompts import Prompt, available_prompts, load_prompt
from magray.llm._types import Completion, StreamDelta, ToolCall, ToolCallDelta, Usage
from magray.llm.errors import (
    LLMAuthError,
    LLMBadRequestError,
    LLMConnectionError,
    LLMContextWindowError,
    LLMError,
    LLMModelNotFoundError,
    LLMNotConfiguredError,
    LLMRateLimitError,
    LLMServerError,
    LLMTimeoutError,
    LLMUnavailableError,
    StructuredOutputError,
)

__version__ = _version("magray-llm")

__all__ = [
    "__version__",
    # client
    "AsyncCompletionStream",
    "CompletionStream",
    "LLMClient",
    "warm_up",
    "ModelConfig",
    "ModelInfo",
    "RetryPolicy",
    "describe_models",
    # prompts
    "Prompt",
    "available_prompts",
    "load_prompt",
    # results
    "Completion",
    "StreamDelta",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    # errors
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

# ---------------------------------------------------------------- moved to magray-router

#: Deprecated name → (module, name) it moved to after 0.1.0; removed one release later.
_MOVED: dict[str, tuple[str, str]] = {
    **{
        name: ("magray.router.rules", name)
        for name in (
            "ActionPlanner",
            "AgentCoordinator",
            "EvalCase",
            "EvalReport",
            "Extraction",
            "Intent",
            "IntentAnalyzer",
            "IntentKind",
            "LLMIntentAnalyzer",
            "LLMParameterExtractor",
            "LLMPlanner",
            "LLMToolSelector",
            "ParameterExtractor",
            "RuleIntentAnalyzer",
            "RuleParameterExtractor",
            "RulePlanner",
            "RuleToolSelector",
            "ToolSelection",
            "ToolSelector",
            "ToolSpec",
            "TraceEntry",
            "evaluate",
            "load_cases",
            "split_steps",
            "tool_specs",
            "validate_arguments",
        )
    },
    "Decision": ("magray.router.rules", "AgentDecision"),
    "Route": ("magray.router.rules", "AgentRoute"),
    "Plan": ("magray.router", "Plan"),
    "PlanStep": ("magray.router", "PlanStep"),
    "PlanValidationError": ("magray.router", "PlanInvalidError"),
}


def __getattr__(name: str) -> Any:
    """Resolve a name that moved to magray-router, with a ``DeprecationWarning``.

    magray-llm never imports magray-router (lower packages never import higher ones;
    import-linter enforces it for every static import). This lookup runs only when
    old code asks for a moved name, and imports the new home by name at that moment.
    """
    if name not in _MOVED:
        raise AttributeError(f"module 'magray.llm' has no attribute {name!r}")
    module, new = _MOVED[name]
    warnings.warn(
        f"magray.llm.{name} moved to {module}.{new} (routing lives in magray-router); "
        "the old name is removed in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    try:
        home = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"magray.llm.{name} moved to {module}.{new}, and magray-router is not installed: "
            'pip install "magray-router"'
        ) from exc
    return getattr(home, new)
