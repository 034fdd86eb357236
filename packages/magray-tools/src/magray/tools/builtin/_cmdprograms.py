"""How the shell classifier judges programs that change files or repositories.

``cd`` (followed for later parts), ``rm``, ``chmod``/``chown``, the writers
(``cp``, ``mv``, ``tee``, ``touch``, ...) and ``git`` with its global options
taken apart. None of them runs another command, so none recurses.
"""

from __future__ import annotations

from pathlib import Path

from magray.tools._model import Action
from magray.tools.builtin._cmdjudge import (
    UNKNOWN_DIR,
    Judge,
    as_path,
    check_read_path,
    inside_write_roots,
    judge_read_args,
)
from magray.tools.builtin._cmdtables import CRITICAL_DIRS, GIT_READ_ONLY, HOME_VAR, SYSTEM_DIRS


def judge_cd(judge: Judge, args: list[str], text: str) -> None:
    """``cd`` moves where later parts' relative paths start: follow it."""
    targets = [a for a in args if not a.startswith("-") or a == "-"]
    if not targets or targets[0] in {"-", "~"} or targets[0].startswith("$"):
        judge.cwd = UNKNOWN_DIR  # later relative paths resolve outside every root: they ask
        judge.add(text, Action.ASK, "cd to a directory that cannot be checked")
        return
    path = as_path(judge, targets[0])
    judge.cwd = path
    before = len(judge.parts)
    check_read_path(judge, text, targets[0], path)
    if len(judge.parts) == before:
        judge.add(text, Action.ALLOW, "cd inside the workspace")


def rm_flags(args: list[str]) -> tuple[bool, bool, list[str]]:
    recursive = force = False
    targets: list[str] = []
    options_done = False
    for arg in args:
        if not options_done and arg == "--":
            options_done = True
        elif not options_done and arg.startswith("--"):
            recursive |= arg == "--recursive"
            force |= arg == "--force"
            if arg == "--no-preserve-root":
                recursive = force = True
                targets.append("/")
        elif not options_done and arg.startswith("-") and arg != "-":
            recursive |= bool(set(arg[1:]) & {"r", "R"})
            force |= "f" in arg[1:]
        else:
            targets.append(arg)
    return recursive, force, targets


def is_critical(judge: Judge, raw: str) -> bool:
    if raw in {"~", "~/", "$HOME", "${HOME}", "$HOME/", "${HOME}/", "*", "/*", "~/*", "$HOME/*",
               ".", "./", "..", "../", ".*", "/.*"}:  # fmt: skip
        return True
    raw = HOME_VAR.sub(str(judge.home), raw)
    path = as_path(judge, raw.rstrip("*") or "/")
    if path in CRITICAL_DIRS or path == judge.home or judge.home.is_relative_to(path):
        return True
    if path.parent in {Path("/home"), Path("/Users")}:  # somebody's home directory
        return True
    if judge.policy is not None:
        return any(root.is_relative_to(path) for root in judge.policy.write_roots)
    return False


def judge_rm(judge: Judge, args: list[str], text: str) -> None:
    recursive, _force, targets = rm_flags(args)
    critical = [t for t in targets if is_critical(judge, t)]
    if recursive and critical:
        judge.add(text, Action.DENY, f"recursive delete of {critical[0]}")
        return
    if any(as_path(judge, t).is_relative_to(d) for t in targets for d in SYSTEM_DIRS):
        judge.add(text, Action.DENY, "deletes system files")
        return
    judge.add(text, Action.ASK, "deletes files")


def judge_perm(judge: Judge, name: str, args: list[str], text: str) -> None:
    recursive = any(a in {"-R", "--recursive"} or (a.startswith("-") and "R" in a) for a in args)
    targets = [a for a in args if not a.startswith("-")][1:]
    if (recursive and any(is_critical(judge, t) for t in targets)) or any(
        as_path(judge, t).is_relative_to(d) for t in targets for d in SYSTEM_DIRS
    ):
        judge.add(text, Action.DENY, f"{name} changes permissions of system or home directories")
        return
    judge.add(text, Action.ASK, f"{name} changes permissions")


def judge_writer(judge: Judge, name: str, args: list[str], text: str) -> None:
    targets = [a for a in args if not a.startswith("-")]
    paths = [as_path(judge, t) for t in targets]
    judge.paths.extend(paths)
    if any(p.is_relative_to(d) for p in paths for d in SYSTEM_DIRS) or any(
        p.is_relative_to("/dev") and str(p) != "/dev/null" for p in paths
    ):
        judge.add(text, Action.DENY, f"{name} writes to a system path")
        return
    if name == "mv" and any(is_critical(judge, t) for t in targets[:-1]):
        judge.add(text, Action.DENY, "moves a system or home directory")
        return
    if (
        name in {"tee", "touch", "mkdir"}
        and paths
        and all(inside_write_roots(judge, p) for p in paths)
    ):
        judge.writes = True
        judge.add(text, Action.ALLOW, f"{name} writes inside the workspace")
        return
    judge.add(text, Action.ASK, f"{name} writes files")


_GIT_VALUE_OPTIONS = frozenset(
    {"-C", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--list-cmds",
     "--attr-source"}
)  # fmt: skip


_GIT_DIR_OPTIONS = frozenset({"-C", "--git-dir", "--work-tree"})


def judge_git(judge: Judge, args: list[str], text: str) -> None:
    """git with its global options taken apart; rules see ``git SUB ARGS``."""
    i = 0
    dirs: list[str] = []
    runs_other = False  # -c, --config-env and --exec-path can name programs git runs
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        key, has_value, value = arg.partition("=")
        if arg in {"-c", "--config-env"}:
            runs_other = True
            i += 2
            continue
        if key in {"--config-env", "--exec-path"} or (
            arg.startswith("-c") and not arg.startswith("--")
        ):
            runs_other = True
            i += 1
            continue
        if arg in _GIT_VALUE_OPTIONS:
            if arg in _GIT_DIR_OPTIONS and i + 1 < len(args):
                dirs.append(args[i + 1])
            i += 2
            continue
        if has_value and key in _GIT_DIR_OPTIONS:
            dirs.append(value)
        i += 1
    if i < len(args):
        judge.note(["git", *args[i:]])
    if runs_other:
        judge.add(text, Action.ASK, "git -c/--config-env/--exec-path can change what git runs")
        return
    for raw in dirs:
        before = len(judge.parts)
        check_read_path(judge, text, raw, as_path(judge, raw))
        if len(judge.parts) > before:
            return
    if i >= len(args):
        judge.add(text, Action.ALLOW, "git help")
        return
    sub, rest = args[i], args[i + 1 :]
    if "--force" in rest or "-f" in rest or any(a.startswith("--force") for a in rest):
        judge.add(text, Action.ASK, f"git {sub} with --force")
        return
    if sub in {"diff", "log", "show", "grep", "blame", "whatchanged"} and any(
        a.startswith(("--output", "--ext-diff", "--open-files-in-pager", "--textconv"))
        or a in {"-o"}
        or (sub == "grep" and a.startswith("-O"))
        for a in rest
    ):
        judge.add(text, Action.ASK, f"git {sub} writing a file or running another program")
        return
    listing = all(a.startswith("-") for a in rest) and not {
        "-d", "-D", "-m", "-M", "--delete", "-c", "-C", "--move", "--copy"
    } & set(rest)  # fmt: skip
    if (
        sub in GIT_READ_ONLY
        or (sub in {"branch", "tag"} and listing)
        or (sub == "remote" and rest in ([], ["-v"]))
        or (sub == "stash" and rest[:1] == ["list"])
        or (sub == "config" and rest[:1] in (["--get"], ["--list"], ["-l"], ["--get-all"]))
    ):  # fmt: skip
        saved = judge.cwd
        if dirs and not dirs[0].startswith("--"):
            judge.cwd = as_path(judge, dirs[0])
        judge_read_args(judge, [a for a in rest if a != "--"], text, f"git {sub} is read-only")
        judge.cwd = saved
        return
    judge.add(text, Action.ASK, f"git {sub} changes repository state")
