"""The routing agents: rule-based paths, LLM paths (loopback server), planning DAGs, coordinator."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import magray.llm.testing as lb
from magray.common.errors import LLMError
from magray.common.metrics import MetricsRegistry
from magray.common.settings import LLMSettings
from magray.llm import LLMClient, RetryPolicy
from magray.router import Plan, PlanInvalidError, PlanStep
from magray.router.rules import (
    AgentCoordinator,
    IntentKind,
    LLMIntentAnalyzer,
    LLMParameterExtractor,
    LLMPlanner,
    LLMToolSelector,
    RuleIntentAnalyzer,
    RuleParameterExtractor,
    RulePlanner,
    RuleToolSelector,
    split_steps,
)

TOOLS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "eval_tools.json").read_text("utf-8")
)
BY_NAME = {t["function"]["name"]: t for t in TOOLS}


def llm_client(server: Any, *, retries: int = 0) -> LLMClient:
    settings = LLMSettings(
        model="openai/agent",
        api_base=server.api_base,
        api_key="k",
        structured_mode="json_schema",
        structured_retries=1,
    )
    return LLMClient(
        settings=settings,
        metrics=MetricsRegistry(),
        retry=RetryPolicy(max_retries=retries, jitter=False),
        sleep=lambda _s: None,
    )


# ------------------------------------------------------------------ intent (rules)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("hello!", IntentKind.CHAT),
        ("explain what a monad is", IntentKind.CHAT),
        ("show the last 3 commits", IntentKind.GIT),
        ("open notes/today.md", IntentKind.FILE),
        ("search the web for rust async book", IntentKind.WEB),
        ("run `cargo build`", IntentKind.SHELL),
        ("remember that my editor is helix", IntentKind.MEMORY),
        ("remind me to water the plants", IntentKind.TODO),
        ("run the tests, then commit with message 'ok'", IntentKind.PLAN),
    ],
)
def test_rule_intents(text: str, kind: IntentKind) -> None:
    intent = RuleIntentAnalyzer().analyze(text)
    assert intent.kind == kind
    assert 0 < intent.confidence <= 1
    assert intent.signals
    assert intent.source == "rules"


def test_rule_intent_defaults_to_chat_without_signals() -> None:
    intent = RuleIntentAnalyzer().analyze("blorp zindle")
    assert (intent.kind, intent.confidence, intent.signals) == (
        IntentKind.CHAT,
        0.5,
        ["chat:default"],
    )


def test_rule_intent_is_deterministic() -> None:
    analyzer = RuleIntentAnalyzer()
    text = "what changed in the repo since yesterday?"
    assert analyzer.analyze(text) == analyzer.analyze(text)


# ------------------------------------------------------------------ selection (rules)


def test_rule_selector_picks_a_tool_with_reasons() -> None:
    selection = RuleToolSelector().select("show me the last 5 commits", TOOLS)
    assert selection.tool == "git_log"
    assert selection.reasons
    assert selection.candidates[0][0] == "git_log"


def test_rule_selector_says_none_for_chat_and_for_unrelated_tools() -> None:
    assert RuleToolSelector().select("tell me a joke", TOOLS).tool is None
    only_web = [BY_NAME["web_search"]]
    assert RuleToolSelector().select("commit with message 'x'", only_web).tool is None
    assert RuleToolSelector().select("read a.txt", []).tool is None


def test_selector_accepts_bare_schemas() -> None:
    bare = [{"name": "read_file", "description": "Read a file.", "parameters": {}}]
    assert RuleToolSelector().select("read setup.py", bare).tool == "read_file"


# ------------------------------------------------------------------ extraction (rules)


def test_rule_extractor_fills_and_validates() -> None:
    extraction = RuleParameterExtractor().extract(
        "open config.toml and show me the first 20 lines", BY_NAME["read_file"]
    )
    assert extraction.arguments == {"path": "config.toml", "max_lines": 20}
    assert extraction.complete
    assert extraction.question is None


def test_rule_extractor_asks_instead_of_guessing() -> None:
    extraction = RuleParameterExtractor().extract(
        "write something to a file", BY_NAME["write_file"]
    )
    assert extraction.missing == ["path", "content"]
    assert not extraction.complete
    assert extraction.question is not None
    assert "path" in extraction.question
    assert "content" in extraction.question


def test_rule_extractor_enum_and_dates() -> None:
    extraction = RuleParameterExtractor().extract(
        "remind me to call mum on friday, high priority", BY_NAME["todo_add"]
    )
    assert extraction.arguments["title"] == "call mum"
    assert extraction.arguments["due"] == "friday"
    assert extraction.arguments["priority"] == "high"


# ------------------------------------------------------------------ plans


def test_split_steps() -> None:
    assert split_steps("first read a.py, then run the tests and finally commit") == [
        "read a.py",
        "run the tests",
        "commit",
    ]
    assert split_steps("1. list files\n2. grep for FIXME") == ["list files", "grep for FIXME"]


def test_rule_planner_builds_a_chained_dag() -> None:
    plan = RulePlanner().plan(
        'run pytest -q and then commit everything with message "green"', TOOLS
    )
    assert [s.tool for s in plan.steps] == ["shell_run", "git_commit"]
    assert plan.steps[0].args == {"command": "pytest -q"}
    assert plan.steps[1].args == {"message": "green", "all": True}
    assert plan.steps[1].depends_on == ["s1"]
    assert [s.id for s in plan.order()] == ["s1", "s2"]


def test_plan_validation_rejects_bad_graphs() -> None:
    def plan(*steps: PlanStep) -> Plan:
        return Plan(goal="g", steps=list(steps))

    with pytest.raises(PlanInvalidError, match="cycle"):
        plan(
            PlanStep(id="a", tool="t", depends_on=["c"]),
            PlanStep(id="b", tool="t", depends_on=["a"]),
            PlanStep(id="c", tool="t", depends_on=["b"]),
        ).validate_dag()
    with pytest.raises(PlanInvalidError, match="unknown step"):
        plan(PlanStep(id="a", tool="t", depends_on=["zzz"])).validate_dag()
    with pytest.raises(PlanInvalidError, match="itself"):
        plan(PlanStep(id="a", tool="t", depends_on=["a"])).validate_dag()
    with pytest.raises(PlanInvalidError, match="ids repeat"):
        plan(PlanStep(id="a", tool="t"), PlanStep(id="a", tool="t")).validate_dag()
    with pytest.raises(PlanInvalidError, match="unknown tool"):
        plan(PlanStep(id="a", tool="nope")).validate_dag({"t"})


def test_plan_order_respects_dependencies() -> None:
    diamond = Plan(
        goal="g",
        steps=[
            PlanStep(id="d", tool="t", depends_on=["b", "c"]),
            PlanStep(id="b", tool="t", depends_on=["a"]),
            PlanStep(id="c", tool="t", depends_on=["a"]),
            PlanStep(id="a", tool="t"),
        ],
    )
    order = [s.id for s in diamond.order()]
    assert order[0] == "a"
    assert order[-1] == "d"


# ------------------------------------------------------------------ coordinator


def test_coordinator_routes_and_explains() -> None:
    ticks = iter(range(100))
    coordinator = AgentCoordinator(clock=lambda: float(next(ticks)) / 1000)
    decision = coordinator.decide("show me the last 5 commits", TOOLS)
    assert decision.route == "tool"
    assert decision.selection is not None
    assert decision.selection.tool == "git_log"
    assert decision.extraction is not None
    assert decision.extraction.arguments == {"limit": 5}
    assert [e.agent for e in decision.trace] == ["intent", "tool selection", "parameters"]
    text = decision.explain()
    assert "route: tool" in text
    assert "git_log" in text
    assert "[rules, 1.0 ms]" in text
    assert json.loads(json.dumps(decision.to_dict()))["route"] == "tool"

    chat = coordinator.decide("thanks!", TOOLS)
    assert chat.route == "chat"
    assert coordinator.decide("read a.txt", []).route == "chat"

    plan = coordinator.decide("read setup.py, then run pip install -e .", TOOLS)
    assert plan.route == "plan"
    assert plan.plan is not None
    assert [s.tool for s in plan.plan.steps] == ["read_file", "shell_run"]


def test_coordinator_reports_missing_arguments() -> None:
    decision = AgentCoordinator().decide("commit my work", TOOLS)
    assert decision.route == "tool"
    assert decision.needs_input
    assert decision.extraction is not None
    assert decision.extraction.missing == ["message"]


# ------------------------------------------------------------------ LLM agents (loopback)

pytestmark_llm = pytest.mark.network_stub


@pytestmark_llm
def test_llm_intent_and_fallback(server: Any) -> None:
    server.script(
        "agent",
        lb.chat('{"intent": "web", "confidence": 0.8, "reason": "asks about news"}'),
        lb.error(500, "down"),
    )
    analyzer = LLMIntentAnalyzer(llm_client(server))
    intent = analyzer.analyze("anything new about the kernel?")
    assert (intent.kind, intent.confidence, intent.source) == (IntentKind.WEB, 0.8, "llm")
    assert intent.signals == ["asks about news"]
    assert "intent" in server.requests[0]["response_format"]["json_schema"]["schema"]["properties"]
    fallback = analyzer.analyze("show the git log")
    assert fallback.kind == IntentKind.GIT
    assert fallback.source == "rules (llm failed: llm.server)"


@pytestmark_llm
@pytest.mark.parametrize(
    ("make", "call", "rules"),
    [
        (LLMIntentAnalyzer, lambda a: a.analyze("show the git log"), RuleIntentAnalyzer()),
        (
            LLMToolSelector,
            lambda a: a.select("show the last commits", TOOLS),
            RuleToolSelector(),
        ),
        (
            LLMParameterExtractor,
            lambda a: a.extract("last seven commits", BY_NAME["git_log"]),
            RuleParameterExtractor(),
        ),
        (
            LLMPlanner,
            lambda a: a.plan("run pytest, then commit with message 'x'", TOOLS),
            RulePlanner(),
        ),
    ],
    ids=["intent", "select", "extract", "plan"],
)
def test_every_llm_agent_falls_back_to_its_rules_or_raises(
    server: Any, make: Any, call: Any, rules: Any
) -> None:
    server.script("agent", lb.error(500, "down"), lb.error(401, "bad key"))
    fallback = call(make(llm_client(server)))
    expected = call(rules)
    assert fallback.source == "rules (llm failed: llm.server)"
    assert fallback == (
        expected.model_copy(update={"source": fallback.source})
        if isinstance(expected, Plan)
        else dataclasses.replace(expected, source=fallback.source)
    )
    with pytest.raises(LLMError) as raised:
        call(make(llm_client(server), raise_errors=True))
    assert raised.value.code == "llm.auth"
    assert len(server.requests) == 2


@pytestmark_llm
def test_llm_intent_fast_path_skips_the_model(server: Any) -> None:
    analyzer = LLMIntentAnalyzer(llm_client(server), fast_path=0.8)
    intent = analyzer.analyze("git status please")
    assert intent.source == "rules (fast path)"
    assert server.requests == []


@pytestmark_llm
def test_llm_selector_validates_tool_names(server: Any) -> None:
    server.script(
        "agent",
        lb.chat('{"tool": "git_log", "confidence": 0.9, "reasons": ["history"]}'),
        lb.chat('{"tool": "delete_everything", "confidence": 0.9, "reasons": []}'),
    )
    selector = LLMToolSelector(llm_client(server))
    assert selector.select("recent commits", TOOLS).tool == "git_log"
    invented = selector.select("wipe it", TOOLS)
    assert invented.tool is None
    assert "unknown tool" in invented.reasons[0]
    prompt = server.requests[0]["messages"][0]["content"]
    assert "- git_log: Show recent commits" in prompt


@pytestmark_llm
def test_llm_extractor_validates_and_never_trusts_missing(server: Any) -> None:
    server.script(
        "agent",
        lb.chat('{"arguments": {"limit": "7", "path": 3}, "missing": [], "question": null}'),
        lb.chat('{"arguments": {}, "missing": [], "question": null}'),
    )
    extractor = LLMParameterExtractor(llm_client(server))
    log = extractor.extract("last seven commits", BY_NAME["git_log"])
    assert log.arguments == {"limit": 7}  # "7" coerced; path 3 is not a string: dropped
    assert log.errors
    assert log.errors[0].startswith("path:")
    commit = extractor.extract("commit", BY_NAME["git_commit"])
    assert commit.missing == ["message"]  # required, whatever the model said
    assert commit.question is not None


@pytestmark_llm
def test_llm_planner_validates_the_dag(server: Any) -> None:
    good = {
        "steps": [
            {"id": "s1", "tool": "shell_run", "args": {"command": "pytest"}, "depends_on": []},
            {"id": "s2", "tool": "git_commit", "args": {}, "depends_on": ["s1"]},
        ]
    }
    cyclic = {
        "steps": [
            {"id": "s1", "tool": "shell_run", "args": {}, "depends_on": ["s2"]},
            {"id": "s2", "tool": "git_commit", "args": {}, "depends_on": ["s1"]},
        ]
    }
    server.script(
        "agent",
        lb.chat(json.dumps(good)),
        lb.chat(json.dumps(cyclic)),
        lb.chat(json.dumps(cyclic)),
    )
    planner = LLMPlanner(llm_client(server))
    plan = planner.plan("test then commit", TOOLS)
    assert plan.source == "llm"
    assert plan.steps[1].missing == ["message"]
    fallback = planner.plan("run pytest, then commit with message 'x'", TOOLS)
    assert fallback.source == "rules (llm plan was invalid)"
    assert [s.tool for s in fallback.steps] == ["shell_run", "git_commit"]
    strict = LLMPlanner(llm_client(server), fallback_on_invalid=False)
    with pytest.raises(PlanInvalidError):
        strict.plan("x", TOOLS)


@pytestmark_llm
def test_coordinator_with_llm_records_sources(server: Any) -> None:
    server.script(
        "agent",
        lb.chat('{"intent": "git", "confidence": 0.7, "reason": "repo history"}'),
        lb.chat('{"tool": "git_log", "confidence": 0.9, "reasons": ["history"]}'),
        lb.chat('{"arguments": {"limit": 2}, "missing": [], "question": null}'),
    )
    decision = AgentCoordinator.with_llm(llm_client(server), fast_path=None).decide(
        "what happened lately in here?", TOOLS
    )
    assert decision.route == "tool"
    assert [e.source for e in decision.trace] == ["llm", "llm", "llm"]
    assert decision.extraction is not None
    assert decision.extraction.arguments == {"limit": 2}
