"""The shell classifier's state and its path checks.

A :class:`Judge` collects the verdict of every part of one command line and
follows ``cd``; the functions here resolve the paths a command names and check
them against the policy's roots. Nested commands go back to :mod:`._classify`
through :meth:`Judge.argv` and :meth:`Judge.command`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from magray.tools._model import Action
from magray.tools.builtin._cmdtables import INTERPRETERS, SYSTEM_DIRS
from magray.tools.builtin._shlex import Word
from magray.tools.errors import PolicyDeniedError

if TYPE_CHECKING:
    from magray.tools._policy import Policy

UNKNOWN_DIR = Path("/(directory unknown after cd)")


@dataclass
class Judge:
    """The state of judging one command line (see :func:`magray.tools.builtin.classify`).

    Attributes:
        policy: The roots paths are checked against (None: every path outside asks).
        cwd: Where relative paths start; a ``cd`` moves it.
        home: The user's home directory.
        judge_argv: Judges a nested simple command (``env X``, ``find -exec X``).
        judge_command: Judges a nested command line (``bash -c "..."``, ``eval``).
        parts: ``(simple command, action, reason)`` for every part judged so far.
    """

    policy: Policy | None
    cwd: Path | None
    home: Path
    judge_argv: Callable[[Judge, list[Word], str, int], None]
    judge_command: Callable[[Judge, str, int], None]
    parts: list[tuple[str, Action, str]] = field(default_factory=list)
    needs_shell: bool = False
    writes: bool = False
    commands: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    def note(self, argv: list[str]) -> None:
        """Record a parsed simple command (what user rules are matched against)."""
        text = " ".join(argv)
        if text and text not in self.commands:
            self.commands.append(text)

    def add(self, text: str, action: Action, reason: str) -> Action:
        self.parts.append((text, action, reason))
        return action

    def argv(self, words: list[Word], text: str, depth: int) -> None:
        """Judge the simple command ``words`` run by the part ``text``."""
        self.judge_argv(self, words, text, depth)

    def command(self, command: str, depth: int) -> None:
        """Judge the command line ``command`` run by an outer part."""
        self.judge_command(self, command, depth)


def as_path(judge: Judge, raw: str) -> Path:
    expanded = os.path.expanduser(raw) if raw.startswith("~") else raw
    path = Path(expanded)
    if not path.is_absolute():
        path = (judge.cwd or Path.cwd()) / path
    return Path(os.path.normpath(path))


def inside_write_roots(judge: Judge, path: Path) -> bool:
    judge.paths.append(path)
    if judge.policy is None:
        return False
    try:
        judge.policy.check_write(path)
    except PolicyDeniedError:
        return False
    return True


def check_read_path(judge: Judge, text: str, raw: str, path: Path) -> None:
    judge.paths.append(path)
    if judge.policy is None:
        return
    try:
        judge.policy.check_read(path)
    except PolicyDeniedError:
        judge.add(text, Action.ASK, f"reads {raw} outside the workspace")


def looks_like_path(arg: str) -> bool:
    return arg.startswith(("/", "~")) or arg == ".." or arg.startswith("../") or "/../" in arg


def judge_redirect(judge: Judge, text: str, op: str, target: Word | None) -> None:
    if op in {"<<", "<<<"}:
        judge.add(text, Action.ASK, "uses a here-document")
        return
    if op in {">&", "<&"} and target is not None and (target.text.isdigit() or target.text == "-"):
        return  # fd duplication such as 2>&1
    if target is None:
        judge.add(text, Action.ASK, f"redirection {op} without a target")
        return
    if target.dynamic:
        judge.add(text, Action.ASK, f"redirects to a computed path ({target.text})")
        return
    path = as_path(judge, target.text)
    if op == "<":
        check_read_path(judge, text, target.text, path)
        return
    if target.text in {"/dev/null", "/dev/stdout", "/dev/stderr"}:
        return
    if path.is_relative_to("/dev"):
        judge.add(text, Action.DENY, f"writes to the device {target.text}")
    elif any(path.is_relative_to(d) for d in SYSTEM_DIRS):
        judge.add(text, Action.DENY, f"writes to the system path {target.text}")
    elif inside_write_roots(judge, path):
        judge.writes = True
        judge.add(text, Action.ALLOW, f"writes {target.text} inside the workspace")
    else:
        judge.add(text, Action.ASK, f"writes to {target.text} outside the workspace")


def option_value(args: list[str], names: tuple[str, ...]) -> str | None:
    """The value of the first option in ``names`` (``-c V``, ``-cV``, ``--name=V``)."""
    for i, arg in enumerate(args):
        for opt in names:
            if arg == opt:
                return args[i + 1] if i + 1 < len(args) else ""
            if opt.startswith("--") and arg.startswith(opt + "="):
                return arg[len(opt) + 1 :]
            if not opt.startswith("--") and arg.startswith(opt) and len(arg) > len(opt):
                return arg[len(opt) :]
    return None


def skip_options(words: list[Word], with_value: frozenset[str]) -> list[Word]:
    i = 0
    while i < len(words):
        text = words[i].text
        if text == "--":
            return words[i + 1 :]
        if not text.startswith("-") or text == "-":
            break
        i += 2 if text in with_value else 1
    return words[i:]


def is_interpreter(name: str) -> bool:
    if name in INTERPRETERS:
        return True
    return bool(re.match(r"^(python|pypy|perl|ruby|node|php|lua)[0-9.]*$", name))


def path_candidates(judge: Judge, arg: str) -> list[str]:
    """The parts of one argument that may name a file: itself, ``--opt=V``, ``-xV``."""
    if arg.startswith("--"):
        return [arg.split("=", 1)[1]] if "=" in arg else []
    if arg.startswith("-") and len(arg) > 2:
        return [arg[2:]]  # an attached short option value: sort -oFILE, date -fFILE
    if arg.startswith("-"):
        return []
    return [arg]


def names_a_file(judge: Judge, value: str) -> bool:
    if not value:
        return False
    if looks_like_path(value) or value == "." or ".." in Path(value).parts:
        return True
    if judge.cwd is UNKNOWN_DIR:
        return True
    base = judge.cwd or Path.cwd()
    return os.path.lexists(base / value)  # relative names, symlinks included


def judge_read_args(judge: Judge, args: list[str], text: str, reason: str) -> None:
    for arg in args:
        for value in path_candidates(judge, arg):
            if names_a_file(judge, value):
                before = len(judge.parts)
                check_read_path(judge, text, value, as_path(judge, value))
                if len(judge.parts) > before:
                    return
    judge.add(text, Action.ALLOW, reason)
