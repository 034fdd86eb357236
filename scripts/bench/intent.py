#!/usr/bin/env python3
"""Score the routing agents (magray.router.rules) on the hand-written evaluation set.

Usage::

    .venv/bin/python scripts/bench/intent.py                  # rule-based agents, all splits
    .venv/bin/python scripts/bench/intent.py --split holdout  # only the held-out requests
    .venv/bin/python scripts/bench/intent.py --model local/gemma3-270m --limit 30
    .venv/bin/python scripts/bench/intent.py --json           # machine-readable report

The set lives in packages/magray-router/tests/data/intent_eval.jsonl (expected intent,
tool, a subset of the arguments and, for plans, the tool sequence); the tool schemas
in eval_tools.json. With --model the LLM agents run (structured output); a failed
call falls back to the rules and is counted in "llm_fallbacks".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "packages" / "magray-router" / "tests" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, default=DATA / "intent_eval.jsonl")
    parser.add_argument("--tools", type=Path, default=DATA / "eval_tools.json")
    parser.add_argument("--split", choices=["dev", "holdout"], default=None)
    parser.add_argument("--model", default=None, help="Score the LLM agents with this model.")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N cases.")
    parser.add_argument(
        "--prompt-version",
        type=int,
        default=None,
        help="Prompt template version (default: newest).",
    )
    parser.add_argument(
        "--magray-tools",
        action="store_true",
        help="Use the installed magray-tools registry's schemas instead of eval_tools.json "
        "(expected tools renamed; memory/todo requests then expect no tool).",
    )
    parser.add_argument("--json", action="store_true", help="Print the full report as JSON.")
    parser.add_argument("--failures", action="store_true", help="List every failure.")
    args = parser.parse_args(argv)

    from magray.common.log import configure_logging

    configure_logging(level="WARNING", fmt="console")  # logs to stderr, never into the report
    from magray.llm import LLMClient
    from magray.router.rules import (
        LLMIntentAnalyzer,
        LLMToolSelector,
        RuleIntentAnalyzer,
        RuleParameterExtractor,
        RulePlanner,
        RuleToolSelector,
        evaluate,
        load_cases,
    )

    cases = load_cases(args.cases, split=args.split)[: args.limit]
    tools = json.loads(args.tools.read_text("utf-8"))
    if args.magray_tools:
        tools, cases = _magray_tools(cases)
    client = None
    if args.model:
        from magray.common.settings import LLMSettings

        client = LLMClient(settings=LLMSettings(model=args.model, max_retries=1))
        analyzer = LLMIntentAnalyzer(client, prompt_version=args.prompt_version)
        selector = LLMToolSelector(client, prompt_version=args.prompt_version)
        label = f"llm:{args.model}" + (
            f" prompts v{args.prompt_version}" if args.prompt_version else ""
        )
    else:
        analyzer = RuleIntentAnalyzer()
        selector = RuleToolSelector()
        label = "rules"
    try:
        report = evaluate(
            cases,
            tools,
            analyzer=analyzer,
            selector=selector,
            extractor=RuleParameterExtractor(),
            planner=RulePlanner(),
        )
    finally:
        if client is not None:
            client.close()
    result = {"agents": label, "split": args.split or "all", **report.to_dict()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    print(f"agents: {label}   split: {args.split or 'all'}   cases: {report.cases}")
    print(f"  intent accuracy  {pct(report.intent_accuracy)}")
    print(f"  tool accuracy    {pct(report.tool_accuracy)}   (end to end: intent -> tool or none)")
    print(f"  args accuracy    {pct(report.args_accuracy)}   ({report.args_cases} cases, rules)")
    print(f"  plan accuracy    {pct(report.plan_accuracy)}   ({report.plan_cases} cases, rules)")
    print(f"  time             {report.seconds * 1000:.1f} ms")
    print(
        "  per intent:",
        ", ".join(f"{k} {c}/{t}" for k, (c, t) in sorted(report.per_intent.items())),
    )
    if report.confusions:
        print(
            "  confusions:",
            ", ".join(f"{a}->{b} x{n}" for (a, b), n in report.confusions.most_common()),
        )
    if args.failures:
        for failure in report.failures:
            print("  -", json.dumps(failure, ensure_ascii=False))
    return 0


# eval_tools.json name -> magray-tools name (same behaviour, different registry).
_RENAMES = {
    "read_file": "file_read",
    "write_file": "file_write",
    "list_dir": "file_list",
    "search_files": "file_grep",
}


def _magray_tools(cases: list[Any]) -> tuple[list[Any], list[Any]]:
    """The real registry's schemas; arguments and plans are not scored (names differ)."""
    from dataclasses import replace

    from magray.tools._registry import ToolRegistry

    schemas = ToolRegistry.from_entry_points().schemas()
    names = {s.get("function", s).get("name") for s in schemas}
    renamed = []
    for case in cases:
        tool = _RENAMES.get(case.tool, case.tool)
        renamed.append(replace(case, tool=tool if tool in names else None, args={}, steps=[]))
    return schemas, renamed


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... | head`
        sys.exit(0)
