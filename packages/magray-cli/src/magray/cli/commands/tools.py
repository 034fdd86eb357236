"""``magray tools list|describe|run``: the sandboxed tools from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from magray.cli._complete import complete_tool_names
from magray.cli._context import AppContext, json_option, pass_app

if TYPE_CHECKING:
    from magray.tools import ConfirmRequest, Policy, ToolRegistry


@click.group()
def tools() -> None:
    """List, describe and run the assistant's sandboxed tools.

    Every call goes through the sandbox policy of the [tools] settings
    (workspace roots, allow/deny/ask rules, timeouts, network allowlist).
    See docs/tools.md.
    """


def _registry() -> ToolRegistry:
    from magray.tools import ToolRegistry

    return ToolRegistry.from_entry_points()


def _policy(app: AppContext, *, assume_yes: bool, workspace: tuple[Path, ...]) -> Policy:
    from magray.tools import Policy

    settings = app.settings.tools
    if workspace:
        settings = settings.model_copy(update={"workspace": list(workspace)})
    return Policy.from_settings(settings, cwd=Path.cwd(), assume_yes=assume_yes or None)


def _summary(description: str) -> str:
    first = description.split(". ", 1)[0].split(" (", 1)[0].rstrip(".")
    return first if len(first) <= 60 else first[:57] + "..."


@tools.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also show tools disabled by tools.disabled.")
@json_option
@pass_app
def tools_list(app: AppContext, show_all: bool) -> None:
    """List the available tools (built-in and plugins)."""
    from magray.cli._output import emit_json, print_table
    from magray.tools import ToolContext

    registry = _registry()
    ctx = ToolContext(policy=_policy(app, assume_yes=False, workspace=()))
    rows: list[dict[str, Any]] = []
    for tool in registry.tools():
        enabled = not ctx.policy.is_disabled(tool.name)
        if not enabled and not show_all:
            continue
        rows.append(
            {
                "name": tool.name,
                "risk": tool.risk.value,
                "enabled": enabled,
                "origin": registry.origin(tool.name),
                "description": tool.description,
            }
        )
    errors = [
        {"entry_point": e.entry_point, "origin": e.origin, "message": e.message}
        for e in registry.load_errors
    ]
    if app.json:
        emit_json({"tools": rows, "load_errors": errors})
        return
    print_table(
        ["name", "risk", "package", "description"],
        [
            (
                r["name"] + ("" if r["enabled"] else " (disabled)"),
                r["risk"],
                r["origin"].split(":")[0],
                _summary(r["description"]),
            )
            for r in rows
        ],
    )
    for error in errors:
        click.echo(
            f"warning: plugin {error['origin']} failed to load: {error['message']}", err=True
        )


@tools.command("describe")
@click.argument("name", shell_complete=complete_tool_names)
@json_option
@pass_app
def tools_describe(app: AppContext, name: str) -> None:
    """Show a tool's description, risk and argument schema."""
    from magray.cli._output import emit_json, print_table

    registry = _registry()
    tool = registry.get(name)
    schema = tool.schema()["function"]
    if app.json:
        emit_json(
            {
                "name": tool.name,
                "risk": tool.risk.value,
                "origin": registry.origin(tool.name),
                "description": tool.description,
                "parameters": schema["parameters"],
                "schema": tool.schema(),
            }
        )
        return
    click.echo(f"{tool.name}  (risk: {tool.risk.value}, from {registry.origin(tool.name)})\n")
    click.echo(click.wrap_text(tool.description, width=88) + "\n")
    params = schema["parameters"]
    required = set(params.get("required", []))
    rows = []
    for key, prop in params.get("properties", {}).items():
        kind = prop.get("type") or " | ".join(
            str(p.get("type", "?")) for p in prop.get("anyOf", [])
        )
        default = "" if key in required else repr(prop.get("default"))
        rows.append(
            (key, kind, "yes" if key in required else "", default, prop.get("description", ""))
        )
    print_table(["argument", "type", "required", "default", "description"], rows)
    click.echo(f"\nexample: magray tools run {tool.name} --args '{_example(params)}'")


def _example(params: dict[str, Any]) -> str:
    import json

    sample: dict[str, Any] = {}
    for key in params.get("required", []):
        prop = params["properties"][key]
        kind = prop.get("type")
        sample[key] = {"integer": 1, "number": 1.0, "boolean": True, "array": ["..."]}.get(
            kind, "..."
        )
    return json.dumps(sample)


def _read_args(raw: str) -> str:
    if raw == "-":
        return sys.stdin.read()
    if raw.startswith("@"):
        from magray.common.errors import InvalidInputError

        path = Path(raw[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(
                f"cannot read arguments from {path}: {exc.strerror or exc}",
                hint="--args takes JSON, @file.json or - (stdin)",
            ) from None
    return raw


def _prompt(request: ConfirmRequest) -> bool:
    """Ask on the terminal; refuse when there is none (non-interactive runs deny)."""
    if not sys.stdin.isatty():
        return False
    import json

    args = json.dumps(request.args, ensure_ascii=False)
    if len(args) > 300:
        args = args[:297] + "..."
    click.echo(f"{request.tool} {args}", err=True)
    return click.confirm(f"needs approval: {request.reason}. Allow?", default=False, err=True)


@tools.command("run")
@click.argument("name", shell_complete=complete_tool_names)
@click.option(
    "--args",
    "raw_args",
    default="{}",
    show_default=True,
    help="Arguments as a JSON object, @file.json, or - to read stdin.",
)
@click.option("--yes", "-y", is_flag=True, help="Approve calls that need confirmation.")
@click.option(
    "--dry-run", is_flag=True, help="Only show what the policy decides (allow/ask/deny) and why."
)
@click.option(
    "--workspace",
    "-w",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Workspace root for this run (repeatable; default: tools.workspace or the current dir).",
)
@json_option
@pass_app
@click.pass_context
def tools_run(  # noqa: PLR0917 (click passes options positionally)
    click_ctx: click.Context,
    app: AppContext,
    name: str,
    raw_args: str,
    yes: bool,
    dry_run: bool,
    workspace: tuple[Path, ...],
) -> None:
    """Run tool NAME once through the sandbox policy.

    Calls that need approval prompt on a terminal; without one they are refused
    unless --yes (or tools.assume_yes) is given. Exit status: 0 ok, 1 tool failed,
    2 bad arguments, 3 not found; --json prints the full result either way.
    """
    from magray.cli._output import emit_json, exit_code_for
    from magray.tools import ToolContext

    policy = _policy(app, assume_yes=yes, workspace=workspace)
    registry = _registry()
    registry.get(name)  # unknown tool: a one-line error with suggestions
    cwd = Path.cwd().resolve()
    inside = any(cwd.is_relative_to(root) for root in policy.write_roots)
    ctx = ToolContext(policy=policy, confirm=_prompt, cwd=cwd if inside else None)
    if dry_run:
        decision = registry.decide(name, _read_args(raw_args), ctx)
        payload = {
            "tool": name,
            "action": decision.action.value,
            "reason": decision.reason,
            "rule": decision.rule.describe() if decision.rule else None,
            "final": decision.final,
        }
        if app.json:
            emit_json(payload)
        else:
            where = f"  ({payload['rule']})" if payload["rule"] else ""
            click.echo(f"{decision.action.value}: {decision.reason or 'no objection'}{where}")
        return
    result = registry.call(name, _read_args(raw_args), ctx)
    failure = result.exception()
    if app.json:
        emit_json(result)
        if failure is not None:
            click_ctx.exit(exit_code_for(failure))
        return
    if failure is None:
        click.echo(result.content)
        return
    output = _without_error_lines(result.content)
    if output.strip():
        click.echo(output)  # e.g. a failed command's stdout/stderr
    raise failure  # the root prints error[CODE]: message + hint on stderr


def _without_error_lines(content: str) -> str:
    """A failed result's content minus its leading ``error[...]``/``hint:`` lines."""
    lines = content.splitlines()
    if lines and lines[0].startswith("error["):
        lines = lines[1:]
        if lines and lines[0].startswith("hint: "):
            lines = lines[1:]
    return "\n".join(lines)


def _defaults_line(policy: Policy) -> str:
    """What happens without rules, stated from the policy itself (never a fixed text)."""
    confined = policy.confined()
    parts = [
        "reads inside the roots run",
        "shell commands judged read-only run"
        + ("" if confined else " (others ask: no OS sandbox confines them)"),
        "other commands ask",
        "file_write overwrite " + ("runs" if policy.allow_overwrite else "asks"),
        "git_commit " + ("runs" if policy.allow_commit else "asks"),
        "destructive commands are refused",
    ]
    return "; ".join(parts)


@tools.command("policy")
@click.option(
    "--workspace",
    "-w",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Show the policy as it would be with these workspace roots.",
)
@json_option
@pass_app
def tools_policy(app: AppContext, workspace: tuple[Path, ...]) -> None:
    """Show the effective sandbox policy: roots, limits, network and rules in order."""
    from magray.cli._output import emit_json, print_table

    policy = _policy(app, assume_yes=False, workspace=workspace)
    mechanism = policy.mechanism()
    rules: list[dict[str, Any]] = [
        {
            "tool": r.tool,
            "action": r.action.value,
            "args": dict(r.args),
            "reason": r.reason,
            "source": r.source,
        }
        for r in policy.rules
    ]
    data: dict[str, Any] = {
        "write_roots": [str(p) for p in policy.write_roots],
        "read_roots": [str(p) for p in policy.read_roots],
        "timeout": policy.timeout,
        "max_output_bytes": policy.max_output_bytes,
        "allow_shell": policy.allow_shell,
        "sandbox": policy.sandbox,
        "sandbox_mechanism": mechanism.name,
        "sandbox_detail": mechanism.detail,
        "sandbox_network": policy.sandbox_network,
        "allow_overwrite": policy.allow_overwrite,
        "allow_commit": policy.allow_commit,
        "assume_yes": policy.assume_yes,
        "network_allowlist": list(policy.network_allowlist),
        "allow_private_networks": [str(n) for n in policy.allow_private_networks],
        "disabled": list(policy.disabled),
        "env_passthrough": list(policy.env_passthrough),
        "search_provider": policy.search_provider,
        "rules": rules,
    }
    if app.json:
        emit_json(data)
        return
    for key, value in data.items():
        if key == "rules":
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        click.echo(f"{key:24} {shown if shown not in ('', None) else '-'}")
    click.echo(f"{'defaults':24} {_defaults_line(policy)}")
    if not rules:
        click.echo(f"{'rules':24} - (none; the defaults above apply)")
        return
    click.echo("\nrules (checked in order; the last match wins):")
    print_table(
        ["#", "tool", "args", "action", "reason", "source"],
        [
            (
                i,
                r["tool"],
                " ".join(f"{k}={v}" for k, v in r["args"].items()),
                r["action"],
                r["reason"] or "",
                r["source"],
            )
            for i, r in enumerate(rules, 1)
        ],
    )
