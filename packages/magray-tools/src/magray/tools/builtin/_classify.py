"""Judge a shell command: ``allow`` (read-only), ``deny`` (destructive) or ``ask``.

The command is tokenized (quotes removed as the shell would), split at
``;``, ``&&``, ``||``, pipes, ``&``, subshell parentheses and newlines, and
every simple command is judged on its own; command substitutions are judged
too. Wrappers that hide the real program (``env``, ``nice``, ``timeout``,
``xargs``, ``bash -c``, ``eval``, ``find -exec``, ...) are unwrapped; inline
code (``python -c``, ``node -e``) and anything unknown is ``ask``. The
verdict of the whole command is the strictest verdict of its parts.

This is a guard against accidents and naive prompt injection, not a proof:
docs/tools.md lists what it cannot see.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from magray.tools._model import Action
from magray.tools.builtin._cmdjudge import (
    Judge,
    as_path,
    is_interpreter,
    judge_read_args,
    judge_redirect,
)
from magray.tools.builtin._cmdprograms import (
    judge_cd,
    judge_git,
    judge_perm,
    judge_rm,
    judge_writer,
)
from magray.tools.builtin._cmdtables import (
    ASSIGN,
    DANGEROUS_ASSIGN,
    DISK_TOOLS,
    DOWNLOADERS,
    FORK_BOMB,
    FUNCTION_DEF,
    INTERPRETERS,
    KNOWN_PROGRAMS,
    MAX_DEPTH,
    POWER,
    PRIVILEGE,
    READ_ONLY,
    SHELLS,
    SIMPLE_SED,
    SIMPLE_WRAPPERS,
    SYSTEM_DIRS,
    WRAPPER_NAMES,
)
from magray.tools.builtin._cmdwrappers import judge_find, judge_wrapper
from magray.tools.builtin._shlex import (
    REDIRECTIONS,
    SEPARATORS,
    Op,
    ShellSyntaxError,
    Word,
    tokenize,
)

if TYPE_CHECKING:
    from magray.tools._policy import Policy

__all__ = ["Verdict", "classify"]


@dataclass(frozen=True)
class Verdict:
    """The judgement of a whole command.

    Attributes:
        action: The strictest action of all parts.
        reason: Why (the reasons of the parts with that action, joined).
        parts: ``(simple command, action, reason)`` for every part judged.
        needs_shell: The command uses shell syntax (operators, redirections,
            expansions, substitutions, globs) that only a real shell performs.
    """

    action: Action
    reason: str
    parts: tuple[tuple[str, Action, str], ...] = ()
    needs_shell: bool = False
    writes: bool = False
    commands: tuple[str, ...] = ()
    paths: tuple[Path, ...] = ()

    @property
    def read_only(self) -> bool:
        """Allowed and writes nothing (not even inside the workspace)."""
        return self.action is Action.ALLOW and not self.writes


def classify(command: str, *, policy: Policy | None = None, cwd: Path | None = None) -> Verdict:
    """Judge ``command``; with ``policy``/``cwd``, path arguments are checked against its roots."""
    judge = Judge(policy, cwd, Path(os.path.expanduser("~")), _judge_argv, _judge_command)
    _judge_command(judge, command, 0)
    if not judge.parts:
        return Verdict(Action.DENY, "empty command", ())
    worst = max((a for _, a, _ in judge.parts), key=lambda a: a.rank)
    reasons = []
    for text, action, reason in judge.parts:
        if action is worst and reason not in reasons:
            reasons.append(f"{reason} [{text}]" if worst is not Action.ALLOW else reason)
    return Verdict(
        worst,
        "; ".join(reasons[:4]),
        tuple(judge.parts),
        judge.needs_shell,
        judge.writes,
        tuple(judge.commands),
        tuple(judge.paths),
    )


def _judge_command(judge: Judge, command: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        judge.add(command[:60], Action.ASK, "too deeply nested to judge")
        return
    if "\x00" in command:
        judge.add("<NUL>", Action.DENY, "command contains a NUL byte")
        return
    if FORK_BOMB.search(command):
        judge.add(command[:60], Action.DENY, "fork bomb")
        return
    if FUNCTION_DEF.search(command):
        judge.needs_shell = True
        judge.add(command[:60], Action.ASK, "defines a shell function")
    try:
        tokens = tokenize(command)
    except ShellSyntaxError as exc:
        judge.add(command[:60], Action.ASK, f"cannot parse the command ({exc})")
        return
    pipeline: list[list[Word | Op]] = [[]]
    for tok in tokens:
        if isinstance(tok, Op) and tok.text in SEPARATORS:
            judge.needs_shell = True
            if tok.text in {"|", "|&"}:
                pipeline.append([])
                continue
            _judge_pipeline(judge, pipeline, depth)
            pipeline = [[]]
            continue
        pipeline[-1].append(tok)
    _judge_pipeline(judge, pipeline, depth)


def _judge_pipeline(judge: Judge, stages: list[list[Word | Op]], depth: int) -> None:
    stages = [s for s in stages if s]
    names = [_command_name(s) for s in stages]
    for i, name in enumerate(names):
        if name in DOWNLOADERS and any(
            n in SHELLS | INTERPRETERS | PRIVILEGE for n in names[i + 1 :]
        ):
            judge.add(" | ".join(n or "?" for n in names), Action.DENY,
                      "pipes downloaded content into an interpreter (curl | sh)")  # fmt: skip
            return
    for stage in stages:
        _judge_simple(judge, stage, depth)


def _command_name(stage: list[Word | Op]) -> str | None:
    for tok in stage:
        if isinstance(tok, Word):
            if ASSIGN.match(tok.text) and not tok.quoted:
                continue
            name = os.path.basename(tok.text)
            if name in SIMPLE_WRAPPERS or name in {"env", "timeout"} | PRIVILEGE:
                continue
            return name
    return None


def _judge_simple(judge: Judge, stage: list[Word | Op], depth: int) -> None:
    words: list[Word] = []
    redirects: list[tuple[str, Word | None]] = []
    i = 0
    while i < len(stage):
        tok = stage[i]
        if isinstance(tok, Op):
            if tok.text in REDIRECTIONS:
                judge.needs_shell = True
                target = stage[i + 1] if i + 1 < len(stage) else None
                redirects.append((tok.text, target if isinstance(target, Word) else None))
                i += 2
                continue
            i += 1
            continue
        words.append(tok)
        i += 1
    text = " ".join(w.text for w in words)[:80] or "(redirection)"
    for word in words:
        if word.dynamic or word.glob:
            judge.needs_shell = True
        for body in word.substitutions:
            judge.add(text, Action.ASK, "uses command substitution")
            _judge_command(judge, body, depth + 1)
    for op, target in redirects:
        judge_redirect(judge, text, op, target)
    _judge_argv(judge, words, text, depth)


def _judge_argv(judge: Judge, words: list[Word], text: str, depth: int) -> None:
    # Leading assignments (FOO=bar cmd) and shell keywords.
    while words and ASSIGN.match(words[0].text) and not words[0].quoted:
        if DANGEROUS_ASSIGN.match(words[0].text):
            judge.add(
                text, Action.ASK, f"sets {words[0].text.split('=')[0]}, which changes what runs"
            )
        judge.needs_shell = True
        words = words[1:]
    while words and words[0].text in {"!", "{", "}", "then", "do", "else", "if", "elif", "while",
                                      "until", "fi", "done", "esac"}:  # fmt: skip
        judge.needs_shell = True
        words = words[1:]
    if not words:
        return
    head = words[0]
    if head.text in {"for", "case", "select", "function", "coproc", "trap", "source", "."}:
        judge.needs_shell = True
        judge.add(text, Action.ASK, f"shell construct '{head.text}'")
        return
    if head.dynamic or head.glob:
        judge.add(text, Action.ASK, "the program name is computed at run time")
        return
    argv = [w.text for w in words]
    name = os.path.basename(argv[0])
    args = argv[1:]
    arg_words = words[1:]
    judge.note(argv)
    before = len(judge.parts)
    _judge_program(judge, words, name, argv, args, arg_words, text, depth)
    if (
        name not in WRAPPER_NAMES
        and max((a.rank for _, a, _ in judge.parts[before:]), default=0) >= Action.ASK.rank
    ):
        _scan_inner(judge, arg_words, text, depth)


def _scan_inner(judge: Judge, words: list[Word], text: str, depth: int) -> None:
    """A command that asks anyway: judge any program it may run among its arguments.

    ``strace -f rm -rf /``, ``unshare -r rm -rf ~``, ``script -qc 'rm -rf /'``:
    whatever the outer program is, an inner command is never judged milder
    than it would be alone (the verdict is the strictest part).
    """
    if depth >= MAX_DEPTH:
        return
    for i, word in enumerate(words):
        value = (
            word.text.split("=", 1)[1]
            if word.text.startswith("-") and "=" in word.text
            else word.text
        )
        first = os.path.basename(value.split(" ", 1)[0]) if value else ""
        if first not in KNOWN_PROGRAMS:
            continue
        if " " in value:
            _judge_command(judge, value, depth + 1)
        elif value == word.text:
            _judge_argv(judge, words[i:], text, depth + 1)
            return


def _judge_program(  # noqa: PLR0917 (one decision table)
    judge: Judge,
    words: list[Word],
    name: str,
    argv: list[str],
    args: list[str],
    arg_words: list[Word],
    text: str,
    depth: int,
) -> None:
    if "/" in argv[0] and not any(Path(argv[0]).is_relative_to(d) for d in SYSTEM_DIRS):
        judge.add(text, Action.ASK, f"runs the program {argv[0]} (not a system program)")
        return
    if name in {"cd", "pushd"}:
        judge_cd(judge, args, text)
        return
    if name in PRIVILEGE:
        judge.add(text, Action.DENY, f"runs as another user ({name})")
        return
    if judge_wrapper(judge, name, args, arg_words, text, depth):
        return
    if is_interpreter(name):
        if args in (["--version"], ["-V"], ["-v"]) and name not in {"awk", "gawk", "mawk", "nawk"}:
            judge.add(text, Action.ALLOW, "prints a version")
            return
        inline = {"-c", "-e", "-E", "--eval", "-p", "--print", "-r", "-x"} & set(args)
        what = "inline code" if inline or name.endswith("awk") else "a script"
        judge.add(text, Action.ASK, f"{name} runs {what} that cannot be checked")
        return
    if name == "rm":
        judge_rm(judge, args, text)
        return
    if name in DISK_TOOLS or name.startswith(("mkfs.", "mkfs", "mke2fs")):
        judge.add(text, Action.DENY, f"{name} formats or repartitions disks")
        return
    if name == "dd":
        out = next((a[3:] for a in args if a.startswith("of=")), None)
        if out is not None and as_path(judge, out).is_relative_to("/dev") and out != "/dev/null":
            judge.add(text, Action.DENY, f"dd writes to the device {out}")
        else:
            judge.add(text, Action.ASK, "dd copies raw data")
        return
    if name == "shred":
        judge.add(text, Action.DENY if any(a.startswith("/dev") for a in args) else Action.ASK,
                  "shred destroys data")  # fmt: skip
        return
    if (
        name in POWER
        or (name == "init" and args[:1] in (["0"], ["6"]))
        or (name == "systemctl" and set(args) & {"poweroff", "reboot", "halt", "kexec", "suspend"})
    ):
        judge.add(text, Action.DENY, "shuts down or reboots the machine")
        return
    if name in {"kill", "pkill", "killall", "killall5"}:
        if name == "killall5" or "-1" in args:
            judge.add(text, Action.DENY, "kills every process")
        else:
            judge.add(text, Action.ASK, f"{name} stops processes")
        return
    if name in {"chmod", "chown", "chgrp", "chattr", "setfacl"}:
        judge_perm(judge, name, args, text)
        return
    if name in {"cp", "mv", "install", "ln", "tee", "rsync", "touch", "mkdir", "truncate"}:
        judge_writer(judge, name, args, text)
        return
    if name == "crontab":
        judge.add(text, Action.ASK, "changes scheduled jobs")
        return
    if name == "find":
        judge_find(judge, arg_words, text, depth)
        return
    if name == "git":
        judge_git(judge, args, text)
        return
    if name == "sed":
        scripts = [a for a in args if not a.startswith("-")]
        in_place = any(a.startswith(("-i", "--in-place")) for a in args)
        if not in_place and scripts and SIMPLE_SED.match(scripts[0]):
            judge_read_args(judge, scripts[1:], text, "sed (print/substitute to stdout)")
        else:
            judge.add(text, Action.ASK, "sed script may write files")
        return
    if name in {"sort", "uniq"} and (
        any(
            a.startswith(("--output", "--compress-program"))
            or (a.startswith("-") and not a.startswith("--") and "o" in a)
            for a in args
        )
        or (name == "uniq" and len([a for a in args if not a.startswith("-")]) > 1)
    ):
        judge.add(text, Action.ASK, f"{name} writes a file")
        return
    if name in {"xxd"} and "-r" in args:
        judge.add(text, Action.ASK, "xxd -r writes binary data")
        return
    if name in {"pip", "pip3"} and args[:1] in (["list"], ["show"], ["freeze"], ["--version"]):
        judge.add(text, Action.ALLOW, "lists Python packages")
        return
    if name == "ps" and any(
        "e" in a.lstrip("-") for a in args if not a.startswith("--")
    ):  # BSD 'e' / 'eww': the environment of other processes (API keys included)
        judge.add(text, Action.ASK, "ps e shows other processes' environments")
        return
    if name in READ_ONLY:
        if name not in {"echo", "printf", "test", "[", "true", "false"} and any(
            w.dynamic for w in arg_words
        ):
            judge.add(text, Action.ASK, f"{name} reads a path computed at run time")
            return
        judge_read_args(judge, args, text, f"{name} is read-only")
        return
    if args in (["--version"], ["-V"], ["version"]):
        judge.add(text, Action.ALLOW, "prints a version")
        return
    judge.add(text, Action.ASK, f"{name} is not known to be read-only")
