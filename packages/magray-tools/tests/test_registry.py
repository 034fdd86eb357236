"""Registry: entry-point discovery, clashes, schemas and the policy-checked call path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from magray.common.metrics import MetricsRegistry
from magray.tools import (
    Action,
    Assessment,
    ConfirmRequest,
    Policy,
    Risk,
    Rule,
    Tool,
    ToolClashError,
    ToolContext,
    ToolNotFoundError,
    ToolRegistry,
    ToolResult,
)

BUILTINS = {
    "file_read", "file_write", "file_edit", "file_list", "file_glob", "file_grep",
    "git_status", "git_diff", "git_log", "git_show", "git_branch", "git_add", "git_commit",
    "web_fetch", "web_search", "shell_run",
}  # fmt: skip


class EchoArgs(BaseModel):
    text: str
    times: int = 1


class Echo(Tool[EchoArgs]):
    name = "echo"
    description = "Repeat text."
    args_model = EchoArgs
    risk = Risk.READ

    def run(self, args: EchoArgs, ctx: ToolContext) -> ToolResult:
        return ToolResult(content=args.text * args.times, data={"n": args.times})


class Risky(Echo):
    name = "risky"

    def assess(self, args: EchoArgs, ctx: ToolContext) -> Assessment:
        if args.text == "bad":
            return Assessment.deny("bad text")
        return Assessment.ask("it is risky")


class Crashy(Echo):
    name = "crashy"

    def run(self, args: EchoArgs, ctx: ToolContext) -> ToolResult:
        raise RuntimeError("boom")


def make(*tools: Tool[Any]) -> ToolRegistry:
    reg = ToolRegistry(metrics=MetricsRegistry())
    for tool in tools:
        reg.register(tool)
    return reg


def test_builtins_come_from_entry_points(registry: ToolRegistry) -> None:
    assert set(registry.names()) >= BUILTINS
    assert registry.load_errors == []
    assert registry.origin("file_read") == "magray-tools:file_read"


def test_schemas_are_openai_style(registry: ToolRegistry, ctx: ToolContext) -> None:
    schemas = registry.schemas(ctx)
    by_name = {s["function"]["name"]: s for s in schemas}
    read = by_name["file_read"]
    assert read["type"] == "function"
    params = read["function"]["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["path"]
    assert "title" not in params["properties"]["path"]
    assert params["additionalProperties"] is False
    json.dumps(schemas)  # serialisable


def test_disabled_tools_are_not_offered_or_callable(
    registry: ToolRegistry, workspace: Path
) -> None:
    ctx = ToolContext(policy=Policy.for_workspace(workspace, disabled=("web_*", "shell_run")))
    names = {s["function"]["name"] for s in registry.schemas(ctx)}
    assert "web_fetch" not in names
    assert "shell_run" not in names
    assert "file_read" in names
    result = registry.call("shell_run", {"command": "ls"}, ctx)
    assert not result.ok
    assert "disabled" in result.error["message"]  # type: ignore[index]


def test_name_clash_is_an_error() -> None:
    reg = make(Echo())
    with pytest.raises(ToolClashError, match="registered twice"):
        reg.register(Echo(), origin="plugin-x:echo")


def test_entry_point_clash_and_broken_plugins() -> None:
    eps = [
        EntryPoint("one", "magray.tools.builtin._files:FileRead", "magray.tools"),
        EntryPoint("broken", "no_such_module_xyz:Tool", "magray.tools"),
    ]
    reg = ToolRegistry()
    reg.load_entry_points(eps=eps)
    assert reg.names() == ["file_read"]
    assert len(reg.load_errors) == 1
    assert "ModuleNotFoundError" in reg.load_errors[0].message
    with pytest.raises(ToolClashError):
        reg.load_entry_points(
            eps=[EntryPoint("two", "magray.tools.builtin._files:FileRead", "magray.tools")]
        )


def test_invalid_tool_name_is_refused() -> None:
    class Bad(Echo):
        name = "has space"

    with pytest.raises(Exception, match="invalid name"):
        make(Bad())


def test_unknown_tool_suggests(ctx: ToolContext) -> None:
    reg = make(Echo())
    result = reg.call("ecco", {}, ctx)
    assert not result.ok
    assert result.error["code"] == "not_found.tool"  # type: ignore[index]
    assert "echo" in result.error["hint"]  # type: ignore[index]
    with pytest.raises(ToolNotFoundError):
        result.raise_for_error()


def test_call_validates_args(ctx: ToolContext) -> None:
    reg = make(Echo())
    assert reg.call("echo", {"text": "ab", "times": 2}, ctx).content == "abab"
    assert reg.call("echo", '{"text": "x"}', ctx).content == "x"
    for bad in ({"times": 2}, {"text": "x", "times": "many"}, "not json", "[1]"):
        result = reg.call("echo", bad, ctx)
        assert not result.ok
        assert result.error["code"] == "validation.tool_args"  # type: ignore[index]


def test_ask_goes_to_the_confirmation_callback(workspace: Path) -> None:
    reg = make(Risky())
    seen: list[ConfirmRequest] = []

    def confirm(request: ConfirmRequest) -> bool:
        seen.append(request)
        return request.args["text"] == "yes"

    ctx = ToolContext(policy=Policy.for_workspace(workspace), confirm=confirm)
    assert reg.call("risky", {"text": "yes"}, ctx).ok
    refused = reg.call("risky", {"text": "no"}, ctx)
    assert not refused.ok
    assert refused.error["code"] == "permission.unconfirmed"  # type: ignore[index]
    assert "it is risky" in refused.error["message"]  # type: ignore[index]
    assert [r.args["text"] for r in seen] == ["yes", "no"]
    # the default callback (non-interactive) denies; assume_yes approves
    assert not reg.call(
        "risky", {"text": "x"}, ToolContext(policy=Policy.for_workspace(workspace))
    ).ok
    yes = ToolContext(policy=Policy.for_workspace(workspace, assume_yes=True))
    assert reg.call("risky", {"text": "x"}, yes).ok


def test_rules_turn_ask_into_allow_but_never_lift_deny(workspace: Path) -> None:
    reg = make(Risky(), Echo())
    policy = Policy.for_workspace(
        workspace,
        rules=(
            Rule("risky", Action.ALLOW),
            Rule("echo", Action.DENY, {"text": "*password*"}, "no passwords"),
            Rule("echo", Action.ASK, {"times": "3"}),
        ),
    )
    ctx = ToolContext(policy=policy)
    assert reg.call("risky", {"text": "fine"}, ctx).ok
    denied = reg.call("risky", {"text": "bad"}, ctx)
    assert not denied.ok
    assert "bad text" in denied.error["message"]  # type: ignore[index]
    no = reg.call("echo", {"text": "my password"}, ctx)
    assert "no passwords" in no.error["message"]  # type: ignore[index]
    assert reg.call("echo", {"text": "x"}, ctx).ok
    assert reg.call("echo", {"text": "x", "times": 3}, ctx).error["code"] == (  # type: ignore[index]
        "permission.unconfirmed"
    )


def test_crash_becomes_a_failed_result(ctx: ToolContext) -> None:
    result = make(Crashy()).call("crashy", {"text": "x"}, ctx)
    assert not result.ok
    assert result.error["code"] == "tool.internal"  # type: ignore[index]
    assert "boom" in result.error["message"]  # type: ignore[index]


def test_output_cap_and_duration_by_injected_clock(workspace: Path) -> None:
    now = [100.0]

    class Busy(Echo):
        name = "busy"

        def run(self, args: EchoArgs, ctx: ToolContext) -> ToolResult:
            now[0] += 2.5  # the work "takes" 2.5 s on the injected clock
            return super().run(args, ctx)

    ctx = ToolContext(
        policy=Policy.for_workspace(workspace, max_output_bytes=1024), clock=lambda: now[0]
    )
    result = make(Busy()).call("busy", {"text": "é" * 1000}, ctx)
    assert result.ok
    assert result.truncated
    assert len(result.content.encode()) < 1100
    assert "truncated" in result.content
    assert result.duration_s == 2.5


def test_time_at_the_prompt_does_not_eat_the_timeout(workspace: Path) -> None:
    now = [0.0]

    def slow_human(_request: ConfirmRequest) -> bool:
        now[0] += 600  # ten minutes to decide
        return True

    ctx = ToolContext(
        policy=Policy.for_workspace(workspace, timeout=10), confirm=slow_human, clock=lambda: now[0]
    )
    assert make(Risky()).call("risky", {"text": "x"}, ctx).ok


def test_deadline_uses_the_context_clock(workspace: Path) -> None:
    now = [0.0]

    class Slow(Echo):
        name = "slow"

        def run(self, args: EchoArgs, ctx: ToolContext) -> ToolResult:
            now[0] += 100  # "time passes" while working
            ctx.check()
            return ToolResult(content="done")

    ctx = ToolContext(policy=Policy.for_workspace(workspace, timeout=10), clock=lambda: now[0])
    result = make(Slow()).call("slow", {"text": "x"}, ctx)
    assert result.error["code"] == "timeout.tool"  # type: ignore[index]


def test_cancel_token(ctx: ToolContext) -> None:
    ctx.cancel.cancel()
    result = make(Echo()).call("echo", {"text": "x"}, ctx)
    assert result.error["code"] == "tool.cancelled"  # type: ignore[index]


def test_acall(ctx: ToolContext) -> None:
    result = asyncio.run(make(Echo()).acall("echo", {"text": "hi"}, ctx))
    assert result.content == "hi"


def test_metrics_are_recorded(ctx: ToolContext) -> None:
    metrics = MetricsRegistry()
    reg = ToolRegistry(metrics=metrics)
    reg.register(Echo())
    reg.call("echo", {"text": "x"}, ctx)
    reg.call("echo", {}, ctx)
    counters = metrics.snapshot()["counters"]
    assert any("tools.calls" in k and "outcome=ok" in k for k in counters)
    assert any("validation.tool_args" in k for k in counters)


def test_decide_reports_without_asking_or_running(workspace: Path) -> None:
    calls: list[ConfirmRequest] = []
    policy = Policy.for_workspace(workspace, rules=(Rule("echo", Action.ASK, {"text": "q*"}),))
    ctx = ToolContext(policy=policy, confirm=lambda r: bool(calls.append(r)))
    reg = make(Echo(), Risky())
    assert reg.decide("echo", {"text": "hello"}, ctx).action is Action.ALLOW
    asked = reg.decide("echo", {"text": "question"}, ctx)
    assert asked.action is Action.ASK
    assert asked.rule is not None
    denied = reg.decide("risky", {"text": "bad"}, ctx)
    assert (denied.action, denied.final, denied.reason) == (Action.DENY, True, "bad text")
    outside = make(_file_read_tool()).decide("file_read", {"path": "/etc/passwd"}, ctx)
    assert outside.action is Action.DENY
    assert "outside" in outside.reason
    assert calls == []


def _file_read_tool() -> Tool[Any]:
    from magray.tools.builtin import FileRead

    return FileRead()


@pytest.fixture
def unconfigured_structlog() -> Iterator[None]:
    """structlog as in an SDK program that configured nothing (CLI tests configure it)."""
    import structlog

    was_configured, saved = structlog.is_configured(), structlog.get_config()
    structlog.reset_defaults()
    try:
        yield
    finally:
        if was_configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


def test_a_crash_is_logged_through_magray_common_log_not_printed(
    ctx: ToolContext,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    unconfigured_structlog: None,
) -> None:
    with caplog.at_level("ERROR", logger="magray.tools"):
        assert not make(Crashy()).call("crashy", {"text": "x"}, ctx).ok
    crash = [r for r in caplog.records if r.name == "magray.tools"]
    assert crash, "the crash was not logged"
    assert "tool crashed" in crash[0].getMessage()
    assert "crashy" in crash[0].getMessage()
    assert crash[0].exc_info is not None
    assert capsys.readouterr().out == ""


def test_validate_args_parses_without_running(registry: ToolRegistry) -> None:
    from magray.tools.errors import ToolArgsError

    parsed = registry.validate_args("file_read", {"path": "README.md"})
    assert parsed.path == "README.md"  # type: ignore[attr-defined]
    with pytest.raises(ToolArgsError) as bad:
        registry.validate_args("file_read", {})
    assert bad.value.details["problems"] == ["path: Field required"]
    with pytest.raises(ToolNotFoundError):
        registry.validate_args("file_raed", {})
