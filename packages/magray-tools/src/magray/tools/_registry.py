"""The tool registry: discovery through entry points and the one call path.

Every call goes through :meth:`ToolRegistry.call` (or :meth:`~ToolRegistry.acall`):

1. look the tool up; refuse disabled tools;
2. validate the arguments against the tool's pydantic model;
3. let the tool assess the call (paths, hosts, commands); a hard refusal stops here;
4. apply the policy's rules (last match wins; a rule never lifts the tool's own deny);
5. ``ask`` goes to the confirmation callback (or ``assume_yes``);
6. run with a deadline, then cap the output and time the call.

Failures at any step come back as a :class:`ToolResult` with ``ok=False``;
``result.raise_for_error()`` turns it into the matching exception.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from magray.common.errors import MagrayError, ToolError
from magray.common.log import get_logger
from magray.common.metrics import MetricsRegistry, default_registry
from magray.tools._model import Action, ConfirmRequest, Tool, ToolContext, ToolResult
from magray.tools._rules import Rule
from magray.tools.errors import (
    PolicyDeniedError,
    ToolArgsError,
    ToolClashError,
    ToolNotFoundError,
)

__all__ = ["ENTRY_POINT_GROUP", "Decision", "LoadError", "ToolRegistry", "cap_text"]

ENTRY_POINT_GROUP = "magray.tools"
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_log = get_logger("magray.tools")


@dataclass(frozen=True)
class Decision:
    """The policy's verdict on one call (see :meth:`ToolRegistry.decide`).

    Attributes:
        action: allow, ask or deny.
        reason: Why, in words.
        rule: The rule that decided, if one matched.
        final: A built-in refusal (paths, hosts, the shell classifier) that rules cannot lift.
    """

    action: Action
    reason: str
    rule: Rule | None
    final: bool = False


@dataclass(frozen=True)
class LoadError:
    """An entry point that could not be loaded (the rest of the registry still works)."""

    entry_point: str
    origin: str
    message: str


def cap_text(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes, plus whether it was cut."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text, False
    kept = data[:limit].decode("utf-8", errors="ignore")
    return f"{kept}\n[... truncated: {len(data) - limit} more bytes]", True


class ToolRegistry:
    """Named tools plus the policy-checked call path.

    Example::

        registry = ToolRegistry.from_entry_points()
        ctx = ToolContext(policy=Policy.for_workspace(Path(".")))
        result = registry.call("file_read", {"path": "README.md"}, ctx)
    """

    def __init__(self, *, metrics: MetricsRegistry | None = None) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        self._origins: dict[str, str] = {}
        self.load_errors: list[LoadError] = []
        self._metrics = metrics

    # ------------------------------------------------------------------ registration
    def register(self, tool: Tool[Any], *, origin: str = "code") -> None:
        """Add a tool.

        Raises:
            ToolClashError: Another tool already has this name.
            ToolArgsError: The tool's name is not a valid function name.
        """
        name = getattr(tool, "name", None)
        if not isinstance(name, str) or not _NAME.match(name):
            raise ToolArgsError(
                f"tool {name!r} from {origin} has an invalid name",
                hint="names must match [a-zA-Z0-9_-]{1,64} (the function-calling rule)",
            )
        if name in self._tools:
            raise ToolClashError(
                f"tool name {name!r} is registered twice: by {self._origins[name]} and by {origin}",
                hint="uninstall one of the two packages, or rename the plugin's tool",
                details={"name": name, "origins": [self._origins[name], origin]},
            )
        self._tools[name] = tool
        self._origins[name] = origin

    def load_entry_points(
        self, group: str = ENTRY_POINT_GROUP, *, eps: Iterable[EntryPoint] | None = None
    ) -> None:
        """Register every tool advertised in the entry-point ``group``.

        An entry point may name a :class:`Tool` subclass (instantiated without
        arguments), a tool instance, or a callable returning one tool or an
        iterable of tools. Broken entry points are recorded in
        :attr:`load_errors`; name clashes raise :class:`ToolClashError`.
        """
        found = entry_points(group=group) if eps is None else eps
        for ep in sorted(found, key=lambda e: (e.dist.name if e.dist else "", e.name)):
            origin = f"{ep.dist.name if ep.dist else '?'}:{ep.name}"
            try:
                tools = _instantiate(ep.load())
            except Exception as exc:
                self.load_errors.append(LoadError(ep.value, origin, f"{type(exc).__name__}: {exc}"))
                _log.warning("tool entry point not loaded", origin=origin, error=str(exc))
                continue
            for tool in tools:
                self.register(tool, origin=origin)

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> ToolRegistry:
        """A registry of the built-in tools and every installed plugin."""
        registry = cls()
        registry.load_entry_points(group)
        return registry

    # ------------------------------------------------------------------ lookup
    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def origin(self, name: str) -> str:
        self.get(name)
        return self._origins[name]

    def get(self, name: str) -> Tool[Any]:
        """The tool called ``name``.

        Raises:
            ToolNotFoundError: No such tool.
        """
        try:
            return self._tools[name]
        except KeyError:
            from difflib import get_close_matches

            close = get_close_matches(name, self._tools, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "`magray tools list`"
            raise ToolNotFoundError(f"no tool named {name!r}", hint=hint) from None

    def validate_args(self, name: str, args: Mapping[str, Any] | str | None) -> BaseModel:
        """``args`` parsed by tool ``name``'s argument model, without running anything.

        Raises:
            ToolNotFoundError: No such tool.
            ToolArgsError: The arguments do not match its schema (``details["problems"]``
                lists each one as ``field: message``).
        """
        return _validate(self.get(name), args)

    def tools(self, ctx: ToolContext | None = None) -> list[Tool[Any]]:
        """Tools in name order; with ``ctx``, only those its policy does not disable."""
        out = [self._tools[n] for n in self.names()]
        if ctx is not None:
            out = [t for t in out if not ctx.policy.is_disabled(t.name)]
        return out

    def schemas(self, ctx: ToolContext | None = None) -> list[dict[str, Any]]:
        """OpenAI-style function schemas of every enabled tool."""
        return [tool.schema() for tool in self.tools(ctx)]

    # ------------------------------------------------------------------ calling
    def call(self, name: str, args: Mapping[str, Any] | str | None, ctx: ToolContext) -> ToolResult:
        """Run one tool call through the policy; never raises for tool failures."""
        start = ctx.clock()
        try:
            tool, parsed, call_ctx = self._prepare(name, args, ctx, start)
            result = tool.run(parsed, call_ctx)
        except Exception as exc:
            result = _failed(name, exc)
        return self._finish(name, result, ctx, start)

    async def acall(
        self, name: str, args: Mapping[str, Any] | str | None, ctx: ToolContext
    ) -> ToolResult:
        """Async :meth:`call` (uses the tool's :meth:`Tool.arun`)."""
        start = ctx.clock()
        try:
            tool, parsed, call_ctx = self._prepare(name, args, ctx, start)
            result = await tool.arun(parsed, call_ctx)
        except Exception as exc:
            result = _failed(name, exc)
        return self._finish(name, result, ctx, start)

    def decide(self, name: str, args: Mapping[str, Any] | str | None, ctx: ToolContext) -> Decision:
        """What the policy says about a call, without asking anybody or running it.

        Raises:
            ToolNotFoundError, ToolArgsError: Unknown tool or invalid arguments.
        """
        tool = self.get(name)
        if ctx.policy.is_disabled(name):
            return Decision(Action.DENY, f"tool {name!r} is disabled", None, final=True)
        parsed = _validate(tool, args)
        try:
            return self._decide(tool, parsed, ctx)
        except PolicyDeniedError as exc:
            return Decision(Action.DENY, exc.message, None, final=True)

    def _decide(self, tool: Tool[Any], args: BaseModel, ctx: ToolContext) -> Decision:
        assessment = tool.assess(args, ctx)  # hard refusals raise PolicyDeniedError
        values = _rule_values(tool, args, ctx)
        parts = tool.rule_parts(args, ctx)
        for key, forms in parts.items():
            values.setdefault(key, []).extend(forms)
        rule = ctx.policy.match_rule(tool.name, values, parts)
        if assessment.action is Action.DENY:
            return Decision(Action.DENY, assessment.reason, rule, final=True)
        if rule is None:
            return Decision(assessment.action, assessment.reason, None)
        reason = rule.reason or rule.describe()
        if rule.action is Action.ASK and assessment.reason:
            reason = f"{reason}; {assessment.reason}"
        return Decision(rule.action, reason, rule)

    def authorize(self, tool: Tool[Any], args: BaseModel, ctx: ToolContext) -> None:
        """Apply the tool's assessment, the rules and confirmation to one call.

        Raises:
            PolicyDeniedError: The call is refused (the message says why).
        """
        decision = self._decide(tool, args, ctx)
        if decision.action is Action.DENY and decision.final:
            raise PolicyDeniedError(
                f"{tool.name} refused: {decision.reason}",
                hint="this is a built-in refusal that rules cannot lift; docs/tools.md explains it",
                details={"tool": tool.name},
            )
        if decision.action is Action.DENY:
            where = decision.rule.describe() if decision.rule else "rule"
            raise PolicyDeniedError(
                f"{tool.name} denied by policy: {decision.reason}",
                hint=f"the matching {where} denies it",
                details={"tool": tool.name},
            )
        if decision.action is Action.ASK:
            request = ConfirmRequest(tool.name, args.model_dump(mode="json"), decision.reason)
            if not (ctx.policy.assume_yes or ctx.confirm(request)):
                raise PolicyDeniedError(
                    f"{tool.name} needs confirmation ({decision.reason}) and it was not given",
                    hint="approve the prompt, rerun with --yes, or add an allow rule "
                    "(docs/tools.md)",
                    code="permission.unconfirmed",
                    details={"tool": tool.name},
                )

    def _prepare(
        self, name: str, args: Mapping[str, Any] | str | None, ctx: ToolContext, start: float
    ) -> tuple[Tool[Any], BaseModel, ToolContext]:
        tool = self.get(name)
        if ctx.policy.is_disabled(name):
            raise PolicyDeniedError(
                f"tool {name!r} is disabled", hint="remove it from tools.disabled to use it"
            )
        parsed = _validate(tool, args)
        self.authorize(tool, parsed, ctx)
        # The deadline starts after authorization: time spent at a prompt does not count.
        call_ctx = replace(ctx, deadline=ctx.clock() + ctx.policy.timeout)
        call_ctx.check()
        return tool, parsed, call_ctx

    def _finish(self, name: str, result: ToolResult, ctx: ToolContext, start: float) -> ToolResult:
        content, cut = cap_text(result.content, ctx.policy.max_output_bytes)
        result = result.model_copy(
            update={
                "content": content,
                "truncated": result.truncated or cut,
                "duration_s": max(0.0, ctx.clock() - start),
            }
        )
        metrics = self._metrics or default_registry()
        outcome = "ok" if result.ok else str((result.error or {}).get("code", "error"))
        metrics.counter("tools.calls", tool=name, outcome=outcome).inc()
        metrics.histogram("tools.latency_ms", tool=name).observe(result.duration_s * 1000)
        return result


def _instantiate(obj: Any) -> list[Tool[Any]]:
    if isinstance(obj, type) and issubclass(obj, Tool):
        return [obj()]
    if isinstance(obj, Tool):
        return [obj]
    if callable(obj):
        made = obj()
        if isinstance(made, Tool):
            return [made]
        items = list(made)
        if all(isinstance(t, Tool) for t in items):
            return items
    raise TypeError(f"{obj!r} is not a Tool, a Tool class or a factory of tools")


def _validate(tool: Tool[Any], args: Mapping[str, Any] | str | None) -> BaseModel:
    if args is None:
        args = {}
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolArgsError(
                f"arguments for {tool.name} are not valid JSON: {exc}",
                hint='pass a JSON object such as \'{"path": "README.md"}\'',
            ) from None
    if not isinstance(args, Mapping):
        raise ToolArgsError(
            f"arguments for {tool.name} must be a JSON object, not {type(args).__name__}",
            hint=f"`magray tools describe {tool.name}` shows the schema",
        )
    try:
        return tool.args_model.model_validate(dict(args))
    except PydanticValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        ]
        raise ToolArgsError(
            f"invalid arguments for {tool.name}: {'; '.join(problems)}",
            hint=f"`magray tools describe {tool.name}` shows the schema",
            details={"problems": problems},
        ) from None


def _rule_values(tool: Tool[Any], args: BaseModel, ctx: ToolContext) -> dict[str, list[str]]:
    """Each argument's string forms for rule matching (paths also in resolved form)."""
    out: dict[str, list[str]] = {}
    for key, value in args.model_dump(mode="json").items():
        if value is None:
            continue
        if isinstance(value, str):
            forms = [value]
        elif isinstance(value, list):
            forms = [" ".join(str(v) for v in value), *(str(v) for v in value)]
        else:
            forms = [json.dumps(value)]
        if key in tool.path_args:
            for raw in list(forms):
                with contextlib.suppress(PolicyDeniedError):
                    forms.append(str(ctx.policy.resolve(raw, cwd=ctx.workspace)))
        out[key] = forms
    return out


def _failed(name: str, exc: Exception) -> ToolResult:
    """The result of a call that raised (called in its ``except``): the error, or a crash."""
    if isinstance(exc, MagrayError):
        return ToolResult.failure(exc)
    _log.exception("tool crashed", tool=name)
    return ToolResult.failure(_crash(name, exc))


def _crash(name: str, exc: Exception) -> ToolError:
    return ToolError(
        f"{name} crashed: {type(exc).__name__}: {exc}",
        hint="this is a bug in the tool; rerun with --debug for the traceback",
        code="tool.internal",
    )
