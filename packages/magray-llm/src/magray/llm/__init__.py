"""magray-llm: one client for every LLM provider (over litellm), structured output, and agents.

Example::

    from magray.llm import LLMClient

    client = LLMClient("openai/gpt-4o-mini")
    reply = client.complete("Say hi in one word")
    print(reply.text, reply.usage.total_tokens)

litellm is imported on the first call, never by ``import magray.llm``.
"""

from __future__ import annotations

from importlib.metadata import version as _version

from magray.llm._backend import warm_up
from magray.llm._client import AsyncCompletionStream, CompletionStream, LLMClient
from magray.llm._config import ModelConfig, RetryPolicy
from magray.llm._coordinator import AgentCoordinator, Decision, Route, TraceEntry
from magray.llm._eval import EvalCase, EvalReport, evaluate, load_cases
from magray.llm._intent import (
    Intent,
    IntentAnalyzer,
    IntentKind,
    LLMIntentAnalyzer,
    RuleIntentAnalyzer,
)
from magray.llm._models import ModelInfo, describe_models
from magray.llm._params import (
    Extraction,
    LLMParameterExtractor,
    ParameterExtractor,
    RuleParameterExtractor,
    validate_arguments,
)
from magray.llm._plan import ActionPlanner, LLMPlanner, Plan, PlanStep, RulePlanner, split_steps
from magray.llm._prompts import Prompt, available_prompts, load_prompt
from magray.llm._select import (
    LLMToolSelector,
    RuleToolSelector,
    ToolSelection,
    ToolSelector,
    ToolSpec,
    tool_specs,
)
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
    PlanValidationError,
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
    # agents
    "ActionPlanner",
    "AgentCoordinator",
    "Decision",
    "Extraction",
    "Intent",
    "IntentAnalyzer",
    "IntentKind",
    "LLMIntentAnalyzer",
    "LLMParameterExtractor",
    "LLMPlanner",
    "LLMToolSelector",
    "ParameterExtractor",
    "Plan",
    "PlanStep",
    "Route",
    "RuleIntentAnalyzer",
    "RuleParameterExtractor",
    "RulePlanner",
    "RuleToolSelector",
    "ToolSelection",
    "ToolSelector",
    "ToolSpec",
    "TraceEntry",
    "split_steps",
    "tool_specs",
    "validate_arguments",
    # prompts
    "Prompt",
    "available_prompts",
    "load_prompt",
    # evaluation
    "EvalCase",
    "EvalReport",
    "evaluate",
    "load_cases",
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
    "PlanValidationError",
    "StructuredOutputError",
]
