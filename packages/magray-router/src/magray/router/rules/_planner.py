"""Action planning: a goal → a :class:`~magray.router.Plan` of tool steps that forms a DAG.

:class:`RulePlanner` splits the goal into clauses at sequencing words ("then",
"after that", "finally", numbered lists, "; ") and plans one step per clause
with the rule-based selector and extractor; each step depends on the one before.
:class:`LLMPlanner` asks a model for the steps. Every plan, whoever made it, is
checked by :meth:`Plan.validate_dag` (unique ids, known tools, existing
dependencies, no cycles).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from magray.common.errors import LLMError
from magray.router._types import Plan, PlanStep
from magray.router.errors import PlanInvalidError
from magray.router.rules._ask import ask_model, fell_back
from magray.router.rules._intent import Intent, IntentKind, RuleIntentAnalyzer
from magray.router.rules._params import RuleParameterExtractor
from magray.router.rules._schema import tool_specs, validate_arguments
from magray.router.rules._select import RuleToolSelector

if TYPE_CHECKING:
    from magray.llm import LLMClient

__all__ = ["ActionPlanner", "LLMPlanner", "RulePlanner", "split_steps"]


class ActionPlanner(Protocol):
    """Anything that turns a goal into a :class:`Plan`."""

    def plan(self, goal: str, tools: Sequence[Mapping[str, Any]]) -> Plan: ...


_SEQUENCE = re.compile(
    r"\s*(?:\n\s*(?:\d+[.)]|[-*])\s*|^\s*(?:\d+[.)]|[-*])\s*|;\s*|"
    r",?\s*\b(?:and then|then|after that|afterwards|and finally|finally|next|followed by|"
    r"once (?:that|it)(?:'s| is) done)\b[,:]?\s*)",
    re.IGNORECASE,
)
_AND_VERB = re.compile(
    r"\s+and\s+(?=(?:run|commit|read|write|save|search|push|pull|list|show|create|fetch|download|add|"
    r"remember|delete|open|check|install|grep|find|mark|remind|summari[sz]e|execute|look up)\b)",
    re.IGNORECASE,
)


def split_steps(goal: str) -> list[str]:
    """Clauses of a goal in order: split at sequencing words, list items and "and <verb>"."""
    text = re.sub(r"^\s*(?:first(?:ly)?|to start)[,:]?\s+", "", goal.strip(), flags=re.IGNORECASE)
    parts: list[str] = []
    for chunk in _SEQUENCE.split(text):
        for piece in _AND_VERB.split(chunk or ""):
            clause = re.sub(
                r"^\s*(?:first(?:ly)?|and)\s+", "", piece.strip(" ,.;"), flags=re.IGNORECASE
            )
            if clause:
                parts.append(clause)
    return parts


class RulePlanner:
    """Deterministic planning: one step per clause, chained in order.

    Clauses for which no tool scores high enough go to ``Plan.unplanned``; a
    step whose required arguments are unknown lists them in ``missing`` (a later
    step's input often is an earlier step's output, which only exists at run time).
    """

    def __init__(
        self,
        *,
        analyzer: RuleIntentAnalyzer | None = None,
        selector: RuleToolSelector | None = None,
        extractor: RuleParameterExtractor | None = None,
    ) -> None:
        self.analyzer = analyzer or RuleIntentAnalyzer()
        self.selector = selector or RuleToolSelector(analyzer=self.analyzer)
        self.extractor = extractor or RuleParameterExtractor()

    def plan(self, goal: str, tools: Sequence[Mapping[str, Any]]) -> Plan:
        by_name = {spec.name: tool for spec, tool in zip(tool_specs(tools), tools, strict=True)}
        steps: list[PlanStep] = []
        unplanned: list[str] = []
        for clause in split_steps(goal):
            intent = self.analyzer.analyze(clause)
            if intent.kind == IntentKind.PLAN:  # a clause is one action: take its best area
                area = max(
                    (k for k in intent.scores if k not in ("plan", "chat")),
                    key=lambda k: intent.scores[k],
                    default="chat",
                )
                intent = Intent(IntentKind(area), intent.confidence, intent.signals, intent.source)
            selection = self.selector.select(clause, tools, intent=intent)
            if selection.tool is None:
                unplanned.append(clause)
                continue
            extraction = self.extractor.extract(clause, by_name[selection.tool])
            step_id = f"s{len(steps) + 1}"
            steps.append(
                PlanStep(
                    id=step_id,
                    tool=selection.tool,
                    args=extraction.arguments,
                    depends_on=[steps[-1].id] if steps else [],
                    title=clause[:200],
                    missing=extraction.missing,
                )
            )
        plan = Plan(goal=goal, steps=steps, unplanned=unplanned, source="rules")
        plan.validate_dag(by_name)
        return plan


class PlanReply(BaseModel):
    """The model's plan."""

    steps: list[PlanStep]


class LLMPlanner:
    """Planning by a language model; the plan is validated as a DAG over the real tools.

    Arguments the schema rejects are dropped and reported as missing. An
    invalid plan (unknown tool, cycle, ...) raises :class:`PlanInvalidError`
    (or falls back to the rules when ``fallback_on_invalid``); a failed call
    falls back to :class:`RulePlanner` unless ``raise_errors``.
    """

    def __init__(
        self,
        client: LLMClient,
        *,
        fallback: ActionPlanner | None = None,
        raise_errors: bool = False,
        fallback_on_invalid: bool = True,
        prompt_version: int | None = None,
        max_tokens: int = 1024,
    ) -> None:
        self.client = client
        self.fallback = fallback if fallback is not None else RulePlanner()
        self.raise_errors = raise_errors
        self.fallback_on_invalid = fallback_on_invalid
        self.prompt_version = prompt_version
        # Caps a runaway reply (a JSON grammar allows endless whitespace).
        self.max_tokens = max_tokens

    def plan(self, goal: str, tools: Sequence[Mapping[str, Any]]) -> Plan:
        specs = tool_specs(tools)
        listing = "\n".join(
            f"- {s.name}: {s.description} {json.dumps(s.parameters, separators=(',', ':'))}"
            for s in specs
        )
        reply = ask_model(self, "plan", PlanReply, goal=goal, tools=listing)
        if isinstance(reply, LLMError):
            return self.fallback.plan(goal, tools).model_copy(update={"source": fell_back(reply)})
        by_name = {s.name: s for s in specs}
        steps = []
        for proposed in reply.steps:
            spec = by_name.get(proposed.tool)
            step = proposed
            if spec is not None:
                args, missing, _ = validate_arguments(proposed.args, spec)
                step = proposed.model_copy(update={"args": args, "missing": missing})
            steps.append(step)
        plan = Plan(goal=goal, steps=steps, source="llm")
        try:
            plan.validate_dag(by_name)
        except PlanInvalidError:
            if not self.fallback_on_invalid or self.raise_errors:
                raise
            result = self.fallback.plan(goal, tools)
            return result.model_copy(update={"source": "rules (llm plan was invalid)"})
        return plan
