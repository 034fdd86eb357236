"""Rules that know magray's concrete tools, applied after the general rule agents.

The agents (:mod:`._intent`, :mod:`._select`, :mod:`._params`) are general: intent
keywords, a selector scoring tool descriptions, an argument extractor. These rules
know the router's concrete tools and settle what the general agents get wrong on
common requests, measured by the regression table in ``tests/test_rules.py``:

- :func:`refine` re-reads one clause: "list the files in src" keeps ``src``,
  "search memory for orca" keeps ``orca``, "find the TODOs in src" is a grep,
  "show the last 3 commits" asks git for 3;
- :func:`~._chain.clauses` splits a request into steps at "then"/"and <verb>"
  (:func:`split_steps`, plus verbs such as "make" and "turn"), but leaves requests
  whose tail is content ("remember that we read and write files") whole;
- :func:`~._chain.chain` makes a later step use an earlier step's output ("... and make a
  task list" → ``todo_add_many(titles="{{s1.items}}")``; "... and remember its first
  line" → ``memory_add(text="{{s1.first_line}}")``).

Every rule names a tool; it only applies when that tool is enabled. The rules live one
module per tool family (:mod:`._rules_files`, :mod:`._rules_notes`, :mod:`._rules_commands`);
this module holds their order and applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from magray.router.rules._match import Rule
from magray.router.rules._rules_commands import (
    fill_free_text,
    git_diff,
    git_log,
    git_status,
    run_tests,
    run_with,
)
from magray.router.rules._rules_files import (
    glob,
    grep_command,
    list_dir,
    marker_grep,
    open_file,
    quoted_grep,
)
from magray.router.rules._rules_notes import memory_add, memory_search, todo_add, todo_done

__all__ = ["RULES", "refine"]

#: In order: the first rule that matches decides.
RULES: tuple[Rule, ...] = (
    memory_add,
    memory_search,
    todo_done,
    todo_add,
    grep_command,
    quoted_grep,
    marker_grep,
    git_status,
    git_diff,
    git_log,
    open_file,
    glob,
    list_dir,
    run_tests,
    run_with,
    fill_free_text,
)


def refine(
    clause: str, tool: str | None, args: Mapping[str, Any], enabled: set[str]
) -> tuple[str | None, dict[str, Any], str | None]:
    """Apply the first matching rule to the agents' ``(tool, args)`` for ``clause``.

    Returns ``(tool, args, rule)``; ``rule`` is None when no rule applied.
    """
    for rule in RULES:
        found = rule(clause, tool)
        if found is None or found.tool not in enabled:
            continue
        if found.fill and found.tool == tool:
            missing = {k: v for k, v in found.args.items() if k not in args}
            if not missing:
                continue
            return tool, {**args, **missing}, found.rule
        merged = dict(args) if (found.keep and found.tool == tool) else {}
        merged.update(found.args)
        return found.tool, merged, found.rule
    return tool, dict(args), None
