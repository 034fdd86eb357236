"""The shell tool: classified commands, no shell unless allowed, optional bubblewrap."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from magray.common.errors import InvalidInputError
from magray.tools._model import Assessment, Risk, Tool, ToolContext, ToolResult
from magray.tools._policy import Policy
from magray.tools._proc import ProcessResult, run_process
from magray.tools.builtin._classify import classify
from magray.tools.builtin._shlex import Word, tokenize
from magray.tools.errors import PolicyDeniedError, ShellError, ToolCancelledError, ToolTimeoutError

__all__ = ["ShellRun", "bwrap_argv", "bwrap_path"]

# Child env additions: never wait for a password or open a pager.
_CHILD_ENV = {"GIT_TERMINAL_PROMPT": "0", "PAGER": "cat", "GIT_PAGER": "cat"}


def bwrap_path() -> str | None:
    """Path of the ``bwrap`` binary, if installed."""
    return shutil.which("bwrap")


def bwrap_argv(argv: list[str], *, policy: Policy, cwd: Path, binary: str = "bwrap") -> list[str]:
    """Wrap ``argv`` for bubblewrap: read-only system, writable write roots, no network.

    The whole file system is mounted read-only, ``/home``, ``/root`` and
    ``/tmp`` are replaced by empty tmpfs (hiding dotfiles and keys), then the
    read roots (read-only) and write roots (read-write) are mounted back.
    Every namespace is unshared, so the command has no network.
    """
    out = [
        binary,
        "--die-with-parent",
        "--new-session",
        "--unshare-all",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
    ]  # fmt: skip
    for hidden in ("/home", "/root", "/run/user"):
        if Path(hidden).is_dir():
            out += ["--tmpfs", hidden]
    for root in policy.read_roots:
        out += ["--ro-bind-try", str(root), str(root)]
    for root in policy.write_roots:
        out += ["--bind", str(root), str(root)]
    out += ["--chdir", str(cwd), "--", *argv]
    return out


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

    def assess(self, args: ShellRunArgs, ctx: ToolContext) -> Assessment:
        cwd = ctx.policy.check_read(args.cwd, cwd=ctx.workspace)
        verdict = classify(args.command, policy=ctx.policy, cwd=cwd)
        result = Assessment(verdict.action, verdict.reason)
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
        mode = "direct"
        if policy.bwrap:
            binary = bwrap_path()
            if binary is None:
                raise ShellError(
                    "tools.bwrap is on but bubblewrap (bwrap) is not installed",
                    hint="install it (apt install bubblewrap) or set tools.bwrap = false",
                    code="tool.shell.bwrap_missing",
                )
            argv = bwrap_argv(argv, policy=policy, cwd=cwd, binary=binary)
            mode = "bwrap"
        timeout = ctx.remaining() if args.timeout is None else min(args.timeout, ctx.remaining())
        proc = run_process(
            argv,
            cwd=cwd,
            env=policy.child_env(extra=_CHILD_ENV),
            timeout=max(timeout, 0.001),
            max_output_bytes=policy.max_output_bytes,
            cancel=ctx.cancel,
        )
        return _result(args.command, proc, mode, timeout)


def _expand_tilde(word: Word) -> str:
    """``~`` and ``~/x`` expand as in a shell (the classifier judged the expanded path)."""
    if not word.quoted and (word.text == "~" or word.text.startswith("~/")):
        return os.path.expanduser(word.text)
    return word.text


def _result(command: str, proc: ProcessResult, mode: str, timeout: float) -> ToolResult:
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
        "mode": mode,
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
