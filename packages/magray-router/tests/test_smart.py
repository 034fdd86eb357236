"""Smart tasks: plan → todo DAG → parallel tool steps → summary, and recovery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from magray.router import EventKind, Plan, PlanStep, validate_plan

from .conftest import loopback

THREE_STEPS = {
    "goal": "find the TODOs and list the workspace",
    "steps": [
        {"id": "s1", "description": "grep TODOs", "tool": "file_grep", "args": {"pattern": "TODO"}},
        {
            "id": "s2",
            "description": "read notes",
            "tool": "file_read",
            "args": {"path": "notes.txt"},
        },
        {
            "id": "s3",
            "description": "list files",
            "tool": "file_list",
            "args": {"path": "."},
            "depends_on": ["s1", "s2"],
        },
    ],
}


def _responder(plans: list[dict[str, Any]], summary: str = "Found 2 TODOs.") -> Any:
    """Plans for structured-output requests (in order), a summary for the rest."""

    def respond(body: dict[str, Any]) -> Any:
        if loopback.schema_name(body) == "PlanReply":
            return loopback.plan_reply(plans.pop(0) if len(plans) > 1 else plans[0])
        return loopback.text(summary)

    return respond


def test_three_step_plan_with_a_dependency_runs_as_a_todo_dag(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.responder = _responder([THREE_STEPS])
    events: list[Any] = []
    report = router.smart("find the TODOs in src and make a task list", on_event=events.append)
    assert report.ok
    assert report.executed
    assert report.planner == "llm"
    assert [s.status for s in report.steps] == ["done", "done", "done"]
    assert "TODO: handle errors" in (report.steps[0].content or "")
    # the steps are real tasks with the dependency in the todo store
    s3 = router.plans.get(report.steps[2].task_id)
    assert sorted(router.plans.dependencies(s3.id)) == sorted(
        [report.steps[0].task_id, report.steps[1].task_id]
    )
    assert "smart" in s3.tags
    # s3 ran after both of its dependencies
    order = [
        e.data["step"]
        for e in events
        if e.kind is EventKind.STEP and e.data["kind"] == "task_succeeded"
    ]
    assert order.index("s3") == 2
    assert router.summarize(report) == "Found 2 TODOs."


def test_dry_run_shows_the_plan_and_runs_nothing(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.responder = _responder([THREE_STEPS])
    report = router.smart("find the TODOs", dry_run=True)
    assert not report.executed
    assert len(report.plan.steps) == 3
    assert router.plans.tasks() == []
    text = router.summarize(report)
    assert "s3: list files" in text
    assert "after s1, s2" in text


def test_failed_step_triggers_one_replan(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    bad = {
        "goal": "read the notes",
        "steps": [
            {"id": "s1", "description": "read", "tool": "file_read", "args": {"path": "nope.txt"}}
        ],
    }
    good = {
        "goal": "read the notes",
        "steps": [
            {"id": "s1", "description": "read", "tool": "file_read", "args": {"path": "notes.txt"}}
        ],
    }
    llm_server.responder = _responder([bad, good], summary="The notes have one TODO.")
    events: list[Any] = []
    report = router.smart("read my notes", on_event=events.append)
    assert report.ok
    assert report.replans == 1
    assert report.earlier[0].status == "failed"
    assert "nope.txt" in (report.earlier[0].error or "")
    replan_request = [r for r in llm_server.requests if loopback.schema_name(r) == "PlanReply"][-1]
    assert "nope.txt" in json.dumps(replan_request["messages"])
    assert any(e.kind is EventKind.RETRY and "new plan" in e.text for e in events)


def test_failure_after_the_replan_is_reported_step_by_step(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    bad = {
        "goal": "read",
        "steps": [
            {"id": "s1", "description": "read", "tool": "file_read", "args": {"path": "gone.txt"}}
        ],
    }
    llm_server.responder = _responder([bad], summary="Could not read it.")
    report = router.smart("read gone.txt")
    assert not report.ok
    assert report.replans == 1
    assert report.failed[0].step == "s1"
    text = router.summarize(report)
    assert "Failed steps: s1 (file_read)" in text


def test_invalid_plan_is_sent_back_for_a_fix(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    wrong = {
        "goal": "g",
        "steps": [{"id": "s1", "description": "x", "tool": "teleport", "args": {}}],
    }
    llm_server.responder = _responder([wrong, THREE_STEPS])
    report = router.smart("find todos", dry_run=True)
    assert [s.tool for s in report.plan.steps] == ["file_grep", "file_read", "file_list"]


def test_fallback_model_makes_the_plan(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False, fallbacks=("openai/backup",))
    llm_server.script("test-model", loopback.error(500), loopback.error(500))
    llm_server.script("backup", loopback.plan_reply(THREE_STEPS))
    report = router.smart("find the TODOs", dry_run=True)
    assert report.planner == "llm"
    assert len(report.plan.steps) == 3
    assert [r["model"] for r in llm_server.requests] == ["test-model", "test-model", "backup"]


def test_planning_falls_back_to_rules_when_every_model_fails(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.responder = lambda body: loopback.error(500)
    events: list[Any] = []
    report = router.smart("grep TODO then list the files", on_event=events.append)
    assert report.planner == "rules"
    assert [s.tool for s in report.plan.steps] == ["file_grep", "file_list"]
    assert any(e.kind is EventKind.RETRY and "using rules" in e.text for e in events)
    assert report.executed


def test_validate_plan_finds_every_problem() -> None:
    plan = Plan(
        goal="g",
        steps=[
            PlanStep(id="a", title="t", tool="file_read", depends_on=["a", "zz"], missing=["path"]),
            PlanStep(id="a", title="t", tool="nope"),
        ],
    )
    problems = validate_plan(plan, {"file_read"}, max_steps=1)
    text = " | ".join(problems)
    needles = ("2 steps", "repeat", "unknown tool 'nope'", "unknown step 'zz'", "itself", "lacks")
    for needle in needles:
        assert needle in text


@pytest.mark.parametrize("dry_run", [True])
def test_plan_event_carries_the_steps(make_router, llm_server, dry_run: bool) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.responder = _responder([THREE_STEPS])
    events: list[Any] = []
    router.smart("x", dry_run=dry_run, on_event=events.append)
    (plan_event,) = [e for e in events if e.kind is EventKind.PLAN]
    assert [s["id"] for s in plan_event.data["plan"]["steps"]] == ["s1", "s2", "s3"]
