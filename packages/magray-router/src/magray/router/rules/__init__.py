"""Routing rules and agents: how a request becomes a tool call, a plan or a chat.

Everything that decides a route lives here, so a routing fix has one place to go:

- the general agents, each rule-based with an LLM-backed twin: intent
  (:class:`RuleIntentAnalyzer`, :class:`LLMIntentAnalyzer`), tool selection
  (:class:`RuleToolSelector`, :class:`LLMToolSelector`), parameter extraction
  (:class:`RuleParameterExtractor`, :class:`LLMParameterExtractor`) and planning
  (:class:`RulePlanner`, :class:`LLMPlanner`), chained by :class:`AgentCoordinator`;
- the rules that know magray's concrete tools (:func:`refine`, :func:`chain`,
  :func:`clauses`);
- :func:`decide` and :func:`plan`, the rule-based decision and plan the
  :class:`~magray.router.Router` uses, and :func:`llm_plan` / :func:`llm_intent`;
- :func:`evaluate` over a JSON-lines evaluation set (``scripts/bench/intent.py``).

The LLM agents' prompts are magray-llm's (:func:`magray.llm.load_prompt`); every
plan is a :class:`magray.router.Plan` and every invalid one a
:class:`magray.router.PlanInvalidError`.

Example::

    from magray.router.rules import decide

    decision = decide("show the last 3 commits", tools)   # OpenAI-style tool schemas
    decision.route, decision.tool, decision.args          # Route.TOOL, "git_log", {"n": 3}
"""

from __future__ import annotations

from magray.router.rules._chain import chain, clauses, required
from magray.router.rules._coordinator import (
    AgentCoordinator,
    AgentDecision,
    AgentRoute,
    TraceEntry,
)
from magray.router.rules._decide import decide, llm_intent, llm_plan, plan
from magray.router.rules._eval import EvalCase, EvalReport, evaluate, load_cases
from magray.router.rules._intent import (
    Intent,
    IntentAnalyzer,
    IntentKind,
    LLMIntentAnalyzer,
    RuleIntentAnalyzer,
)
from magray.router.rules._match import path_in
from magray.router.rules._params import (
    Extraction,
    LLMParameterExtractor,
    ParameterExtractor,
    RuleParameterExtractor,
)
from magray.router.rules._planner import ActionPlanner, LLMPlanner, RulePlanner, split_steps
from magray.router.rules._refine import refine
from magray.router.rules._schema import ToolSpec, tool_specs, validate_arguments
from magray.router.rules._select import (
    LLMToolSelector,
    RuleToolSelector,
    ToolSelection,
    ToolSelector,
)

__all__ = [
    # the router's decision
    "decide",
    "plan",
    "llm_intent",
    "llm_plan",
    # rules that know the tools
    "chain",
    "clauses",
    "path_in",
    "refine",
    "required",
    # agents
    "ActionPlanner",
    "AgentCoordinator",
    "AgentDecision",
    "AgentRoute",
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
    "split_steps",
    "tool_specs",
    "validate_arguments",
    # evaluation
    "EvalCase",
    "EvalReport",
    "evaluate",
    "load_cases",
]
