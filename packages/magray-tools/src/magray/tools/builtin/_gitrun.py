"""Running git for the git tools: confined like every child, with safe config and checks.

Git runs with ``core.fsmonitor=false``, ``core.pager=cat``, no terminal prompts,
the allow-listed environment plus the git identity and the user's global config
(read-only), through :func:`magray.tools._sandbox.run_confined`. Revisions and
branch names starting with ``-`` are refused (option injection); paths must lie
inside the roots and never in ``.git``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from magray.tools._model import Assessment, ToolContext
from magray.tools._proc import ProcessResult
from magray.tools._sandbox import run_confined
from magray.tools.errors import GitError, PolicyDeniedError

__all__ = [
    "RepoArgs",
    "assess_paths",
    "checked_paths",
    "launch",
    "no_option",
    "repo_dirs",
    "run_git",
    "text_or",
]

_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "LC_ALL": "C",
    "GIT_OPTIONAL_LOCKS": "0",
}
# Repository config can name programs (fsmonitor, external diff, pager); neutralise them.
_SAFE_CONFIG = ["-c", "core.fsmonitor=false", "-c", "core.pager=cat", "-c", "color.ui=false"]


def no_option(value: str, what: str) -> str:
    if value.startswith("-"):
        raise PolicyDeniedError(
            f"{what} {value!r} starts with '-' and would be read as an option",
            hint=f"pass a plain {what}",
        )
    if "\x00" in value or "\n" in value:
        raise PolicyDeniedError(f"{what} contains a control character")
    return value


class RepoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str = Field(default=".", description="A directory inside the repository.")


def _git_binary() -> str:
    found = shutil.which("git")
    if found is None:
        raise GitError(
            "git is not installed or not on PATH",
            hint="install git (e.g. apt install git) to use the git tools",
            code="tool.git.missing",
        )
    return found


# The identity and global config git needs for commits pass to the sandboxed child.
_IDENTITY = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")


def _git_config_global() -> Path | None:
    """The user's global git config file (read-only inside the sandbox), if any."""
    named = os.environ.get("GIT_CONFIG_GLOBAL")
    candidates = [Path(named)] if named else []
    candidates += [Path(os.path.expanduser("~/.gitconfig"))]
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    candidates.append(Path(xdg) / "git" / "config")
    return next((p for p in candidates if p.is_file()), None)


def _enclosing_repo(directory: Path) -> Path | None:
    """The nearest parent holding ``.git`` (read-only in the sandbox when above the roots)."""
    for parent in (directory, *directory.parents):
        if (parent / ".git").exists():
            return parent
    return None


def launch(
    ctx: ToolContext, repo: Path, argv: list[str], *, write: bool, stdin: bytes | None = None
) -> ProcessResult:
    """Run git confined like every child; write tools may change ``.git``."""
    env = dict(_GIT_ENV)
    env.update({k: os.environ[k] for k in _IDENTITY if k in os.environ})
    if os.environ.get("GIT_CONFIG_NOSYSTEM"):
        env["GIT_CONFIG_NOSYSTEM"] = "1"
    config = _git_config_global()
    extra = [p for p in (config, _enclosing_repo(repo)) if p is not None]
    if config is not None:
        env["GIT_CONFIG_GLOBAL"] = str(config)
    return run_confined(
        [_git_binary(), "-C", str(repo), *_SAFE_CONFIG, *argv],
        policy=ctx.policy,
        cwd=repo,
        timeout=max(ctx.remaining(), 0.001),
        cancel=ctx.cancel,
        stdin=stdin,
        extra_env=env,
        git_writable=write,
        extra_read=extra,
        pass_fds=ctx.pass_fds,
    )


def run_git(
    ctx: ToolContext, repo: Path, args: list[str], *, check: bool = True, write: bool = False
) -> ProcessResult:
    ctx.check()
    proc = launch(ctx, repo, ["--no-pager", *args], write=write)
    if proc.timed_out:
        raise GitError(f"git {args[0]} timed out", code="tool.git.timeout", retriable=True)
    if check and proc.exit_code != 0:
        message = proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.exit_code}"
        if "not a git repository" in message:
            raise GitError(
                f"{repo} is not inside a git repository",
                hint="pass repo= a directory of a repository, or run `git init` there",
                code="tool.git.not_a_repo",
            )
        raise GitError(f"git {args[0]} failed: {message.splitlines()[-1]}", details={
            "stderr": proc.stderr[-2000:], "exit_code": proc.exit_code})  # fmt: skip
    return proc


def repo_dirs(ctx: ToolContext, raw: str, *, write: bool) -> tuple[Path, Path]:
    """``(directory, top level)``; write tools need the top level inside a write root."""
    policy = ctx.policy
    directory = (policy.check_write if write else policy.check_read)(raw, cwd=ctx.workspace)
    if not directory.is_dir():
        raise GitError(f"{raw} is not a directory", code="tool.git.not_a_repo")
    top = Path(run_git(ctx, directory, ["rev-parse", "--show-toplevel"]).stdout.strip()).resolve()
    if write:
        try:
            policy.check_write(top)
        except PolicyDeniedError:
            raise PolicyDeniedError(
                f"the repository at {top} reaches outside the writable roots",
                hint="make the repository's top level (or a parent) a workspace root",
            ) from None
    return directory, top


def checked_paths(ctx: ToolContext, raws: list[str], *, write: bool) -> list[str]:
    check = ctx.policy.check_write if write else ctx.policy.check_read
    out = []
    for raw in raws:
        # check_write refuses .git; for reads the git tools still refuse it (git internals).
        path = check(raw, cwd=ctx.workspace)
        if ".git" in path.parts:
            raise PolicyDeniedError(f"{raw!r} points into a .git directory")
        out.append(str(path))
    return out


def assess_paths(ctx: ToolContext, repo: str, paths: list[str], *, write: bool) -> Assessment:
    check = ctx.policy.check_write if write else ctx.policy.check_read
    check(repo, cwd=ctx.workspace)
    for raw in paths:
        check(raw, cwd=ctx.workspace)
    return Assessment.allow()


def text_or(proc: ProcessResult, empty: str) -> str:
    out = proc.stdout.rstrip("\n")
    return out if out else empty
