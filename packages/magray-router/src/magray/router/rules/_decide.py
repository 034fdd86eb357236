"""The rule-based routing decision and plan: where a routing fix goes.

:func:`decide` runs the general agents (:class:`AgentCoordinator` without a model:
intent, tool selection, parameter extraction), then the rules that know the
router's tools (:func:`refine`); a request of several clauses becomes a plan made
by :func:`plan`. :func:`llm_plan` and :func:`llm_intent` are the model-backed
counterparts the router uses when a model is configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from magray.router._types import Decision, Plan, PlanStep, Route
from magray.router.errors import PlanInvalidError
from magray.router.rules._chain import chain, clauses, required
from magray.router.rules._coordinator import AgentCoordinator, TraceEntry
from magray.router.rules._intent import LLMIntentAnalyzer
from magray.router.rules._planner import LLMPlanner, RulePlanner
from magray.router.rules._refine import refine

if TYPE_CHECKING:
    from magray.llm import LLMClient

__all__ = ["decide", "llm_intent", "llm_plan", "plan"]

Tools = Sequence[Mapping[str, Any]]

_INTENT_OF_TOOL = {"file": "file", "git": "git", "memory": "memory", "todo": "todo", "web": "web"}


def _intent_of(tool: str) -> str:
    prefix = tool.split("_", 1)[0]
    return "shell" if tool == "shell_run" else _INTENT_OF_TOOL.get(prefix, "tool")


def _enabled(tools: Tools) -> set[str]:
    return {str(t.get("function", t)["name"]) for t in tools}


def plan(goal: str, tools: Tools) -> Plan:
    """The rule-based plan: one step per clause, each after the one before.

    Each clause gets its tool and arguments from :class:`RulePlanner`, settled by
    :func:`refine`; a clause that says so uses the previous step's output ("... and
    make a task list" → ``todo_add_many(titles="{{s1.items}}")``, see :func:`chain`).

    Raises:
        PlanInvalidError: The clauses do not make a valid DAG.
    """
    enabled = _enabled(tools)
    needs = required(tools)
    planner = RulePlanner()
    steps: list[PlanStep] = []
    unplanned: list[str] = []
    for clause in clauses(goal, None):
        single = planner.plan(clause, tools)
        first = single.steps[0] if single.steps else None
        tool, args, rule = refine(
            clause, first.tool if first else None, first.args if first else {}, enabled
        )
        if steps:
            tool, args, chained = chain(clause, tool, args, steps[-1].id, enabled)
            rule = chained or rule
        if tool is None:
            unplanned.append(clause)
            continue
        if first is not None and tool == first.tool and rule is None:
            missing = list(first.missing)
        else:
            missing = [r for r in needs.get(tool, []) if r not in args]
        steps.append(
            PlanStep(
                id=f"s{len(steps) + 1}",
                title=clause[:200],
                tool=tool,
                args=args,
                depends_on=[steps[-1].id] if steps else [],
                missing=missing,
            )
        )
    return Plan(goal=goal, steps=steps, unplanned=unplanned, source="rules")


def decide(text: str, tools: Tools) -> Decision:
    """The rule-based routing decision for ``text`` over the enabled ``tools``.

    The general agents decide first; :func:`refine` settles the tool and its
    arguments where a rule knows better (the decision's ``signals`` then name the
    rule); a request of several clauses ("read README.md and remember its first
    line") becomes a plan.
    """
    decided = AgentCoordinator().decide(text, tools)
    intent = decided.intent
    kind = intent.kind.value
    route = {"chat": Route.ANSWER, "tool": Route.TOOL, "plan": Route.PLAN}[decided.route]
    tool = decided.selection.tool if decided.selection is not None else None
    extraction = decided.extraction
    args = dict(extraction.arguments) if extraction is not None else {}
    missing = tuple(extraction.missing) if extraction is not None else ()
    question = extraction.question if extraction is not None else None
    confidence = float(intent.confidence)
    signals = tuple(intent.signals)
    ruled_plan = None
    if route is not Route.PLAN:
        picked, args, rule = refine(
            text, tool if route is Route.TOOL else None, args, _enabled(tools)
        )
        if rule is not None and picked is not None:
            if picked != tool or route is not Route.TOOL:
                question = None
            route, tool, kind = Route.TOOL, picked, _intent_of(picked)
            missing = tuple(r for r in required(tools).get(picked, []) if r not in args)
            confidence = max(confidence, 0.9)
            signals = (*signals, f"router rule: {rule}")
            decided.trace.append(TraceEntry("tool rules", "rules", f"{picked} {args}", [rule]))
    if route is Route.PLAN or len(clauses(text, tool)) > 1:
        ruled = plan(text, tools)
        if len(ruled.steps) > 1 or route is Route.PLAN:
            route, kind, ruled_plan = Route.PLAN, "plan", ruled
            signals = (*signals, f"{len(ruled.steps)} steps")
            steps = [f"{s.id}: {s.tool} {s.args} after {s.depends_on or '-'}" for s in ruled.steps]
            decided.trace.append(
                TraceEntry("plan rules", "rules", f"{len(ruled.steps)} step(s)", steps)
            )
    is_tool = route is Route.TOOL
    return Decision(
        route=route,
        intent=kind,
        confidence=confidence,
        source="rules",
        signals=signals,
        tool=tool if is_tool else None,
        args=args if is_tool else None,
        missing=missing if is_tool else (),
        question=question if is_tool and missing else None,
        plan=ruled_plan,
        explain=decided.explain(),
    )


def llm_plan(client: LLMClient, goal: str, tools: Tools) -> Plan:
    """The model's plan (:class:`LLMPlanner`), validated as a DAG over ``tools``.

    Raises:
        PlanInvalidError: The model's plan is not a valid DAG over the tools.
        LLMError: The model chain failed (after its retries and fallbacks).
    """
    planner = LLMPlanner(client, raise_errors=True, fallback_on_invalid=False)
    try:
        return planner.plan(goal, tools)
    except PlanInvalidError as exc:
        problems = list(exc.details.get("problems") or [exc.message])
        raise PlanInvalidError(
            f"the model's plan is invalid: {'; '.join(problems)}",
            hint="rephrase the task, or see `magray tools list` for what tools exist",
            details={"problems": problems},
        ) from exc


def llm_intent(client: LLMClient, text: str) -> tuple[str, float, tuple[str, ...], str]:
    """The LLM intent analyzer's verdict: (kind, confidence, signals, source).

    Falls back to the rules when the model fails (the source then says so).
    """
    intent = LLMIntentAnalyzer(client).analyze(text)
    return intent.kind.value, float(intent.confidence), tuple(intent.signals), str(intent.source)
