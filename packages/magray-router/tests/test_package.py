"""The package installs, imports and exports what it promises."""

from __future__ import annotations

import importlib.metadata

import magray.router


def test_version_matches_distribution() -> None:
    assert magray.router.__version__ == importlib.metadata.version("magray-router")


def test_all_names_exist() -> None:
    for name in magray.router.__all__:
        assert hasattr(magray.router, name), name


def test_rules_export_what_they_promise() -> None:
    from magray.router import rules

    for name in rules.__all__:
        assert hasattr(rules, name), name


# ---------------------------------------------------------------- moved from magray-llm


def test_moved_names_still_resolve_from_magray_llm_with_a_deprecation_warning() -> None:
    import pytest

    import magray.llm
    from magray.router import rules

    with pytest.warns(DeprecationWarning, match=r"magray\.router\.rules\.RuleIntentAnalyzer"):
        old = magray.llm.RuleIntentAnalyzer
    assert old is rules.RuleIntentAnalyzer
    with pytest.warns(DeprecationWarning, match=r"magray\.router\.PlanInvalidError"):
        assert magray.llm.PlanValidationError is magray.router.PlanInvalidError
    with pytest.warns(DeprecationWarning, match=r"magray\.router\.Plan "):
        assert magray.llm.Plan is magray.router.Plan
    with pytest.warns(DeprecationWarning, match=r"magray\.router\.rules\.AgentDecision"):
        assert magray.llm.Decision is rules.AgentDecision
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        magray.llm.Nope  # noqa: B018


def test_every_name_magray_llm_exported_for_the_agents_still_resolves() -> None:
    import pytest

    import magray.llm

    old_exports = [  # magray.llm.__all__ "agents" and "evaluation" before the move
        "ActionPlanner", "AgentCoordinator", "Decision", "Extraction", "Intent",
        "IntentAnalyzer", "IntentKind", "LLMIntentAnalyzer", "LLMParameterExtractor",
        "LLMPlanner", "LLMToolSelector", "ParameterExtractor", "Plan", "PlanStep", "Route",
        "RuleIntentAnalyzer", "RuleParameterExtractor", "RulePlanner", "RuleToolSelector",
        "ToolSelection", "ToolSelector", "ToolSpec", "TraceEntry", "split_steps",
        "tool_specs", "validate_arguments", "EvalCase", "EvalReport", "evaluate",
        "load_cases", "PlanValidationError",
    ]  # fmt: skip
    for name in old_exports:
        with pytest.warns(DeprecationWarning, match=f"magray.llm.{name} moved to"):
            assert getattr(magray.llm, name) is not None


def test_a_moved_name_without_magray_router_names_the_fix(monkeypatch) -> None:
    import sys

    import pytest

    import magray.llm

    monkeypatch.setitem(sys.modules, "magray.router.rules", None)  # as if not installed
    with (
        pytest.warns(DeprecationWarning, match="moved to"),
        pytest.raises(ImportError, match="pip install"),
    ):
        magray.llm.RulePlanner  # noqa: B018


def test_importing_magray_llm_does_not_import_the_router() -> None:
    import subprocess
    import sys

    code = "import sys, magray.llm; print(any(m.startswith('magray.router') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_model_error_is_the_llm_model_not_found_error() -> None:
    import pytest

    import magray.router
    from magray.llm import LLMModelNotFoundError

    with pytest.warns(DeprecationWarning, match="LLMModelNotFoundError"):
        assert magray.router.UnknownModelError is LLMModelNotFoundError
    with pytest.raises(AttributeError):
        magray.router.Nope  # noqa: B018
