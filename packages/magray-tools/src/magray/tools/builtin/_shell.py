"""The shell tool: classified commands, no shell unless allowed, confined by the OS sandbox."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from magray.common.errors import InvalidInputError
from magray.tools._model import Action, Assessment, Risk, Tool, ToolContext, ToolResult
from magray.tools._proc import ProcessResult
from magray.tools._sandbox import MODES, run_confined
from magray.tools.builtin._classify import classify
from magray.tools.builtin._shlex import Word, tokenize
from magray.tools.errors import PolicyDeniedError, ShellError, ToolCancelledError, ToolTimeoutError

__all__ = ["ShellRun"]

# Child env additions: never wait for a password or open a pager.
_CHILD_ENV = {"GIT_TERMINAL_PROMPT": "0", "PAGER": "cat", "GIT_PAGER": "cat"}


class ShellRunArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str = Field(
        min_length=1,
        description="The command line, e.g. 'ls -la src' or 'git log -5'. Without shell mode "
        "it is split like a shell would (quotes work) but pipes, redirections and $VARS are "
        "not available.",
    )
    cwd: str = Field(default=".", description="Working directory inside the workspace.")
    timeout: float | None = Field(
        default=None, gt=0, description="Seconds before the command is killed (capped by policy)."
    )
    sandbox: Literal["read-only", "workspace-write", "full"] | None = Field(
        default=None,
        description="OS sandbox for this command (default: tools.sandbox); a wider one than "
        "configured needs the user's approval.",
    )


class ShellRun(Tool[ShellRunArgs]):
    name = "shell_run"
    description = (
        "Run a command in the workspace and return its exit code, stdout and stderr. "
        "Read-only commands (ls, cat, grep, git status, ...) run directly; destructive ones "
        "(rm -rf /, sudo, mkfs, curl | sh, ...) are refused; anything else needs the user's "
        "approval. Prefer the file_* and git_* tools where they fit."
    )
    args_model = ShellRunArgs
    risk = Risk.EXECUTE
    path_args = ("cwd",)

    def rule_parts(self, args: ShellRunArgs, ctx: ToolContext) -> dict[str, list[str]]:
        cwd = ctx.policy.check_read(args.cwd, cwd=ctx.workspace)
        return {"command": list(classify(args.command, policy=ctx.policy, cwd=cwd).commands)}

    def assess(self, args: ShellRunArgs, ctx: ToolContext) -> Assessment:
        cwd = ctx.policy.check_read(args.cwd, cwd=ctx.workspace)
        policy = ctx.policy
        verdict = classify(args.command, policy=policy, cwd=cwd)
        result = Assessment(verdict.action, verdict.reason)
        for path in verdict.paths:  # path rules cover the files a command names
            rule = policy.path_rule(self.name, path)
            if rule is not None and rule.action is not Action.ALLOW:
                why = rule.reason or rule.describe()
                result = result.merge(Assessment(rule.action, f"{why} ({path})"))
        mode = args.sandbox or policy.sandbox
        if MODES.index(mode) > MODES.index(policy.sandbox):
            result = result.merge(
                Assessment.ask(f"asks for the {mode!r} sandbox, wider than tools.sandbox")
            )
        if result.action is Action.ALLOW and not verdict.read_only and not policy.confined(mode):
            result = Assessment.ask(
                f"no OS sandbox confines this command ({policy.mechanism().detail}) "
                "and it is not plainly read-only"
            )
        if verdict.needs_shell and not ctx.policy.allow_shell:
            result = result.merge(
                Assessment.deny(
                    "the command uses shell syntax (pipes, redirections, $VARS, globs, ';', "
                    "'&&' or sh -c) and tools.allow_shell is false"
                )
            )
        return result

    def run(self, args: ShellRunArgs, ctx: ToolContext) -> ToolResult:
        policy = ctx.policy
        cwd = policy.check_read(args.cwd, cwd=ctx.workspace)
        if not cwd.is_dir():
            raise InvalidInputError(f"working directory {args.cwd} does not exist")
        verdict = classify(args.command, policy=policy, cwd=cwd)
        if verdict.needs_shell:
            if not policy.allow_shell:  # assess() refused already; defence in depth
                raise PolicyDeniedError("shell syntax needs tools.allow_shell = true")
            argv = ["/bin/sh", "-c", args.command]
        else:
            argv = [_expand_tilde(t) for t in tokenize(args.command) if isinstance(t, Word)]
        timeout = ctx.remaining() if args.timeout is None else min(args.timeout, ctx.remaining())
        proc = run_confined(
            argv,
            policy=policy,
            cwd=cwd,
            timeout=max(timeout, 0.001),
            mode=args.sandbox,
            cancel=ctx.cancel,
            extra_env=_CHILD_ENV,
            pass_fds=ctx.pass_fds,
        )
        return _result(args.command, proc, timeout)


def _expand_tilde(word: Word) -> str:
    """``~`` and ``~/x`` expand as in a shell (the classifier judged the expanded path)."""
    if not word.quoted and (word.text == "~" or word.text.startswith("~/")):
        return os.path.expanduser(word.text)
    return word.text


def _result(command: str, proc: ProcessResult, timeout: float) -> ToolResult:
    status = "killed" if proc.exit_code is None or proc.exit_code < 0 else f"exit {proc.exit_code}"
    parts = [f"$ {command}", f"[{status} after {proc.duration_s:.2f} s]"]
    if proc.stdout:
        parts.append(proc.stdout.rstrip("\n"))
    if proc.stderr:
        parts += ["[stderr]", proc.stderr.rstrip("\n")]
    if proc.output_limit_hit:
        parts.append("[output limit exceeded: the process group was killed]")
    elif proc.truncated:
        parts.append("[output truncated]")
    data = {
        "exit_code": proc.exit_code,
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "timed_out": proc.timed_out,
        "sandbox": proc.sandbox,
        "mode": proc.mode,
        "argv": list(proc.argv),
    }
    content = "\n".join(parts)
    if proc.timed_out or proc.cancelled:
        exc: ShellError | ToolTimeoutError | ToolCancelledError = (
            ToolTimeoutError(
                f"command timed out after {timeout:g} s; its process group was killed",
                hint="pass a larger timeout (capped by tools.timeout) or run less at once",
            )
            if proc.timed_out
            else ToolCancelledError("command cancelled; its process group was killed")
        )
        failed = ToolResult.failure(exc, data=data, truncated=proc.truncated)
        return failed.model_copy(update={"content": f"{failed.content}\n{content}"})
    if proc.output_limit_hit:
        failed = ToolResult.failure(
            ShellError(
                "the command wrote far more than the output cap allows; "
                "its process group was killed",
                hint="narrow the command (head, grep, a path filter) so it prints less",
                code="tool.shell.output_limit",
            ),
            data=data,
            truncated=True,
        )
        return failed.model_copy(update={"content": f"{failed.content}\n{content}"})
    if proc.exit_code != 0:
        failed = ToolResult.failure(
            ShellError(
                f"command exited with status {proc.exit_code}",
                hint="read stderr in the output",
                code="tool.shell.exit_status",
            ),
            data=data,
            truncated=proc.truncated,
        )
        return failed.model_copy(update={"content": content})
    return ToolResult(content=content, data=data, truncated=proc.truncated)
