"""Value types of the router: routes, decisions, events, plans and replies."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = [
    "Decision",
    "Event",
    "EventKind",
    "EventSink",
    "Passage",
    "Plan",
    "PlanReport",
    "PlanStep",
    "Reply",
    "Route",
    "StepResult",
    "ToolOutcome",
]


class Route(StrEnum):
    """Where a request goes."""

    ANSWER = "answer"  # chat with the LLM (or memory passages without one)
    TOOL = "tool"  # one tool call (the LLM may chain a few)
    PLAN = "plan"  # several steps as a todo DAG
    MEMORY = "memory"  # memory search
    TODO = "todo"  # the task list


@dataclass(frozen=True)
class Decision:
    """How a request was routed and why.

    Attributes:
        route: The chosen route.
        intent: The intent label (chat, file, git, web, shell, memory, todo, plan).
        confidence: 0–1.
        source: ``"rules"``, ``"llm"`` or ``"forced"`` (the caller chose the route).
        signals: What matched (keywords, patterns) for ``--explain``.
        tool: The tool the rules picked for the tool route, if any.
        args: Its extracted arguments.
        missing: Required arguments the rules could not find.
        question: What to ask the user for the missing arguments.
        plan: The rule-based plan when the route is ``plan``.
        explain: The agents' decision trace, for ``--explain``.
    """

    route: Route
    intent: str
    confidence: float
    source: str
    signals: tuple[str, ...] = ()
    tool: str | None = None
    args: dict[str, Any] | None = None
    missing: tuple[str, ...] = ()
    question: str | None = None
    plan: Plan | None = None
    explain: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route.value,
            "intent": self.intent,
            "confidence": round(self.confidence, 3),
            "source": self.source,
            "signals": list(self.signals),
            "tool": self.tool,
            "args": self.args,
            "missing": list(self.missing),
            "question": self.question,
            "explain": self.explain,
        }


@dataclass(frozen=True)
class Passage:
    """A memory record used as context; cited as ``[mem:<id>]``."""

    id: str
    layer: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"[mem:{self.id}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "layer": self.layer,
            "score": round(self.score, 4),
            "text": self.text,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class ToolOutcome:
    """One tool call made while answering."""

    tool: str
    args: dict[str, Any]
    ok: bool
    content: str
    error: dict[str, Any] | None = None
    duration_s: float = 0.0
    truncated: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "args": self.args,
            "ok": self.ok,
            "content": self.content,
            "error": self.error,
            "duration_s": round(self.duration_s, 4),
            "truncated": self.truncated,
            "data": self.data,
        }


class PlanStep(BaseModel):
    """One step of a plan: a tool call that may depend on earlier steps.

    An argument may use the output of a step it depends on: ``"{{s1.items}}"``
    (see :data:`magray.router.STEP_OUTPUT_FIELDS` for the fields). A model's plan
    names the step's title ``description`` (the planning prompt's word); both
    names are accepted.
    """

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(description="Short unique step id, e.g. 's1'.")
    title: str = Field(
        default="",
        validation_alias=AliasChoices("description", "title"),
        description="What the step does, in a few words.",
    )
    tool: str = Field(description="Name of the tool to call.")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="The tool's arguments; '{{s1.output}}' stands for the output of step s1 "
        "(a dependency); fields: output, first_line, lines, items, count.",
    )
    depends_on: list[str] = Field(
        default_factory=list, description="Ids of steps that must finish first."
    )
    missing: list[str] = Field(
        default_factory=list, description="Required arguments nobody could fill in."
    )

    def uses(self, step_ids: list[str] | None = None) -> list[str]:
        """The outputs this step's arguments refer to, e.g. ``["s1.items"]``."""
        from magray.router._refs import find_refs

        return sorted({f"{r.step}.{r.field}" for r in find_refs(self.args, step_ids or ())})


class Plan(BaseModel):
    """A goal broken into tool steps that form a DAG (every planner makes this one model)."""

    goal: str = Field(description="The user's goal.")
    steps: list[PlanStep] = Field(
        default_factory=list, description="The steps, in any order; depends_on links them."
    )
    unplanned: list[str] = Field(
        default_factory=list, description="Parts of the goal no tool covers."
    )
    source: str = Field(default="rules", description="Who planned: llm, rules, ...")

    def dag_problems(self, tool_names: Iterable[str] | None = None) -> list[str]:
        """Why the steps are not a DAG over ``tool_names``: repeated ids, unknown tools,
        dependencies on itself or on missing steps, a cycle (empty when they are one)."""
        problems: list[str] = []
        ids = [s.id for s in self.steps]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            problems.append(f"step ids repeat: {', '.join(repeated)}")
        known = set(tool_names) if tool_names is not None else None
        for step in self.steps:
            if known is not None and step.tool not in known:
                problems.append(f"step {step.id} uses unknown tool {step.tool!r}")
            for dep in step.depends_on:
                if dep == step.id:
                    problems.append(f"step {step.id} depends on itself")
                elif dep not in ids:
                    problems.append(f"step {step.id} depends on unknown step {dep!r}")
        if not problems:
            cycle = self._cycle()
            if cycle:
                problems.append(f"dependency cycle among steps {', '.join(sorted(cycle))}")
        return problems

    def validate_dag(self, tool_names: Iterable[str] | None = None) -> None:
        """Check the plan is executable as a DAG.

        Raises:
            PlanInvalidError: See :meth:`dag_problems`; ``details["problems"]`` lists them.
        """
        problems = self.dag_problems(tool_names)
        if problems:
            from magray.router.errors import PlanInvalidError

            raise PlanInvalidError(
                f"invalid plan: {problems[0]}"
                + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                hint="fix the plan's step ids, tools and depends_on so they form a DAG",
                details={"problems": problems},
            )

    def _cycle(self) -> set[str]:
        """Ids left over by Kahn's algorithm (empty when acyclic)."""
        indegree = {s.id: 0 for s in self.steps}
        children: dict[str, list[str]] = {s.id: [] for s in self.steps}
        for step in self.steps:
            for dep in set(step.depends_on):
                if dep in children:
                    children[dep].append(step.id)
                    indegree[step.id] += 1
        queue = deque(i for i, d in indegree.items() if d == 0)
        done = 0
        while queue:
            node = queue.popleft()
            done += 1
            for child in children[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    queue.append(child)
        return {i for i, d in indegree.items() if d > 0} if done < len(indegree) else set()

    def order(self) -> list[PlanStep]:
        """Steps in a dependency-respecting order (stable: plan order among ready steps).

        Raises:
            PlanInvalidError: The plan is not a DAG.
        """
        self.validate_dag()
        placed: set[str] = set()
        out: list[PlanStep] = []
        while len(out) < len(self.steps):
            for step in self.steps:
                if step.id not in placed and all(d in placed for d in step.depends_on):
                    out.append(step)
                    placed.add(step.id)
                    break
        return out


@dataclass
class StepResult:
    """What happened to one step."""

    step: str
    title: str
    tool: str
    task_id: int | None
    status: str
    attempts: int = 0
    content: str | None = None
    error: str | None = None
    args: dict[str, Any] | None = None  # as run: references replaced by earlier outputs

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "title": self.title,
            "tool": self.tool,
            "task_id": self.task_id,
            "status": self.status,
            "attempts": self.attempts,
            "content": self.content,
            "error": self.error,
            "args": self.args,
        }


@dataclass
class PlanReport:
    """A planned (and maybe executed) task.

    Attributes:
        plan: The plan that ran last (after a replan, the new one).
        planner: ``"llm"`` or ``"rules"``.
        executed: False for ``--dry-run``.
        steps: Results of the last run's steps.
        replans: How many times the plan was remade after failures.
        earlier: Step results of runs that a replan replaced.
        problems: Why the plan cannot run (a dry run reports them instead of raising).
        ok: Every step of the last run is done.
    """

    plan: Plan
    planner: str
    executed: bool = False
    steps: list[StepResult] = field(default_factory=list)
    replans: int = 0
    earlier: list[StepResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.executed and bool(self.steps) and all(s.status == "done" for s in self.steps)

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps if s.status != "done"]

    def raise_for_problems(self) -> None:
        """Raise :class:`~magray.router.PlanInvalidError` when the plan cannot run.

        ``magray smart --dry-run`` shows the plan, then calls this so that a plan the
        real run would refuse exits 2 there too.
        """
        if not self.problems:
            return
        from magray.router.errors import PlanInvalidError

        raise PlanInvalidError(
            "the plan cannot run: " + "; ".join(self.problems),
            hint="rephrase the task with the missing details (paths, patterns); "
            "`magray smart --dry-run TASK` shows a plan without running it",
            details={"plan": self.plan.model_dump(mode="json"), "problems": self.problems},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.model_dump(mode="json"),
            "planner": self.planner,
            "executed": self.executed,
            "ok": self.ok,
            "steps": [s.to_dict() for s in self.steps],
            "replans": self.replans,
            "earlier": [s.to_dict() for s in self.earlier],
            "problems": self.problems,
            "elapsed_s": round(self.elapsed_s, 3),
        }


class EventKind(StrEnum):
    """What an :class:`Event` reports."""

    ROUTE = "route"  # the decision is made (data: Decision.to_dict())
    TOKEN = "token"  # streamed answer text
    TOOL_START = "tool_start"  # data: tool, args
    TOOL_END = "tool_end"  # data: ToolOutcome.to_dict()
    PLAN = "plan"  # data: Plan
    STEP = "step"  # a plan step changed status (data: step, status, ...)
    RETRY = "retry"  # recovery: retry, fallback or replan (text says which)
    NOTICE = "notice"  # something the user should know (text)


@dataclass(frozen=True)
class Event:
    """A progress event sent to the caller while a request runs."""

    kind: EventKind
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]


@dataclass
class Reply:
    """The router's answer to one request.

    Attributes:
        request: What was asked.
        text: The answer (plain text or markdown).
        route: Where the request went.
        decision: Why.
        mode: ``"llm"`` or ``"no-llm"``.
        model: The model that answered (a fallback if the primary failed).
        context: Memory passages given as context.
        citations: Ids of passages the answer cites.
        tools: Tool calls made.
        plan: The plan report of the plan route.
        memory_id: Id of the stored exchange (``None`` with memory off).
        usage: Token counts and cost of the LLM calls.
        notice: A note for the user (e.g. how to configure an LLM).
        elapsed_s: Wall time.
    """

    request: str
    text: str
    route: Route
    decision: Decision
    mode: str
    model: str | None = None
    context: list[Passage] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    tools: list[ToolOutcome] = field(default_factory=list)
    plan: PlanReport | None = None
    memory_id: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    notice: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """False when a plan step or (without a model) the tool call failed."""
        if self.plan is not None and self.plan.executed:
            return self.plan.ok
        if self.mode == "llm":  # the model saw any failed call and answered anyway
            return True
        return all(t.ok for t in self.tools)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "text": self.text,
            "route": self.route.value,
            "decision": self.decision.to_dict(),
            "mode": self.mode,
            "model": self.model,
            "context": [p.to_dict() for p in self.context],
            "citations": self.citations,
            "tools": [t.to_dict() for t in self.tools],
            "plan": self.plan.to_dict() if self.plan else None,
            "memory_id": self.memory_id,
            "usage": self.usage,
            "notice": self.notice,
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 3),
        }
