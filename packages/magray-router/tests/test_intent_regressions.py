"""Rule-based intent regressions found while wiring the router."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("grep TODO", "file"),
        ("find TODO in the code", "file"),
        ("search the code for FIXME", "file"),
        ("grep TODO then read the file", "plan"),
        ("list my todos", "todo"),
        ("find my todos", "todo"),
        ("1. grep for FIXME\n2. add a todo for each one", "plan"),
    ],
)
def test_code_markers_are_file_searches_not_the_todo_list(text: str, kind: str) -> None:
    from magray.router.rules import RuleIntentAnalyzer

    assert RuleIntentAnalyzer().analyze(text).kind.value == kind
