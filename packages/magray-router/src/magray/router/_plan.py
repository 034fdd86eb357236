"""Smart tasks: plan → todo DAG → parallel tool steps → summary, with recovery.

Recovery, in order:

1. each step is retried with exponential backoff (``router.step_attempts`` attempts);
   errors a retry cannot fix (bad arguments, policy refusals, missing files) fail at once;
2. every LLM call (planning, summary) goes through the model chain: retries on
   retriable errors, then the fallback models (``llm.fallbacks``), through litellm;
   when the whole chain fails while planning, the rule-based planner takes over;
3. an invalid plan from the model is sent back once with its problems;
4. when steps still fail, the planner is shown what failed and makes one new plan
   (``router.max_replans``, default 1), which runs as a new DAG;
5. whatever still fails is reported step by step with its error.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from magray.common.errors import LLMError, MagrayError
from magray.router import _wiring, rules
from magray.router._prompts import PLAN_REFERENCES, summary_messages
from magray.router._refs import find_refs, reference_problems, resolve_args, step_output
from magray.router._types import Event, EventKind, EventSink, Plan, PlanReport, StepResult
from magray.router.errors import EmptyRequestError, PlanInvalidError

if TYPE_CHECKING:
    from magray.common.settings import Settings
    from magray.llm import LLMClient
    from magray.todo import ProgressEvent, Task, TodoStore
    from magray.tools import ToolContext, ToolRegistry

__all__ = ["PlanRunner", "run_smart", "summarize", "validate_plan"]

_RESULT_LIMIT = 8_000  # characters of a step's output kept in the task database
_SUMMARY_INPUT = 1_500  # characters of each step's output sent to the summary


@dataclass(frozen=True)
class PlanRunner:
    """What planning and running a smart task needs (the :class:`Router` builds one).

    Attributes:
        settings: ``[router]`` limits and recovery, ``[todo]`` workers.
        registry: The tools steps call.
        tool_ctx: The sandbox context every call runs in.
        plans: Opens the task store plans run in (only when a plan runs).
        llm: The model that plans and summarises; ``None`` in no-LLM mode (rules plan).
        model: Plan and summarise with only this configured model.
        clock: Monotonic seconds, for elapsed times.
        sleep: Waits between step retries.
        retry_backoff: Seconds before a failed step is retried (doubles each time).
    """

    settings: Settings
    registry: ToolRegistry
    tool_ctx: ToolContext
    plans: Callable[[], TodoStore]
    llm: LLMClient | None = None
    model: str | None = None
    clock: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] | None = None
    retry_backoff: float | None = None

    def schemas(self) -> list[dict[str, Any]]:
        """Function schemas of the tools the sandbox policy enables."""
        return _wiring.tool_schemas(self.registry, self.tool_ctx)


def validate_plan(plan: Plan, tools: set[str], *, max_steps: int) -> list[str]:
    """Problems that stop ``plan`` from running (empty when it can run)."""
    problems: list[str] = []
    if not plan.steps:
        problems.append("the plan has no steps")
    if len(plan.steps) > max_steps:
        problems.append(f"the plan has {len(plan.steps)} steps; at most {max_steps} are allowed")
    problems += plan.dag_problems(tools)
    problems += [
        f"step {s.id} ({s.tool}) lacks {', '.join(s.missing)}" for s in plan.steps if s.missing
    ]
    problems += reference_problems(plan)
    return problems


def _make_plan(runner: PlanRunner, task: str, emit: EventSink, feedback: str | None) -> Plan:
    schemas = runner.schemas()
    if runner.llm is None:
        return rules.plan(task, schemas)
    goal = f"{task}\n\n{PLAN_REFERENCES}"
    if feedback:
        goal += f"\n\n{feedback}"
    try:
        try:
            plan = rules.llm_plan(runner.llm, goal, schemas)
            problems = reference_problems(plan)
            if problems:  # the model's own check passed; the references did not
                raise PlanInvalidError("invalid references", details={"problems": problems})
        except PlanInvalidError as exc:
            problems_text = "; ".join(exc.details.get("problems", [exc.message]))
            emit(
                Event(
                    EventKind.RETRY,
                    f"the model's plan was invalid ({problems_text}); asking again",
                )
            )
            plan = rules.llm_plan(
                runner.llm,
                f"{goal}\n\nYour previous plan was invalid: {problems_text}. Use only the "
                "listed tools, unique step ids, dependencies on existing steps and references "
                "to steps listed in depends_on.",
                schemas,
            )
    except LLMError as exc:
        emit(Event(EventKind.RETRY, f"planning with the model failed ({exc.code}); using rules"))
        return rules.plan(task, schemas)
    return plan.model_copy(update={"goal": task})


def run_smart(runner: PlanRunner, task: str, *, dry_run: bool, emit: EventSink) -> PlanReport:
    """Plan ``task`` and (unless ``dry_run``) execute it; see the module docstring.

    Raises:
        EmptyRequestError: ``task`` is empty.
        PlanInvalidError: The plan cannot run (without ``dry_run``).
    """
    if not task.strip():
        raise EmptyRequestError(
            "nothing to plan: the task is empty",
            hint='say what to do: `magray smart "grep TODO in src and make a task list"`',
        )
    started = runner.clock()
    tools = set(runner.registry.names())
    max_steps = runner.settings.router.max_plan_steps
    plan = _make_plan(runner, task, emit, None)
    if not plan.steps:
        from magray.router._replies import CONFIGURE_LLM_COMMAND

        hint = "name the steps with tool words (read, grep, list, git log, ...)"
        if runner.llm is None:
            hint += f", or let a language model plan: `{CONFIGURE_LLM_COMMAND}`"
        raise PlanInvalidError(
            "no step of this task matches a tool",
            hint=hint,
            details={"plan": plan.model_dump(mode="json"), "problems": ["no steps"]},
        )
    emit(Event(EventKind.PLAN, plan.goal, _plan_data(plan)))
    report = PlanReport(plan=plan, planner=plan.source)
    report.problems = validate_plan(plan, tools, max_steps=max_steps)
    if dry_run:
        report.elapsed_s = runner.clock() - started
        return report
    report.raise_for_problems()
    report.steps = _execute(runner, plan, emit)
    report.executed = True
    while (
        not report.ok
        and runner.llm is not None
        and report.replans < runner.settings.router.max_replans
    ):
        feedback = "The previous plan failed:\n" + _failure_text(report.steps)
        emit(Event(EventKind.RETRY, "steps failed; making a new plan", {"failed": feedback}))
        try:
            new_plan = _make_plan(runner, task, emit, feedback + "\nMake a plan that avoids this.")
        except MagrayError as exc:
            emit(Event(EventKind.NOTICE, f"replanning failed: {exc.message}"))
            break
        problems = validate_plan(new_plan, tools, max_steps=max_steps)
        emit(Event(EventKind.PLAN, new_plan.goal, {**_plan_data(new_plan), "replan": True}))
        if problems:
            emit(Event(EventKind.NOTICE, "the new plan cannot run: " + "; ".join(problems)))
            break
        report.earlier += report.steps
        report.plan = new_plan
        report.replans += 1
        report.steps = _execute(runner, new_plan, emit)
    report.elapsed_s = runner.clock() - started
    return report


def _plan_data(plan: Plan) -> dict[str, Any]:
    """A PLAN event's data: the plan, who made it, and which outputs each step uses."""
    ids = [s.id for s in plan.steps]
    uses = {s.id: s.uses(ids) for s in plan.steps if s.uses(ids)}
    return {"plan": plan.model_dump(mode="json"), "planner": plan.source, "uses": uses}


def _execute(runner: PlanRunner, plan: Plan, emit: EventSink) -> list[StepResult]:
    registry = runner.registry
    ctx = runner.tool_ctx
    store = runner.plans()
    settings = runner.settings.router
    ids = _wiring.add_plan_tasks(
        store,
        plan,
        tag=f"plan:{uuid.uuid4().hex[:8]}",
        max_attempts=settings.step_attempts,
        timeout=settings.step_timeout,
        read_only=lambda name: _wiring.tool_is_read_only(registry, name),
    )
    steps = {ids[step.id]: step for step in plan.steps}
    step_ids = [step.id for step in plan.steps]
    parameters = _wiring.tool_parameters(runner.schemas())

    def run_step(task: Task) -> dict[str, Any]:
        assert task.action is not None
        step = steps[task.id]
        args = dict(task.action.args)
        used = {ref.step for ref in find_refs(args, step_ids)}
        if used:
            outputs: dict[str, dict[str, Any]] = {}
            for ref in sorted(used):
                done = store.get(ids[ref]).result
                kept = done.get("refs") if isinstance(done, dict) else None
                if not isinstance(kept, dict):  # validation makes this unreachable
                    raise PlanInvalidError(
                        f"step {step.id} needs the output of {ref}, which has none",
                        hint=f"make {step.id} depend on {ref}",
                    )
                outputs[ref] = kept
            args = resolve_args(
                args, outputs, step_ids=step_ids, parameters=parameters.get(step.tool)
            )
        outcome = _wiring.call_tool(registry, task.action.tool, args, ctx)
        _wiring.raise_for_outcome(registry, outcome)
        return {
            "content": outcome.content[:_RESULT_LIMIT],
            "truncated": outcome.truncated,
            "args": args if used else None,
            "refs": step_output(outcome.content, outcome.data),
        }

    def progress(event: ProgressEvent) -> None:
        if event.task is None or event.task.id not in steps:
            return
        step = steps[event.task.id]
        emit(
            Event(
                EventKind.STEP,
                f"{step.id} {event.kind.value}",
                {
                    "step": step.id,
                    "title": step.title,
                    "tool": step.tool,
                    "task_id": event.task.id,
                    "kind": event.kind.value,
                    "error": event.error,
                    "retry_in": event.retry_in,
                    "finished": event.finished,
                    "total": event.total,
                },
            )
        )

    _wiring.run_plan_tasks(
        store,
        list(ids.values()),
        run_step,
        max_workers=runner.settings.todo.max_workers,
        on_event=progress,
        backoff_base=runner.retry_backoff,
        sleep=runner.sleep,
    )
    out = []
    for step in plan.steps:
        task = store.get(ids[step.id])
        result = task.result if isinstance(task.result, dict) else {}
        error = task.error
        if error is None and str(task.status) in ("blocked", "skipped", "cancelled"):
            cause = steps.get(task.cause) if task.cause is not None else None
            error = (
                f"not run: it needs {cause.id} ({cause.tool}), which failed"
                if cause is not None
                else "not run: a step it needs did not finish"
            )
        out.append(
            StepResult(
                step=step.id,
                title=step.title,
                tool=step.tool,
                task_id=task.id,
                status=str(task.status),
                attempts=task.attempts,
                content=result.get("content"),
                error=error,
                args=result.get("args"),
            )
        )
    return out


def _failure_text(steps: list[StepResult]) -> str:
    lines = []
    for s in steps:
        if s.status == "done":
            lines.append(f"- {s.step} ({s.tool}) done")
        else:
            lines.append(f"- {s.step} ({s.tool}) {s.status}: {s.error or 'not run'}")
    return "\n".join(lines)


def _plain(report: PlanReport) -> str:
    lines = [f"Plan: {report.plan.goal} ({report.planner} planner)"]
    if not report.executed:
        ids = [s.id for s in report.plan.steps]
        for s in report.plan.steps:
            after = f" (after {', '.join(s.depends_on)})" if s.depends_on else ""
            refs = s.uses(ids)
            uses = f"; uses {', '.join(refs)}" if refs else ""
            lines.append(f"- {s.id}: {s.title} — {s.tool} {json.dumps(s.args)}{after}{uses}")
        lines += [f"Not covered by any tool: {u}" for u in report.plan.unplanned]
        lines += [f"Cannot run: {p}" for p in report.problems]
        return "\n".join(lines)
    for r in report.steps:
        lines.append(f"- {r.step} [{r.status}] {r.title} ({r.tool}, {r.attempts} attempt(s))")
        if r.status == "done" and r.content:
            body = r.content.strip().splitlines()
            lines += [f"    {line}" for line in body[:10]]
            if len(body) > 10:
                lines.append(f"    [... {len(body) - 10} more lines]")
        elif r.error:
            lines.append(f"    error: {r.error}")
    if report.replans:
        lines.append(f"(replanned {report.replans} time(s) after failures)")
    if not report.ok:
        failed = [f"{r.step} ({r.tool})" for r in report.failed if r.status == "failed"]
        not_run = [f"{r.step} ({r.tool})" for r in report.failed if r.status != "failed"]
        parts = [f"Failed: {', '.join(failed)}"] if failed else []
        parts += [f"not run: {', '.join(not_run)}"] if not_run else []
        lines.append("; ".join(parts))
    return "\n".join(lines)


def summarize(runner: PlanRunner, report: PlanReport) -> str:
    """The user-facing summary: the LLM's (when configured and the plan ran), else plain."""
    plain = _plain(report)
    if not report.executed or runner.llm is None:
        return plain
    results = "\n".join(
        f"{r.step} {r.title} [{r.status}]: "
        + ((r.content or "")[:_SUMMARY_INPUT] if r.status == "done" else (r.error or ""))
        for r in report.steps
    )
    try:
        completion = runner.llm.complete(
            summary_messages(report.plan.goal, results), model=runner.model
        )
    except MagrayError as exc:
        return f"{plain}\n\n(the summary could not be written: {exc.message})"
    text = completion.text or ""
    if not report.ok:
        failed = "; ".join(f"{r.step} ({r.tool}): {r.error or r.status}" for r in report.failed)
        text += f"\n\nFailed steps: {failed}"
    return text or plain
