"""Git tools: the git CLI through subprocess (argv, never a shell), inside the sandbox.

Every revision or branch argument is refused if it starts with ``-`` (option
injection such as ``--output=/etc/x``); paths go after ``--`` and must lie
inside the roots. Tools that change state (add, commit, branch create/switch)
need the repository's top level inside a write root. No tool offers
``--force``, ``--amend``, ``--no-verify`` or history rewriting.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from magray.tools._model import Assessment, Risk, Tool, ToolContext, ToolResult
from magray.tools._proc import ProcessResult
from magray.tools._sandbox import run_confined
from magray.tools.errors import GitError, PolicyDeniedError

__all__ = ["GitAdd", "GitBranch", "GitCommit", "GitDiff", "GitLog", "GitShow", "GitStatus"]

_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "LC_ALL": "C",
    "GIT_OPTIONAL_LOCKS": "0",
}
# Repository config can name programs (fsmonitor, external diff, pager); neutralise them.
_SAFE_CONFIG = ["-c", "core.fsmonitor=false", "-c", "core.pager=cat", "-c", "color.ui=false"]


def _no_option(value: str, what: str) -> str:
    if value.startswith("-"):
        raise PolicyDeniedError(
            f"{what} {value!r} starts with '-' and would be read as an option",
            hint=f"pass a plain {what}",
        )
    if "\x00" in value or "\n" in value:
        raise PolicyDeniedError(f"{what} contains a control character")
    return value


class _RepoArgs(BaseModel):
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


def _launch(
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


def _run(
    ctx: ToolContext, repo: Path, args: list[str], *, check: bool = True, write: bool = False
) -> ProcessResult:
    ctx.check()
    proc = _launch(ctx, repo, ["--no-pager", *args], write=write)
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


def _repo(ctx: ToolContext, raw: str, *, write: bool) -> tuple[Path, Path]:
    """``(directory, top level)``; write tools need the top level inside a write root."""
    policy = ctx.policy
    directory = (policy.check_write if write else policy.check_read)(raw, cwd=ctx.workspace)
    if not directory.is_dir():
        raise GitError(f"{raw} is not a directory", code="tool.git.not_a_repo")
    top = Path(_run(ctx, directory, ["rev-parse", "--show-toplevel"]).stdout.strip()).resolve()
    if write:
        try:
            policy.check_write(top)
        except PolicyDeniedError:
            raise PolicyDeniedError(
                f"the repository at {top} reaches outside the writable roots",
                hint="make the repository's top level (or a parent) a workspace root",
            ) from None
    return directory, top


def _paths(ctx: ToolContext, raws: list[str], *, write: bool) -> list[str]:
    check = ctx.policy.check_write if write else ctx.policy.check_read
    out = []
    for raw in raws:
        # check_write refuses .git; for reads the git tools still refuse it (git internals).
        path = check(raw, cwd=ctx.workspace)
        if ".git" in path.parts:
            raise PolicyDeniedError(f"{raw!r} points into a .git directory")
        out.append(str(path))
    return out


def _assess_paths(ctx: ToolContext, repo: str, paths: list[str], *, write: bool) -> Assessment:
    check = ctx.policy.check_write if write else ctx.policy.check_read
    check(repo, cwd=ctx.workspace)
    for raw in paths:
        check(raw, cwd=ctx.workspace)
    return Assessment.allow()


def _text(proc: ProcessResult, empty: str) -> str:
    out = proc.stdout.rstrip("\n")
    return out if out else empty


# ---------------------------------------------------------------------- status
class GitStatusArgs(_RepoArgs):
    pass


class GitStatus(Tool[GitStatusArgs]):
    name = "git_status"
    description = "Show the branch and changed, staged and untracked files of a git repository."
    args_model = GitStatusArgs
    risk = Risk.READ
    path_args = ("repo",)

    def assess(self, args: GitStatusArgs, ctx: ToolContext) -> Assessment:
        return _assess_paths(ctx, args.repo, [], write=False)

    def run(self, args: GitStatusArgs, ctx: ToolContext) -> ToolResult:
        directory, top = _repo(ctx, args.repo, write=False)
        proc = _run(ctx, directory, ["status", "--porcelain=v1", "--branch", "-z"])
        branch = ""
        entries: list[dict[str, str]] = []
        records = proc.stdout.split("\0")
        i = 0
        while i < len(records):
            rec = records[i]
            i += 1
            if not rec:
                continue
            if rec.startswith("## "):
                branch = rec[3:]
                continue
            xy, path = rec[:2], rec[3:]
            entry = {"index": xy[0], "worktree": xy[1], "path": path}
            if xy[0] in "RC":  # renames carry the old path as the next record
                entry["from"] = records[i] if i < len(records) else ""
                i += 1
            entries.append(entry)
        lines = [f"## {branch}"] + [f"{e['index']}{e['worktree']} {e['path']}" for e in entries]
        if not entries:
            lines.append("nothing to commit, working tree clean")
        return ToolResult(
            content="\n".join(lines),
            data={"root": str(top), "branch": branch, "entries": entries, "clean": not entries},
        )


# ---------------------------------------------------------------------- diff
class GitDiffArgs(_RepoArgs):
    staged: bool = Field(default=False, description="Show staged changes (the index).")
    ref: str | None = Field(default=None, description="Compare against this revision.")
    paths: list[str] = Field(default_factory=list, description="Limit to these paths.")
    stat: bool = Field(default=False, description="Only a per-file summary.")
    context: int = Field(default=3, ge=0, le=100, description="Context lines.")


class GitDiff(Tool[GitDiffArgs]):
    name = "git_diff"
    description = (
        "Show a unified diff of unstaged changes (default), staged changes (staged=true) or "
        "against a revision (ref), optionally limited to paths."
    )
    args_model = GitDiffArgs
    risk = Risk.READ
    path_args = ("repo", "paths")

    def assess(self, args: GitDiffArgs, ctx: ToolContext) -> Assessment:
        if args.ref:
            _no_option(args.ref, "revision")
        return _assess_paths(ctx, args.repo, args.paths, write=False)

    def run(self, args: GitDiffArgs, ctx: ToolContext) -> ToolResult:
        directory, _ = _repo(ctx, args.repo, write=False)
        cmd = ["diff", "--no-ext-diff", "--no-textconv", "--no-color", f"-U{args.context}"]
        if args.staged:
            cmd.append("--cached")
        if args.stat:
            cmd.append("--stat")
        if args.ref:
            cmd.append(_no_option(args.ref, "revision"))
        cmd += ["--", *_paths(ctx, args.paths, write=False)]
        proc = _run(ctx, directory, cmd)
        return ToolResult(
            content=_text(proc, "no differences"),
            truncated=proc.truncated,
            data={"diff": proc.stdout, "empty": not proc.stdout.strip()},
        )


# ---------------------------------------------------------------------- log
class GitLogArgs(_RepoArgs):
    max_count: int = Field(default=20, ge=1, le=1000)
    ref: str | None = Field(default=None, description="Start from this revision or range.")
    paths: list[str] = Field(default_factory=list, description="Only commits touching these.")


_SEP, _END = "\x1f", "\x1e"


class GitLog(Tool[GitLogArgs]):
    name = "git_log"
    description = "List recent commits (hash, date, author, subject), optionally for paths."
    args_model = GitLogArgs
    risk = Risk.READ
    path_args = ("repo", "paths")

    def assess(self, args: GitLogArgs, ctx: ToolContext) -> Assessment:
        if args.ref:
            _no_option(args.ref, "revision")
        return _assess_paths(ctx, args.repo, args.paths, write=False)

    def run(self, args: GitLogArgs, ctx: ToolContext) -> ToolResult:
        directory, _ = _repo(ctx, args.repo, write=False)
        fmt = _SEP.join(["%H", "%an", "%ae", "%aI", "%s"]) + _END
        cmd = ["log", f"--max-count={args.max_count}", f"--format={fmt}", "--no-color"]
        if args.ref:
            cmd.append(_no_option(args.ref, "revision"))
        cmd += ["--", *_paths(ctx, args.paths, write=False)]
        proc = _run(ctx, directory, cmd, check=False)
        if proc.exit_code != 0:
            if "does not have any commits" in proc.stderr:
                return ToolResult(content="no commits yet", data={"commits": []})
            _run(ctx, directory, cmd)  # raise the proper error
        commits: list[dict[str, Any]] = []
        for record in proc.stdout.split(_END):
            fields = record.strip("\n").split(_SEP)
            if len(fields) == 5:
                sha, name, email, date, subject = fields
                commits.append(
                    {"sha": sha, "author": name, "email": email, "date": date, "subject": subject}
                )
        lines = [f"{c['sha'][:10]} {c['date'][:10]} {c['author']}: {c['subject']}" for c in commits]
        return ToolResult(content="\n".join(lines) or "no commits", data={"commits": commits})


# ---------------------------------------------------------------------- show
class GitShowArgs(_RepoArgs):
    rev: str = Field(default="HEAD", description="Commit, tag or branch to show.")
    path: str | None = Field(
        default=None, description="Show this file's content at rev instead of the commit."
    )
    stat: bool = Field(default=False, description="Only the commit message and file summary.")


class GitShow(Tool[GitShowArgs]):
    name = "git_show"
    description = (
        "Show a commit (message and diff), or with path= the content of one file at that revision."
    )
    args_model = GitShowArgs
    risk = Risk.READ
    path_args = ("repo", "path")

    def assess(self, args: GitShowArgs, ctx: ToolContext) -> Assessment:
        _no_option(args.rev, "revision")
        return _assess_paths(ctx, args.repo, [args.path] if args.path else [], write=False)

    def run(self, args: GitShowArgs, ctx: ToolContext) -> ToolResult:
        directory, top = _repo(ctx, args.repo, write=False)
        rev = _no_option(args.rev, "revision")
        if args.path:
            absolute = Path(_paths(ctx, [args.path], write=False)[0])
            try:
                rel = absolute.relative_to(top).as_posix()
            except ValueError:
                raise PolicyDeniedError(f"{args.path} is outside the repository {top}") from None
            cmd = ["show", "--no-textconv", f"{rev}:{rel}"]
        else:
            cmd = ["show", "--no-ext-diff", "--no-textconv", "--no-color"]
            if args.stat:
                cmd.append("--stat")
            cmd += [rev, "--"]
        proc = _run(ctx, directory, cmd)
        return ToolResult(content=_text(proc, ""), truncated=proc.truncated, data={"rev": rev})


# ---------------------------------------------------------------------- branch
class GitBranchArgs(_RepoArgs):
    action: Literal["list", "create", "switch"] = Field(default="list")
    name: str | None = Field(default=None, description="Branch to create or switch to.")
    start_point: str | None = Field(default=None, description="Where a new branch starts.")

    @field_validator("name", "start_point")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        return value if value is None else _no_option(value, "branch name")


class GitBranch(Tool[GitBranchArgs]):
    name = "git_branch"
    description = (
        "List branches (action=list), create one (action=create, name, optional "
        "start_point) or switch to one (action=switch, name). Never forces: switching with "
        "conflicting local changes fails instead of discarding them."
    )
    args_model = GitBranchArgs
    risk = Risk.WRITE
    path_args = ("repo",)

    def assess(self, args: GitBranchArgs, ctx: ToolContext) -> Assessment:
        if args.action != "list" and not args.name:
            raise PolicyDeniedError(f"action={args.action} needs a branch name")
        return _assess_paths(ctx, args.repo, [], write=args.action != "list")

    def run(self, args: GitBranchArgs, ctx: ToolContext) -> ToolResult:
        write = args.action != "list"
        directory, _ = _repo(ctx, args.repo, write=write)
        if args.action == "list":
            fmt = "%(HEAD)%00%(refname:short)%00%(objectname:short)%00%(subject)"
            proc = _run(ctx, directory, ["branch", "--list", f"--format={fmt}"])
            branches = []
            for line in proc.stdout.splitlines():
                head, name, sha, subject = [*line.split("\0"), "", "", ""][:4]
                branches.append(
                    {"name": name, "current": head == "*", "sha": sha, "subject": subject}
                )
            content = "\n".join(
                f"{'*' if b['current'] else ' '} {b['name']} {b['sha']} {b['subject']}"
                for b in branches
            )
            return ToolResult(content=content or "no branches yet", data={"branches": branches})
        assert args.name is not None
        _run(ctx, directory, ["check-ref-format", "--branch", args.name])
        if args.action == "create":
            cmd = ["branch", "--", args.name]
            if args.start_point:
                cmd.append(args.start_point)
            _run(ctx, directory, cmd, write=True)
            return ToolResult(content=f"created branch {args.name}", data={"branch": args.name})
        proc = _run(ctx, directory, ["switch", "--no-guess", args.name], write=True)
        return ToolResult(
            content=f"switched to {args.name}\n{proc.stderr.strip()}".strip(),
            data={"branch": args.name},
        )


# ---------------------------------------------------------------------- add
class GitAddArgs(_RepoArgs):
    paths: list[str] = Field(min_length=1, description="Files or directories to stage.")


class GitAdd(Tool[GitAddArgs]):
    name = "git_add"
    description = "Stage files (paths inside the workspace) for the next commit."
    args_model = GitAddArgs
    risk = Risk.WRITE
    path_args = ("repo", "paths")

    def assess(self, args: GitAddArgs, ctx: ToolContext) -> Assessment:
        return _assess_paths(ctx, args.repo, args.paths, write=True)

    def run(self, args: GitAddArgs, ctx: ToolContext) -> ToolResult:
        directory, _ = _repo(ctx, args.repo, write=True)
        paths = _paths(ctx, args.paths, write=True)
        _run(ctx, directory, ["add", "--", *paths], write=True)
        staged = _run(ctx, directory, ["diff", "--cached", "--name-only", "-z"]).stdout
        names = [n for n in staged.split("\0") if n]
        return ToolResult(
            content=f"staged; the index now differs from HEAD in {len(names)} file(s)",
            data={"staged": names},
        )


# ---------------------------------------------------------------------- commit
class GitCommitArgs(_RepoArgs):
    message: str = Field(min_length=1, description="The commit message (required).")
    allow_empty: bool = Field(default=False, description="Commit even with nothing staged.")

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the commit message must not be blank")
        return value


class GitCommit(Tool[GitCommitArgs]):
    name = "git_commit"
    description = (
        "Commit the staged changes with a message. Hooks run as usual; there is no amend, "
        "no --no-verify and no force."
    )
    args_model = GitCommitArgs
    risk = Risk.WRITE
    path_args = ("repo",)

    def assess(self, args: GitCommitArgs, ctx: ToolContext) -> Assessment:
        result = _assess_paths(ctx, args.repo, [], write=True)
        if not ctx.policy.allow_commit:
            result = result.merge(
                Assessment.ask(
                    "creates a commit (tools.allow_commit = true lets git_commit run "
                    "without asking)"
                )
            )
        return result

    def run(self, args: GitCommitArgs, ctx: ToolContext) -> ToolResult:
        directory, _ = _repo(ctx, args.repo, write=True)
        cmd = ["commit", "--file=-", "--cleanup=strip"]
        if args.allow_empty:
            cmd.append("--allow-empty")
        else:
            staged = _run(ctx, directory, ["diff", "--cached", "--quiet"], check=False)
            if staged.exit_code == 0:
                raise GitError(
                    "nothing is staged to commit",
                    hint="stage changes with git_add first (or set allow_empty=true)",
                    code="tool.git.nothing_staged",
                )
        proc = _launch(ctx, directory, cmd, write=True, stdin=args.message.encode("utf-8"))
        if proc.exit_code != 0:
            message = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            hint = None
            if any("user.email" in m or "Author identity" in m for m in message):
                hint = "set git user.name and user.email (git config --global ...)"
            raise GitError(f"git commit failed: {message[-1] if message else ''}", hint=hint)
        sha = _run(ctx, directory, ["rev-parse", "HEAD"]).stdout.strip()
        return ToolResult(content=f"committed {sha[:10]}", data={"sha": sha})
