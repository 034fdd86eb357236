"""The coordinator: intent → (tool + arguments | plan | chat), with every decision traced.

``AgentCoordinator.decide`` chains the four agents and returns a
:class:`AgentDecision` whose ``trace`` records, for each agent that ran, which
implementation answered (rules, LLM, or rules after an LLM failure), what it
decided, why, and how long it took. ``AgentDecision.explain()`` renders that trace
for ``--explain`` output. The coordinator decides; running tools is the
router's job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from magray.router._types import Plan
from magray.router.rules._intent import (
    Intent,
    IntentAnalyzer,
    IntentKind,
    LLMIntentAnalyzer,
    RuleIntentAnalyzer,
)
from magray.router.rules._params import (
    Extraction,
    LLMParameterExtractor,
    ParameterExtractor,
    RuleParameterExtractor,
)
from magray.router.rules._planner import ActionPlanner, LLMPlanner, RulePlanner
from magray.router.rules._schema import tool_specs
from magray.router.rules._select import (
    LLMToolSelector,
    RuleToolSelector,
    ToolSelection,
    ToolSelector,
)

if TYPE_CHECKING:
    from magray.llm import LLMClient

__all__ = ["AgentCoordinator", "AgentDecision", "AgentRoute", "TraceEntry"]

AgentRoute = Literal["chat", "tool", "plan"]


@dataclass(frozen=True)
class TraceEntry:
    """One agent's decision."""

    agent: str
    source: str
    summary: str
    reasons: list[str] = field(default_factory=list)
    duration_ms: float = 0.0


@dataclass
class AgentDecision:
    """What to do with a request, and how the agents got there.

    Attributes:
        request: The user's text.
        route: ``"chat"`` (answer directly), ``"tool"`` (one call) or ``"plan"``.
        intent: The analysed intent.
        selection: The tool choice (route ``tool``, or a tool-less fallback to chat).
        extraction: The arguments for the chosen tool (may list missing ones).
        plan: The plan (route ``plan``).
        trace: Each agent's decision, in order.
    """

    request: str
    route: AgentRoute
    intent: Intent
    selection: ToolSelection | None = None
    extraction: Extraction | None = None
    plan: Plan | None = None
    trace: list[TraceEntry] = field(default_factory=list)

    @property
    def needs_input(self) -> bool:
        """A tool was chosen but required arguments are missing (ask the user)."""
        if self.extraction is not None and self.extraction.missing:
            return True
        return self.plan is not None and any(s.missing for s in self.plan.steps[:1])

    def explain(self) -> str:
        """A human-readable account of every decision (for ``--explain``)."""
        lines = [f"request: {self.request}", f"route: {self.route}"]
        for entry in self.trace:
            lines.append(
                f"- {entry.agent} [{entry.source}, {entry.duration_ms:.1f} ms]: {entry.summary}"
            )
            lines.extend(f"    · {reason}" for reason in entry.reasons)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable view."""
        from dataclasses import asdict

        return {
            "request": self.request,
            "route": self.route,
            "intent": {
                "kind": self.intent.kind.value,
                "confidence": self.intent.confidence,
                "signals": self.intent.signals,
                "source": self.intent.source,
            },
            "selection": asdict(self.selection) if self.selection else None,
            "extraction": asdict(self.extraction) if self.extraction else None,
            "plan": self.plan.model_dump(mode="json") if self.plan else None,
            "trace": [asdict(entry) for entry in self.trace],
        }


class AgentCoordinator:
    """Chains intent analysis, tool selection, parameter extraction and planning.

    Args:
        analyzer, selector, extractor, planner: The agents (default: rule-based).
        min_tool_confidence: Below this selection confidence the request goes
            to chat instead of a tool.
        clock: Monotonic seconds, for the trace timings.

    Example::

        coordinator = AgentCoordinator()             # rules only, no LLM needed
        decision = coordinator.decide("show the last 3 commits", tools)
        decision.route, decision.selection.tool, decision.extraction.arguments
        print(decision.explain())
    """

    def __init__(
        self,
        *,
        analyzer: IntentAnalyzer | None = None,
        selector: ToolSelector | None = None,
        extractor: ParameterExtractor | None = None,
        planner: ActionPlanner | None = None,
        min_tool_confidence: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.analyzer = analyzer or RuleIntentAnalyzer()
        self.selector = selector or RuleToolSelector()
        self.extractor = extractor or RuleParameterExtractor()
        self.planner = planner or RulePlanner()
        self.min_tool_confidence = min_tool_confidence
        self._clock = clock

    @classmethod
    def with_llm(cls, client: LLMClient, *, fast_path: float | None = 0.85) -> AgentCoordinator:
        """LLM agents (falling back to rules on errors); confident rule intents skip the model."""
        return cls(
            analyzer=LLMIntentAnalyzer(client, fast_path=fast_path),
            selector=LLMToolSelector(client),
            extractor=LLMParameterExtractor(client),
            planner=LLMPlanner(client),
        )

    def _timed(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        start = self._clock()
        result = fn()
        return result, (self._clock() - start) * 1000

    def decide(self, request: str, tools: Sequence[Mapping[str, Any]]) -> AgentDecision:
        """Decide how to handle ``request`` given the available ``tools`` (OpenAI-style schemas)."""
        trace: list[TraceEntry] = []
        intent, ms = self._timed(lambda: self.analyzer.analyze(request))
        trace.append(
            TraceEntry(
                "intent",
                intent.source,
                f"{intent.kind.value} (confidence {intent.confidence:.2f})",
                list(intent.signals),
                ms,
            )
        )
        if intent.kind == IntentKind.CHAT or not tools:
            why = "no tools available" if tools is not None and not tools else "conversation"
            return AgentDecision(
                request,
                "chat",
                intent,
                trace=[*trace, TraceEntry("route", "rules", f"chat: {why}")],
            )
        if intent.kind == IntentKind.PLAN:
            plan, ms = self._timed(lambda: self.planner.plan(request, tools))
            reasons = [f"{s.id}: {s.tool} {s.args} after {s.depends_on or '-'}" for s in plan.steps]
            reasons += [f"not covered by any tool: {u}" for u in plan.unplanned]
            trace.append(
                TraceEntry("planner", plan.source, f"{len(plan.steps)} step(s)", reasons, ms)
            )
            if plan.steps:
                return AgentDecision(request, "plan", intent, plan=plan, trace=trace)
            trace.append(TraceEntry("route", "rules", "chat: the plan has no steps"))
            return AgentDecision(request, "chat", intent, plan=plan, trace=trace)
        selection, ms = self._timed(lambda: self.selector.select(request, tools, intent=intent))
        trace.append(
            TraceEntry(
                "tool selection",
                selection.source,
                f"{selection.tool or 'no tool'} (confidence {selection.confidence:.2f})",
                list(selection.reasons),
                ms,
            )
        )
        if selection.tool is None or selection.confidence < self.min_tool_confidence:
            trace.append(TraceEntry("route", "rules", "chat: no tool fits"))
            return AgentDecision(request, "chat", intent, selection=selection, trace=trace)
        schema = next(
            t for t, s in zip(tools, tool_specs(tools), strict=True) if s.name == selection.tool
        )
        extraction, ms = self._timed(lambda: self.extractor.extract(request, schema))
        summary = f"{extraction.arguments}" + (
            f", missing {extraction.missing}" if extraction.missing else ""
        )
        reasons = list(extraction.errors) + ([extraction.question] if extraction.question else [])
        trace.append(TraceEntry("parameters", extraction.source, summary, reasons, ms))
        return AgentDecision(
            request, "tool", intent, selection=selection, extraction=extraction, trace=trace
        )
