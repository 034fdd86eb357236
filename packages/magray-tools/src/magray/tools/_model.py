"""The tool model: :class:`Tool`, its :class:`ToolResult` and its :class:`ToolContext`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from magray.common.errors import MagrayError
from magray.tools.errors import ToolCancelledError, ToolTimeoutError

if TYPE_CHECKING:
    from magray.tools._policy import Policy

__all__ = [
    "Action",
    "Assessment",
    "CancelToken",
    "ConfirmRequest",
    "Risk",
    "Tool",
    "ToolContext",
    "ToolResult",
    "approve_all",
    "deny_all",
]


class Risk(StrEnum):
    """How much harm a tool can do; shown to users and LLMs, used in rules as ``risk``."""

    READ = "read"  # reads files or repository state inside the read roots
    WRITE = "write"  # changes files or repository state inside the write roots
    NETWORK = "network"  # talks to hosts on the network
    EXECUTE = "execute"  # runs programs


class Action(StrEnum):
    """A policy verdict."""

    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"

    @property
    def rank(self) -> int:
        return (Action.ALLOW, Action.ASK, Action.DENY).index(self)


@dataclass(frozen=True)
class Assessment:
    """A tool's own verdict on one call, before the policy's rules are applied.

    ``DENY`` here is final: rules can turn ``ASK`` into ``ALLOW`` but never lift a deny.
    """

    action: Action
    reason: str = ""

    @classmethod
    def allow(cls, reason: str = "") -> Assessment:
        return cls(Action.ALLOW, reason)

    @classmethod
    def ask(cls, reason: str) -> Assessment:
        return cls(Action.ASK, reason)

    @classmethod
    def deny(cls, reason: str) -> Assessment:
        return cls(Action.DENY, reason)

    def merge(self, other: Assessment) -> Assessment:
        """The stricter of two assessments (the first one wins a tie)."""
        return other if other.action.rank > self.action.rank else self


@dataclass(frozen=True)
class ConfirmRequest:
    """What the confirmation callback is asked to approve."""

    tool: str
    args: dict[str, Any]
    reason: str


def deny_all(_request: ConfirmRequest) -> bool:
    """Confirmation callback of non-interactive runs: never approves."""
    return False


def approve_all(_request: ConfirmRequest) -> bool:
    """Confirmation callback for ``--yes`` / ``tools.assume_yes``."""
    return True


class CancelToken:
    """A thread-safe flag a caller sets to stop a running tool call."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds``; True as soon as the token is cancelled."""
        return self._event.wait(seconds)


@dataclass
class ToolContext:
    """Everything a tool call may use besides its arguments.

    Attributes:
        policy: The sandbox policy (roots, rules, limits).
        confirm: Called with a :class:`ConfirmRequest` when a call needs approval.
        cancel: Set it to stop the call.
        clock: Monotonic seconds (injected so tests control time).
        cwd: Where relative paths start (default: the first write root).
        deadline: Absolute ``clock()`` value after which the call times out (set per call).
        pass_fds: Descriptors every process the call starts inherits (a todo
            task's lock: it stays held while any process of the task lives).
    """

    policy: Policy
    confirm: Callable[[ConfirmRequest], bool] = deny_all
    cancel: CancelToken = field(default_factory=CancelToken)
    clock: Callable[[], float] = time.monotonic
    cwd: Path | None = None
    deadline: float | None = None
    pass_fds: tuple[int, ...] = ()

    @property
    def workspace(self) -> Path:
        """The directory relative paths are resolved against."""
        return self.cwd if self.cwd is not None else self.policy.primary_root

    def remaining(self) -> float:
        """Seconds left before the deadline (the policy timeout when no deadline is set)."""
        if self.deadline is None:
            return self.policy.timeout
        return max(0.0, self.deadline - self.clock())

    def check(self) -> None:
        """Raise if the call was cancelled or ran past its deadline; tools call it in loops."""
        if self.cancel.cancelled:
            raise ToolCancelledError("the tool call was cancelled")
        if self.deadline is not None and self.clock() > self.deadline:
            raise ToolTimeoutError(
                f"the tool call ran past its {self.policy.timeout:g} s timeout",
                hint="narrow the request or raise tools.timeout",
            )


class ToolResult(BaseModel):
    """The outcome of one tool call.

    Attributes:
        ok: False when the call failed or was refused.
        content: Text for the model / the user (capped at the policy's output limit).
        data: Structured result (for programs).
        truncated: True when content or captured output was cut.
        duration_s: Wall time of the call by the context's clock.
        error: ``{"code", "message", "hint"}`` when ``ok`` is False.
    """

    ok: bool = True
    content: str = ""
    data: dict[str, Any] = {}
    truncated: bool = False
    duration_s: float = 0.0
    error: dict[str, Any] | None = None

    @classmethod
    def failure(cls, exc: MagrayError, **fields: Any) -> ToolResult:
        """A failed result carrying ``exc``'s code, message, hint and details."""
        return cls(
            ok=False,
            content=f"error[{exc.code}]: {exc.message}"
            + (f"\nhint: {exc.hint}" if exc.hint else ""),
            error={
                "code": exc.code,
                "message": exc.message,
                "hint": exc.hint,
                "details": exc.details,
            },
            **fields,
        )

    def exception(self) -> MagrayError | None:
        """The failure as the matching :class:`MagrayError` (``None`` when ``ok``)."""
        if self.ok:
            return None
        from magray.tools._errmap import error_from_dict

        return error_from_dict(self.error or {"code": "tool", "message": self.content})

    def raise_for_error(self) -> ToolResult:
        """Raise the matching :class:`MagrayError` if the call failed; else return ``self``."""
        exc = self.exception()
        if exc is not None:
            raise exc
        return self


ArgsT = TypeVar("ArgsT", bound=BaseModel)


class Tool(Generic[ArgsT]):
    """Base class of every tool.

    Subclasses set the class attributes and implement :meth:`run`. Override
    :meth:`assess` to judge a call before it runs (paths, hosts, commands),
    and :meth:`arun` when the tool does I/O that has a native async form.

    Attributes:
        name: Unique name, ``[a-zA-Z0-9_-]{1,64}`` (what an LLM calls).
        description: What the tool does, written for an LLM.
        args_model: Pydantic model of the arguments; its JSON schema is what LLMs see.
        risk: How much harm the tool can do.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    args_model: ClassVar[type[BaseModel]]
    risk: ClassVar[Risk] = Risk.READ
    path_args: ClassVar[tuple[str, ...]] = ()  # arguments that rules also match as resolved paths

    def assess(self, args: ArgsT, ctx: ToolContext) -> Assessment:
        """Judge a call before it runs. Raise PolicyDeniedError for hard refusals."""
        return Assessment.allow()

    def rule_parts(self, args: ArgsT, ctx: ToolContext) -> dict[str, list[str]]:
        """Argument name -> the parsed parts user rules are matched against.

        The shell tool returns the simple commands of a command line in their
        normalised form (wrappers and git's global options taken apart), so a
        rule on ``git push*`` matches ``git -C . push`` too. Deny and ask rules
        match when any part does; allow rules only when every part does.
        """
        return {}

    def run(self, args: ArgsT, ctx: ToolContext) -> ToolResult:  # pragma: no cover - abstract
        """Do the work. Raise :class:`MagrayError` subclasses on failure."""
        raise NotImplementedError

    async def arun(self, args: ArgsT, ctx: ToolContext) -> ToolResult:
        """Async form; the default runs :meth:`run` in a worker thread."""
        import asyncio

        return await asyncio.to_thread(self.run, args, ctx)

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function schema of this tool."""
        params = _strip_titles(self.args_model.model_json_schema())
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }


def _strip_titles(schema: Any) -> Any:
    """Drop pydantic's auto-generated ``title`` keys (noise in an LLM's context)."""
    if isinstance(schema, dict):
        return {
            k: _strip_titles(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema
