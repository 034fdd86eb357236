"""Git tools: the git CLI through subprocess (argv, never a shell), inside the sandbox.

Every revision or branch argument is refused if it starts with ``-`` (option
injection such as ``--output=/etc/x``); paths go after ``--`` and must lie
inside the roots. Tools that change state (add, commit, branch create/switch)
need the repository's top level inside a write root. No tool offers
``--force``, ``--amend``, ``--no-verify`` or history rewriting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from magray.tools._model import Assessment, Risk, Tool, ToolContext, ToolResult
from magray.tools.builtin._gitrun import (
    RepoArgs,
    assess_paths,
    checked_paths,
    launch,
    no_option,
    repo_dirs,
    run_git,
    text_or,
)
from magray.tools.errors import GitError, PolicyDeniedError

__all__ = ["GitAdd", "GitBranch", "GitCommit", "GitDiff", "GitLog", "GitShow", "GitStatus"]


# ---------------------------------------------------------------------- status
class GitStatusArgs(RepoArgs):
    pass


class GitStatus(Tool[GitStatusArgs]):
    name = "git_status"
    description = "Show the branch and changed, staged and untracked files of a git repository."
    args_model = GitStatusArgs
    risk = Risk.READ
    path_args = ("repo",)

    def assess(self, args: GitStatusArgs, ctx: ToolContext) -> Assessment:
        return assess_paths(ctx, args.repo, [], write=False)

    def run(self, args: GitStatusArgs, ctx: ToolContext) -> ToolResult:
        directory, top = repo_dirs(ctx, args.repo, write=False)
        proc = run_git(ctx, directory, ["status", "--porcelain=v1", "--branch", "-z"])
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
class GitDiffArgs(RepoArgs):
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
            no_option(args.ref, "revision")
        return assess_paths(ctx, args.repo, args.paths, write=False)

    def run(self, args: GitDiffArgs, ctx: ToolContext) -> ToolResult:
        directory, _ = repo_dirs(ctx, args.repo, write=False)
        cmd = ["diff", "--no-ext-diff", "--no-textconv", "--no-color", f"-U{args.context}"]
        if args.staged:
            cmd.append("--cached")
        if args.stat:
            cmd.append("--stat")
        if args.ref:
            cmd.append(no_option(args.ref, "revision"))
        cmd += ["--", *checked_paths(ctx, args.paths, write=False)]
        proc = run_git(ctx, directory, cmd)
        return ToolResult(
            content=text_or(proc, "no differences"),
            truncated=proc.truncated,
            data={"diff": proc.stdout, "empty": not proc.stdout.strip()},
        )


# ---------------------------------------------------------------------- log
class GitLogArgs(RepoArgs):
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
            no_option(args.ref, "revision")
        return assess_paths(ctx, args.repo, args.paths, write=False)

    def run(self, args: GitLogArgs, ctx: ToolContext) -> ToolResult:
        directory, _ = repo_dirs(ctx, args.repo, write=False)
        fmt = _SEP.join(["%H", "%an", "%ae", "%aI", "%s"]) + _END
        cmd = ["log", f"--max-count={args.max_count}", f"--format={fmt}", "--no-color"]
        if args.ref:
            cmd.append(no_option(args.ref, "revision"))
        cmd += ["--", *checked_paths(ctx, args.paths, write=False)]
        proc = run_git(ctx, directory, cmd, check=False)
        if proc.exit_code != 0:
            if "does not have any commits" in proc.stderr:
                return ToolResult(content="no commits yet", data={"commits": []})
            run_git(ctx, directory, cmd)  # raise the proper error
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
class GitShowArgs(RepoArgs):
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
        no_option(args.rev, "revision")
        return assess_paths(ctx, args.repo, [args.path] if args.path else [], write=False)

    def run(self, args: GitShowArgs, ctx: ToolContext) -> ToolResult:
        directory, top = repo_dirs(ctx, args.repo, write=False)
        rev = no_option(args.rev, "revision")
        if args.path:
            absolute = Path(checked_paths(ctx, [args.path], write=False)[0])
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
        proc = run_git(ctx, directory, cmd)
        return ToolResult(content=text_or(proc, ""), truncated=proc.truncated, data={"rev": rev})


# ---------------------------------------------------------------------- branch
class GitBranchArgs(RepoArgs):
    action: Literal["list", "create", "switch"] = Field(default="list")
    name: str | None = Field(default=None, description="Branch to create or switch to.")
    start_point: str | None = Field(default=None, description="Where a new branch starts.")

    @field_validator("name", "start_point")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        return value if value is None else no_option(value, "branch name")


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
        return assess_paths(ctx, args.repo, [], write=args.action != "list")

    def run(self, args: GitBranchArgs, ctx: ToolContext) -> ToolResult:
        write = args.action != "list"
        directory, _ = repo_dirs(ctx, args.repo, write=write)
        if args.action == "list":
            fmt = "%(HEAD)%00%(refname:short)%00%(objectname:short)%00%(subject)"
            proc = run_git(ctx, directory, ["branch", "--list", f"--format={fmt}"])
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
        run_git(ctx, directory, ["check-ref-format", "--branch", args.name])
        if args.action == "create":
            cmd = ["branch", "--", args.name]
            if args.start_point:
                cmd.append(args.start_point)
            run_git(ctx, directory, cmd, write=True)
            return ToolResult(content=f"created branch {args.name}", data={"branch": args.name})
        proc = run_git(ctx, directory, ["switch", "--no-guess", args.name], write=True)
        return ToolResult(
            content=f"switched to {args.name}\n{proc.stderr.strip()}".strip(),
            data={"branch": args.name},
        )


# ---------------------------------------------------------------------- add
class GitAddArgs(RepoArgs):
    paths: list[str] = Field(min_length=1, description="Files or directories to stage.")


class GitAdd(Tool[GitAddArgs]):
    name = "git_add"
    description = "Stage files (paths inside the workspace) for the next commit."
    args_model = GitAddArgs
    risk = Risk.WRITE
    path_args = ("repo", "paths")

    def assess(self, args: GitAddArgs, ctx: ToolContext) -> Assessment:
        return assess_paths(ctx, args.repo, args.paths, write=True)

    def run(self, args: GitAddArgs, ctx: ToolContext) -> ToolResult:
        directory, _ = repo_dirs(ctx, args.repo, write=True)
        paths = checked_paths(ctx, args.paths, write=True)
        run_git(ctx, directory, ["add", "--", *paths], write=True)
        staged = run_git(ctx, directory, ["diff", "--cached", "--name-only", "-z"]).stdout
        names = [n for n in staged.split("\0") if n]
        return ToolResult(
            content=f"staged; the index now differs from HEAD in {len(names)} file(s)",
            data={"staged": names},
        )


# ---------------------------------------------------------------------- commit
class GitCommitArgs(RepoArgs):
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
        result = assess_paths(ctx, args.repo, [], write=True)
        if not ctx.policy.allow_commit:
            result = result.merge(
                Assessment.ask(
                    "creates a commit (tools.allow_commit = true lets git_commit run "
                    "without asking)"
                )
            )
        return result

    def run(self, args: GitCommitArgs, ctx: ToolContext) -> ToolResult:
        directory, _ = repo_dirs(ctx, args.repo, write=True)
        cmd = ["commit", "--file=-", "--cleanup=strip"]
        if args.allow_empty:
            cmd.append("--allow-empty")
        else:
            staged = run_git(ctx, directory, ["diff", "--cached", "--quiet"], check=False)
            if staged.exit_code == 0:
                raise GitError(
                    "nothing is staged to commit",
                    hint="stage changes with git_add first (or set allow_empty=true)",
                    code="tool.git.nothing_staged",
                )
        proc = launch(ctx, directory, cmd, write=True, stdin=args.message.encode("utf-8"))
        if proc.exit_code != 0:
            message = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            hint = None
            if any("user.email" in m or "Author identity" in m for m in message):
                hint = "set git user.name and user.email (git config --global ...)"
            raise GitError(f"git commit failed: {message[-1] if message else ''}", hint=hint)
        sha = run_git(ctx, directory, ["rev-parse", "HEAD"]).stdout.strip()
        return ToolResult(content=f"committed {sha[:10]}", data={"sha": sha})
