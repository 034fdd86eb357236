"""Plan steps that use the outputs of the steps they depend on ({{s1.items}} ...)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from magray.router import Plan, PlanInvalidError, PlanStep, validate_plan
from magray.router._refs import find_refs, reference_problems, resolve_args, step_output

from .conftest import loopback


def _plan(*steps: PlanStep) -> Plan:
    return Plan(goal="g", steps=list(steps))


def _step(sid: str, tool: str, args: dict[str, Any], *deps: str) -> PlanStep:
    return PlanStep(id=sid, title=sid, tool=tool, args=args, depends_on=list(deps))


# ------------------------------------------------------------------ validation


def test_references_to_dependencies_direct_or_indirect_are_valid() -> None:
    plan = _plan(
        _step("s1", "file_grep", {"pattern": "TODO"}),
        _step("s2", "file_list", {}, "s1"),
        _step("s3", "todo_add_many", {"titles": "{{s1.items}}"}, "s2"),
        _step("s4", "memory_add", {"text": "found {{ s1.count }}: {{s2.first_line}}"}, "s2"),
    )
    assert reference_problems(plan) == []


@pytest.mark.parametrize(
    ("args", "deps", "expected"),
    [
        ({"text": "{{s2.output}}"}, [], "does not depend on it"),
        ({"text": "{{s9.output}}"}, [], "unknown step 's9'"),
        ({"text": "{{s1.matches}}"}, ["s1"], "names no output field"),
        ({"text": "x {{s3.output}}"}, [], "its own output"),
    ],
)
def test_bad_references_are_problems(args: dict[str, Any], deps: list[str], expected: str) -> None:
    plan = _plan(
        _step("s1", "file_read", {"path": "a"}),
        _step("s2", "file_read", {"path": "b"}),
        _step("s3", "memory_add", args, *deps),
    )
    problems = reference_problems(plan)
    assert len(problems) == 1
    assert expected in problems[0]
    assert expected in " ".join(validate_plan(plan, {"file_read", "memory_add"}, max_steps=12))


def test_double_braces_that_name_no_step_are_plain_text() -> None:
    args = {"content": "Hello {{ user.name }}, see {{config.path}}", "nested": ["{{s1.output}}"]}
    refs = find_refs(args, ["s1"])
    assert [r.text for r in refs] == ["{{s1.output}}"]  # nested values count too


# ------------------------------------------------------------------ resolution


def test_outputs_use_the_tools_structured_results() -> None:
    grep = step_output(
        "src/a.py:3:  # TODO: x",
        {"matches": [{"path": "src/a.py", "line": 3, "text": "  # TODO: x"}], "count": 1},
    )
    assert grep["items"] == ["src/a.py:3: # TODO: x"]
    none = step_output("no matches for 'TODO'", {"matches": [], "count": 0})
    assert none["items"] == []  # "no matches" is not an item
    shell = step_output("a\n\nb\n", {"exit_code": 0})
    assert shell["items"] == ["a", "b"]


def test_resolution_keeps_types_for_whole_values_and_splices_text() -> None:
    outputs = {"s1": {"output": "\nalpha\nbeta\n", "items": ["x", "y"]}}
    params = {
        "properties": {
            "titles": {"type": "array", "items": {"type": "string"}},
            "text": {"type": "string"},
            "k": {"type": "integer"},
        }
    }
    args = {
        "titles": "{{s1.items}}",
        "text": "first: {{s1.first_line}}; all: {{s1.lines}}",
        "k": "{{s1.count}}",
        "other": "{{ user.name }}",
    }
    out = resolve_args(args, outputs, step_ids=["s1"], parameters=params)
    assert out == {
        "titles": ["x", "y"],
        "text": "first: alpha; all: alpha\nbeta",
        "k": 2,
        "other": "{{ user.name }}",
    }
    # a list into a string parameter becomes one line per item
    as_text = resolve_args({"text": "{{s1.items}}"}, outputs, step_ids=["s1"], parameters=params)
    assert as_text == {"text": "x\ny"}


# ------------------------------------------------------------------ end to end (no LLM)


def test_second_step_makes_a_task_list_from_the_first_steps_matches(make_router) -> None:
    router = make_router(memory=False, yes=True)
    report = router.smart("find the TODOs in src and make a task list")
    assert report.ok, report.to_dict()
    s1, s2 = report.steps
    assert (s1.tool, s2.tool) == ("file_grep", "todo_add_many")
    assert report.plan.steps[1].args == {"titles": "{{s1.items}}"}
    # grep reports paths relative to where it searched (src/)
    assert s2.args == {"titles": ["app.py:2: pass # TODO: handle errors"]}
    titles = [t.title for t in router.todo.tasks()]
    assert len(titles) == 1
    assert titles[0].endswith("pass # TODO: handle errors")
    # running it again does not duplicate the open task
    again = router.smart("find the TODOs in src and make a task list")
    assert "already on the list" in (again.steps[1].content or "")
    assert len(router.todo.tasks()) == 1


def test_second_step_remembers_the_first_line_of_a_file(make_router) -> None:
    router = make_router(yes=True)
    report = router.smart("read notes.txt and remember its first line")
    assert report.ok, report.to_dict()
    assert report.steps[1].args == {"text": "alpha"}
    hits = router.search_memory("alpha", k=3)
    assert any(h.text == "alpha" for h in hits)


def test_dry_run_shows_the_references(make_router) -> None:
    router = make_router(memory=False)
    report = router.smart("find the TODOs in src and make a task list", dry_run=True)
    text = router.summarize(report)
    assert '{"titles": "{{s1.items}}"}' in text
    assert "uses s1.items" in text
    assert router.todo.tasks() == []


def test_invalid_reference_fails_before_anything_runs(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False, max_replans=0)
    bad = {
        "steps": [
            {"id": "s1", "tool": "file_read", "args": {"path": "notes.txt"}},
            {"id": "s2", "tool": "memory_add", "args": {"text": "{{s1.output}}"}},
        ]
    }

    def respond(body: dict[str, Any]) -> Any:
        if loopback.schema_name(body) == "PlanReply":
            return loopback.plan_reply(bad)
        return loopback.text("summary")

    llm_server.responder = respond
    with pytest.raises(PlanInvalidError) as info:
        router.smart("read notes.txt and remember it")
    assert any("does not depend on it" in p for p in info.value.details["problems"])
    assert router.plans.tasks() == []  # nothing was written, nothing ran


def test_a_failed_dependency_skips_the_step_that_needs_its_output(make_router) -> None:
    router = make_router(yes=True)
    report = router.smart("read missing.txt and remember its first line")
    assert not report.ok
    s1, s2 = report.steps
    assert s1.status == "failed"
    assert s2.status in ("blocked", "skipped")
    assert s2.error == "not run: it needs s1 (file_read), which failed"
    assert s2.attempts == 0
    assert router.memory.count() == 0  # nothing was remembered
    assert "not run: it needs s1" in router.summarize(report)


def test_a_models_plan_with_references_runs_and_the_model_is_told_the_syntax(
    make_router, llm_server
) -> None:
    router = make_router(api_base=llm_server.api_base, yes=True)
    planned = {
        "steps": [
            {"id": "s1", "tool": "file_read", "args": {"path": "notes.txt"}},
            {
                "id": "s2",
                "tool": "memory_add",
                "args": {"text": "notes start with {{s1.first_line}}"},
                "depends_on": ["s1"],
            },
        ]
    }
    asked: list[str] = []

    def respond(body: dict[str, Any]) -> Any:
        if loopback.schema_name(body) == "PlanReply":
            asked.append(json.dumps(body["messages"]))
            return loopback.plan_reply(planned)
        return loopback.text("Remembered the first line.")

    llm_server.responder = respond
    report = router.smart("remember how my notes start")
    assert report.ok, report.to_dict()
    assert report.plan.goal == "remember how my notes start"  # the syntax note is not the goal
    assert report.steps[1].args == {"text": "notes start with alpha"}
    assert any(h.text == "notes start with alpha" for h in router.search_memory("notes", k=5))
    assert "{{s1.output}}" in asked[0]
