"""Scoring the agents on a hand-written evaluation set (JSON lines).

Each line: ``{"text", "intent", "tool" (name or null), "args"?, "steps"?, "split"?}``.
``args`` is a subset the extracted arguments must contain (strings compared
case-insensitively); ``steps`` is the expected tool sequence of a plan.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magray.router.rules._intent import IntentAnalyzer
from magray.router.rules._params import ParameterExtractor
from magray.router.rules._planner import ActionPlanner
from magray.router.rules._schema import tool_specs
from magray.router.rules._select import ToolSelector

__all__ = ["EvalCase", "EvalReport", "evaluate", "load_cases"]


@dataclass(frozen=True)
class EvalCase:
    text: str
    intent: str
    tool: str | None
    args: dict[str, Any] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    split: str = "dev"


def load_cases(path: Path, *, split: str | None = None) -> list[EvalCase]:
    """Read the JSON-lines evaluation set (optionally one split only)."""
    cases = []
    for line in path.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        case = EvalCase(
            text=raw["text"],
            intent=raw["intent"],
            tool=raw.get("tool"),
            args=dict(raw.get("args") or {}),
            steps=list(raw.get("steps") or []),
            split=raw.get("split", "dev"),
        )
        if split is None or case.split == split:
            cases.append(case)
    return cases


@dataclass
class EvalReport:
    """Accuracies (0–1) and the failures, for printing or JSON."""

    cases: int = 0
    intent_correct: int = 0
    tool_correct: int = 0
    args_cases: int = 0
    args_correct: int = 0
    plan_cases: int = 0
    plan_correct: int = 0
    per_intent: dict[str, list[int]] = field(default_factory=dict)  # kind -> [correct, total]
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @staticmethod
    def _ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    @property
    def intent_accuracy(self) -> float | None:
        return self._ratio(self.intent_correct, self.cases)

    @property
    def tool_accuracy(self) -> float | None:
        return self._ratio(self.tool_correct, self.cases)

    @property
    def args_accuracy(self) -> float | None:
        return self._ratio(self.args_correct, self.args_cases)

    @property
    def plan_accuracy(self) -> float | None:
        return self._ratio(self.plan_correct, self.plan_cases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "intent_accuracy": self.intent_accuracy,
            "tool_accuracy": self.tool_accuracy,
            "args_accuracy": self.args_accuracy,
            "args_cases": self.args_cases,
            "plan_accuracy": self.plan_accuracy,
            "plan_cases": self.plan_cases,
            "per_intent": {
                k: {"correct": c, "total": t} for k, (c, t) in sorted(self.per_intent.items())
            },
            "confusions": {f"{a}->{b}": n for (a, b), n in self.confusions.most_common()},
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
        }


def _args_match(expected: Mapping[str, Any], got: Mapping[str, Any]) -> bool:
    for key, value in expected.items():
        if key not in got:
            return False
        actual = got[key]
        if isinstance(value, str) and isinstance(actual, str):
            if value.strip().lower() != actual.strip().lower():
                return False
        elif value != actual:
            return False
    return True


def evaluate(
    cases: Sequence[EvalCase],
    tools: Sequence[Mapping[str, Any]],
    *,
    analyzer: IntentAnalyzer,
    selector: ToolSelector,
    extractor: ParameterExtractor | None = None,
    planner: ActionPlanner | None = None,
) -> EvalReport:
    """Run the agents on every case and count what they got right.

    The selector gets the analyzer's intent (as the coordinator does), so a
    wrong intent usually costs the tool too: the tool figure is end to end.
    """
    by_name = {spec.name: tool for spec, tool in zip(tool_specs(tools), tools, strict=True)}
    report = EvalReport()
    started = time.perf_counter()
    for case in cases:
        report.cases += 1
        intent = analyzer.analyze(case.text)
        selection = selector.select(case.text, tools, intent=intent)
        ok_intent = intent.kind.value == case.intent
        ok_tool = selection.tool == case.tool
        stats = report.per_intent.setdefault(case.intent, [0, 0])
        stats[1] += 1
        if ok_intent:
            report.intent_correct += 1
            stats[0] += 1
        else:
            report.confusions[(case.intent, intent.kind.value)] += 1
        report.tool_correct += ok_tool
        failure: dict[str, Any] = {}
        if not ok_intent or not ok_tool:
            failure = {
                "text": case.text,
                "expected": [case.intent, case.tool],
                "got": [intent.kind.value, selection.tool],
                "signals": intent.signals,
            }
        if extractor is not None and case.args and case.tool in by_name:
            report.args_cases += 1
            extraction = extractor.extract(case.text, by_name[case.tool])
            if _args_match(case.args, extraction.arguments):
                report.args_correct += 1
            else:
                failure = failure or {"text": case.text}
                failure["args"] = {"expected": case.args, "got": extraction.arguments}
        if planner is not None and case.steps:
            report.plan_cases += 1
            plan = planner.plan(case.text, tools)
            got = [step.tool for step in plan.steps]
            if got == case.steps:
                report.plan_correct += 1
            else:
                failure = failure or {"text": case.text}
                failure["plan"] = {"expected": case.steps, "got": got}
        if failure:
            report.failures.append(failure)
    report.seconds = time.perf_counter() - started
    return report
