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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from magray.tools._model import Action
from magray.tools.builtin._shlex import (
    REDIRECTIONS,
    SEPARATORS,
    Op,
    ShellSyntaxError,
    Word,
    tokenize,
)
from magray.tools.errors import PolicyDeniedError

if TYPE_CHECKING:
    from magray.tools._policy import Policy

__all__ = ["Verdict", "classify"]

_MAX_DEPTH = 6
_UNKNOWN_DIR = Path("/(directory unknown after cd)")

READ_ONLY = frozenset(
    """
    ls ll dir cat head tail wc grep egrep fgrep rg ag pwd echo printf which type whoami id
    groups date cal uname hostname stat file du df tree sort uniq cut tr diff cmp comm
    basename dirname realpath readlink printenv true false test [ seq nl od hexdump
    md5sum sha1sum sha256sum sha512sum b2sum cksum jq column fold fmt paste join rev tac
    expand unexpand cd whereis locale nproc free uptime ps pgrep lsof tty arch
    """.split()  # noqa: SIM905
)  # fmt: skip

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "fish", "csh", "tcsh", "busybox"})
INTERPRETERS = frozenset(
    {"python", "python2", "python3", "perl", "ruby", "node", "nodejs", "deno", "bun", "php",
     "lua", "luajit", "osascript", "pwsh", "powershell", "Rscript", "tclsh", "awk", "gawk",
     "mawk", "nawk", "irb", "ghci", "julia"}
)  # fmt: skip
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "nc", "ncat", "socat", "http", "xh"})
PRIVILEGE = frozenset({"sudo", "doas", "su", "pkexec", "run0", "sudoedit"})
DISK_TOOLS = frozenset(
    {"mkfs", "mke2fs", "mkswap", "wipefs", "fdisk", "sfdisk", "cfdisk", "parted", "gdisk",
     "sgdisk", "mkdosfs", "mkntfs", "blkdiscard", "cryptsetup", "zpool", "lvremove", "vgremove"}
)  # fmt: skip
POWER = frozenset({"shutdown", "reboot", "halt", "poweroff", "telinit", "kexec"})
# Wrappers that run the rest of the line: name -> options that take a value.
SIMPLE_WRAPPERS: dict[str, frozenset[str]] = {
    "nice": frozenset({"-n", "--adjustment"}),
    "nohup": frozenset(),
    "time": frozenset({"-f", "-o", "--format", "--output"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "ionice": frozenset({"-c", "-n", "-p", "--class", "--classdata"}),
    "setsid": frozenset(),
    "unbuffer": frozenset(),
    "chronic": frozenset(),
    "flock": frozenset({"-w", "-E", "--timeout", "--conflict-exit-code", "-c", "--command"}),
    "taskset": frozenset(),
}
WRAPPER_NAMES = frozenset({*SIMPLE_WRAPPERS, "env", "timeout", "watch", "xargs", "busybox", "eval"})
# Programs whose appearance among another program's arguments is judged as a command.
KNOWN_PROGRAMS = (
    READ_ONLY | SHELLS | INTERPRETERS | DOWNLOADERS | PRIVILEGE | DISK_TOOLS | POWER
    | WRAPPER_NAMES
    | {"rm", "dd", "shred", "kill", "pkill", "killall", "chmod", "chown", "chgrp", "cp", "mv",
       "install", "ln", "tee", "rsync", "touch", "mkdir", "truncate", "git", "find", "sed",
       "crontab", "systemctl", "rmdir", "unlink"}
) - {"echo", "printf", "true", "false", "test", "[", "cd"}  # fmt: skip
# Programs judged argument by argument already: no scan of their arguments for inner commands.
_JUDGED_WHOLE = READ_ONLY | SHELLS | WRAPPER_NAMES | {"git", "find", "sed", "rm", "cd", "pushd"}
SYSTEM_DIRS = tuple(
    Path(p)
    for p in ("/etc", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/sys",
              "/proc", "/var/lib", "/var/spool/cron", "/root/.ssh", "/System", "/Library")
)  # fmt: skip
CRITICAL_DIRS = frozenset(
    Path(p)
    for p in ("/", "/home", "/root", "/etc", "/usr", "/var", "/bin", "/sbin", "/lib", "/lib64",
              "/boot", "/opt", "/srv", "/sys", "/proc", "/dev", "/mnt", "/media", "/Users",
              "/System", "/Applications", "/Library")
)  # fmt: skip
GIT_READ_ONLY = frozenset(
    {"status", "diff", "log", "show", "blame", "rev-parse", "ls-files", "ls-tree", "cat-file",
     "describe", "shortlog", "grep", "rev-list", "name-rev", "whatchanged", "version", "help",
     "show-ref", "for-each-ref", "merge-base", "count-objects"}
)  # fmt: skip
_FORK_BOMB = re.compile(r"(\S+)\s*\(\s*\)\s*\{[^}]*\1\s*\|\s*\1")
_FUNCTION_DEF = re.compile(r"(^|[;&|\s])(function\s+\S+|[A-Za-z_:.][\w:.-]*\s*\(\s*\))\s*\{")
_DANGEROUS_ASSIGN = re.compile(
    r"^(PATH|LD_\w+|DYLD_\w+|BASH_ENV|ENV|IFS|PS4|PROMPT_COMMAND|PYTHONPATH|PYTHONSTARTUP|"
    r"PERL5OPT|PERL5LIB|RUBYOPT|NODE_OPTIONS|GIT_\w+|SHELLOPTS|BASHOPTS)="
)
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_HOME_VAR = re.compile(r"^\$(\{HOME\}|HOME)(?=/|$)")
_SIMPLE_SED = re.compile(r"^(\d+(,(\d+|\$))?p|\$p|s(.)(?:(?!\4).)*\4(?:(?!\4).)*\4[gIi0-9p]*)$")


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


@dataclass
class _Judge:
    policy: Policy | None
    cwd: Path | None
    home: Path
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


def classify(command: str, *, policy: Policy | None = None, cwd: Path | None = None) -> Verdict:
    """Judge ``command``; with ``policy``/``cwd``, path arguments are checked against its roots."""
    judge = _Judge(policy, cwd, Path(os.path.expanduser("~")))
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


def _judge_command(judge: _Judge, command: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        judge.add(command[:60], Action.ASK, "too deeply nested to judge")
        return
    if "\x00" in command:
        judge.add("<NUL>", Action.DENY, "command contains a NUL byte")
        return
    if _FORK_BOMB.search(command):
        judge.add(command[:60], Action.DENY, "fork bomb")
        return
    if _FUNCTION_DEF.search(command):
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


def _judge_pipeline(judge: _Judge, stages: list[list[Word | Op]], depth: int) -> None:
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
            if _ASSIGN.match(tok.text) and not tok.quoted:
                continue
            name = os.path.basename(tok.text)
            if name in SIMPLE_WRAPPERS or name in {"env", "timeout"} | PRIVILEGE:
                continue
            return name
    return None


def _judge_simple(judge: _Judge, stage: list[Word | Op], depth: int) -> None:
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
        _judge_redirect(judge, text, op, target)
    _judge_argv(judge, words, text, depth)


def _judge_redirect(judge: _Judge, text: str, op: str, target: Word | None) -> None:
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
    path = _as_path(judge, target.text)
    if op == "<":
        _check_read_path(judge, text, target.text, path)
        return
    if target.text in {"/dev/null", "/dev/stdout", "/dev/stderr"}:
        return
    if path.is_relative_to("/dev"):
        judge.add(text, Action.DENY, f"writes to the device {target.text}")
    elif any(path.is_relative_to(d) for d in SYSTEM_DIRS):
        judge.add(text, Action.DENY, f"writes to the system path {target.text}")
    elif _inside_write_roots(judge, path):
        judge.writes = True
        judge.add(text, Action.ALLOW, f"writes {target.text} inside the workspace")
    else:
        judge.add(text, Action.ASK, f"writes to {target.text} outside the workspace")


def _as_path(judge: _Judge, raw: str) -> Path:
    expanded = os.path.expanduser(raw) if raw.startswith("~") else raw
    path = Path(expanded)
    if not path.is_absolute():
        path = (judge.cwd or Path.cwd()) / path
    return Path(os.path.normpath(path))


def _inside_write_roots(judge: _Judge, path: Path) -> bool:
    judge.paths.append(path)
    if judge.policy is None:
        return False
    try:
        judge.policy.check_write(path)
    except PolicyDeniedError:
        return False
    return True


def _check_read_path(judge: _Judge, text: str, raw: str, path: Path) -> None:
    judge.paths.append(path)
    if judge.policy is None:
        return
    try:
        judge.policy.check_read(path)
    except PolicyDeniedError:
        judge.add(text, Action.ASK, f"reads {raw} outside the workspace")


def _looks_like_path(arg: str) -> bool:
    return arg.startswith(("/", "~")) or arg == ".." or arg.startswith("../") or "/../" in arg


def _judge_argv(judge: _Judge, words: list[Word], text: str, depth: int) -> None:
    # Leading assignments (FOO=bar cmd) and shell keywords.
    while words and _ASSIGN.match(words[0].text) and not words[0].quoted:
        if _DANGEROUS_ASSIGN.match(words[0].text):
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


def _scan_inner(judge: _Judge, words: list[Word], text: str, depth: int) -> None:
    """A command that asks anyway: judge any program it may run among its arguments.

    ``strace -f rm -rf /``, ``unshare -r rm -rf ~``, ``script -qc 'rm -rf /'``:
    whatever the outer program is, an inner command is never judged milder
    than it would be alone (the verdict is the strictest part).
    """
    if depth >= _MAX_DEPTH:
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
    judge: _Judge,
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
        _judge_cd(judge, args, text)
        return
    if name in PRIVILEGE:
        judge.add(text, Action.DENY, f"runs as another user ({name})")
        return
    if name == "env":
        rest = _unwrap_env(judge, arg_words, text, depth)
        if rest is None:
            return
        if not rest:
            judge.add(text, Action.ALLOW, "prints the environment")
            return
        _judge_argv(judge, rest, text, depth + 1)
        return
    if name in SIMPLE_WRAPPERS:
        if name == "command" and args[:1] in (["-v"], ["-V"]):
            judge.add(text, Action.ALLOW, "looks up a command")
            return
        rest = _skip_options(arg_words, SIMPLE_WRAPPERS[name])
        if name in {"taskset", "flock"} and rest:
            rest = rest[1:]  # the CPU mask / the lock file
        if name == "flock":
            flock_cmd = _option_value(args, ("-c", "--command"))
            if flock_cmd is not None:
                _judge_command(judge, flock_cmd, depth + 1)
                judge.add(text, Action.ASK, "flock runs a command")
                return
        if not rest:
            judge.add(text, Action.ALLOW if name in {"nice", "time"} else Action.ASK, name)
            return
        _judge_argv(judge, rest, text, depth + 1)
        return
    if name == "timeout":
        rest = _skip_options(arg_words, frozenset({"-s", "-k", "--signal", "--kill-after"}))
        if len(rest) > 1:
            _judge_argv(judge, rest[1:], text, depth + 1)
        else:
            judge.add(text, Action.ASK, "timeout without a command")
        return
    if name == "watch":
        rest = _skip_options(arg_words, frozenset({"-n", "--interval", "-d"}))
        _judge_command(judge, " ".join(w.text for w in rest), depth + 1)
        return
    if name == "xargs":
        rest = _skip_options(
            arg_words, frozenset({"-n", "-I", "-i", "-L", "-l", "-P", "-d", "-E", "-e", "-s", "-a",
                                  "--max-args", "--max-procs", "--delimiter", "--arg-file"})
        )  # fmt: skip
        arg_file = _option_value(args[: len(args) - len(rest)], ("-a", "--arg-file"))
        if arg_file is not None:  # xargs reads its arguments from this file
            before = len(judge.parts)
            _check_read_path(judge, text, arg_file, _as_path(judge, arg_file))
            if len(judge.parts) > before:
                return
        if not rest:
            judge.add(text, Action.ALLOW, "xargs echo")
            return
        _judge_argv(judge, rest, text, depth + 1)
        return
    if name == "busybox" and arg_words and not arg_words[0].text.startswith("-"):
        _judge_argv(judge, arg_words, text, depth + 1)  # busybox rm -rf / is rm -rf /
        return
    if name in SHELLS:
        _judge_shell(judge, name, arg_words, text, depth)
        return
    if name == "eval":
        judge.needs_shell = True
        _judge_command(judge, " ".join(args), depth + 1)
        judge.add(text, Action.ASK, "eval runs a computed command")
        return
    if _is_interpreter(name):
        if args in (["--version"], ["-V"], ["-v"]) and name not in {"awk", "gawk", "mawk", "nawk"}:
            judge.add(text, Action.ALLOW, "prints a version")
            return
        inline = {"-c", "-e", "-E", "--eval", "-p", "--print", "-r", "-x"} & set(args)
        what = "inline code" if inline or name.endswith("awk") else "a script"
        judge.add(text, Action.ASK, f"{name} runs {what} that cannot be checked")
        return
    if name == "rm":
        _judge_rm(judge, args, text)
        return
    if name in DISK_TOOLS or name.startswith(("mkfs.", "mkfs", "mke2fs")):
        judge.add(text, Action.DENY, f"{name} formats or repartitions disks")
        return
    if name == "dd":
        out = next((a[3:] for a in args if a.startswith("of=")), None)
        if out is not None and _as_path(judge, out).is_relative_to("/dev") and out != "/dev/null":
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
        _judge_perm(judge, name, args, text)
        return
    if name in {"cp", "mv", "install", "ln", "tee", "rsync", "touch", "mkdir", "truncate"}:
        _judge_writer(judge, name, args, text)
        return
    if name == "crontab":
        judge.add(text, Action.ASK, "changes scheduled jobs")
        return
    if name == "find":
        _judge_find(judge, arg_words, text, depth)
        return
    if name == "git":
        _judge_git(judge, args, text)
        return
    if name == "sed":
        scripts = [a for a in args if not a.startswith("-")]
        in_place = any(a.startswith(("-i", "--in-place")) for a in args)
        if not in_place and scripts and _SIMPLE_SED.match(scripts[0]):
            _judge_read_args(judge, scripts[1:], text, "sed (print/substitute to stdout)")
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
        _judge_read_args(judge, args, text, f"{name} is read-only")
        return
    if args in (["--version"], ["-V"], ["version"]):
        judge.add(text, Action.ALLOW, "prints a version")
        return
    judge.add(text, Action.ASK, f"{name} is not known to be read-only")


def _option_value(args: list[str], names: tuple[str, ...]) -> str | None:
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


def _judge_cd(judge: _Judge, args: list[str], text: str) -> None:
    """``cd`` moves where later parts' relative paths start: follow it."""
    targets = [a for a in args if not a.startswith("-") or a == "-"]
    if not targets or targets[0] in {"-", "~"} or targets[0].startswith("$"):
        judge.cwd = _UNKNOWN_DIR  # later relative paths resolve outside every root: they ask
        judge.add(text, Action.ASK, "cd to a directory that cannot be checked")
        return
    path = _as_path(judge, targets[0])
    judge.cwd = path
    before = len(judge.parts)
    _check_read_path(judge, text, targets[0], path)
    if len(judge.parts) == before:
        judge.add(text, Action.ALLOW, "cd inside the workspace")


def _is_interpreter(name: str) -> bool:
    if name in INTERPRETERS:
        return True
    return bool(re.match(r"^(python|pypy|perl|ruby|node|php|lua)[0-9.]*$", name))


def _skip_options(words: list[Word], with_value: frozenset[str]) -> list[Word]:
    i = 0
    while i < len(words):
        text = words[i].text
        if text == "--":
            return words[i + 1 :]
        if not text.startswith("-") or text == "-":
            break
        i += 2 if text in with_value else 1
    return words[i:]


def _unwrap_env(judge: _Judge, words: list[Word], text: str, depth: int) -> list[Word] | None:
    i = 0
    while i < len(words):
        t = words[i].text
        if t in {"-S", "--split-string"} or t.startswith(("-S", "--split-string=")):
            value = (
                words[i + 1].text if t in {"-S", "--split-string"} and i + 1 < len(words)
                else t.split("=", 1)[-1] if t.startswith("--") else t[2:]
            )  # fmt: skip
            rest = " ".join(w.text for w in words[i + 2 :])
            _judge_command(judge, f"{value} {rest}".strip(), depth + 1)
            return None
        if t in {"-C", "--chdir"} or t.startswith(("-C", "--chdir=")):
            judge.add(text, Action.ASK, "env -C runs the command in another directory")
            i += 2 if t in {"-C", "--chdir"} else 1
            continue
        if t in {"-u", "--unset"}:
            i += 2
            continue
        if t.startswith("-"):
            i += 1
            continue
        if _ASSIGN.match(t):
            if _DANGEROUS_ASSIGN.match(t):
                judge.add(text, Action.ASK, f"sets {t.split('=')[0]}, which changes what runs")
            i += 1
            continue
        break
    return words[i:]


def _judge_shell(judge: _Judge, name: str, words: list[Word], text: str, depth: int) -> None:
    args = [w.text for w in words]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and "c" in arg.lstrip("-") and not arg.startswith("--"):
            if i + 1 < len(args):
                judge.needs_shell = True  # running a shell is shell use, whoever spells it
                _judge_command(judge, args[i + 1], depth + 1)
                return
            judge.add(text, Action.ASK, f"{name} -c without a command")
            return
        if arg in {"-o", "+o", "-O", "+O", "--rcfile", "--init-file"}:
            i += 2  # options that take a value: bash -o posix -c ...
            continue
        if not arg.startswith(("-", "+")):
            break
        i += 1
    if args in (["--version"],):
        judge.add(text, Action.ALLOW, "prints a version")
        return
    judge.add(text, Action.ASK, f"{name} runs a script or stdin that cannot be checked")


def _rm_flags(args: list[str]) -> tuple[bool, bool, list[str]]:
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


def _is_critical(judge: _Judge, raw: str) -> bool:
    if raw in {"~", "~/", "$HOME", "${HOME}", "$HOME/", "${HOME}/", "*", "/*", "~/*", "$HOME/*",
               ".", "./", "..", "../", ".*", "/.*"}:  # fmt: skip
        return True
    raw = _HOME_VAR.sub(str(judge.home), raw)
    path = _as_path(judge, raw.rstrip("*") or "/")
    if path in CRITICAL_DIRS or path == judge.home or judge.home.is_relative_to(path):
        return True
    if path.parent in {Path("/home"), Path("/Users")}:  # somebody's home directory
        return True
    if judge.policy is not None:
        return any(root.is_relative_to(path) for root in judge.policy.write_roots)
    return False


def _judge_rm(judge: _Judge, args: list[str], text: str) -> None:
    recursive, _force, targets = _rm_flags(args)
    critical = [t for t in targets if _is_critical(judge, t)]
    if recursive and critical:
        judge.add(text, Action.DENY, f"recursive delete of {critical[0]}")
        return
    if any(_as_path(judge, t).is_relative_to(d) for t in targets for d in SYSTEM_DIRS):
        judge.add(text, Action.DENY, "deletes system files")
        return
    judge.add(text, Action.ASK, "deletes files")


def _judge_perm(judge: _Judge, name: str, args: list[str], text: str) -> None:
    recursive = any(a in {"-R", "--recursive"} or (a.startswith("-") and "R" in a) for a in args)
    targets = [a for a in args if not a.startswith("-")][1:]
    if (recursive and any(_is_critical(judge, t) for t in targets)) or any(
        _as_path(judge, t).is_relative_to(d) for t in targets for d in SYSTEM_DIRS
    ):
        judge.add(text, Action.DENY, f"{name} changes permissions of system or home directories")
        return
    judge.add(text, Action.ASK, f"{name} changes permissions")


def _judge_writer(judge: _Judge, name: str, args: list[str], text: str) -> None:
    targets = [a for a in args if not a.startswith("-")]
    paths = [_as_path(judge, t) for t in targets]
    judge.paths.extend(paths)
    if any(p.is_relative_to(d) for p in paths for d in SYSTEM_DIRS) or any(
        p.is_relative_to("/dev") and str(p) != "/dev/null" for p in paths
    ):
        judge.add(text, Action.DENY, f"{name} writes to a system path")
        return
    if name == "mv" and any(_is_critical(judge, t) for t in targets[:-1]):
        judge.add(text, Action.DENY, "moves a system or home directory")
        return
    if (
        name in {"tee", "touch", "mkdir"}
        and paths
        and all(_inside_write_roots(judge, p) for p in paths)
    ):
        judge.writes = True
        judge.add(text, Action.ALLOW, f"{name} writes inside the workspace")
        return
    judge.add(text, Action.ASK, f"{name} writes files")


def _judge_find(judge: _Judge, words: list[Word], text: str, depth: int) -> None:
    args = [w.text for w in words]
    i = 0
    asked = False
    while i < len(args):
        arg = args[i]
        if arg in {"-exec", "-execdir", "-ok", "-okdir"}:
            end = next(
                (j for j in range(i + 1, len(args)) if args[j] in {";", "+", "\\;"}), len(args)
            )
            inner = words[i + 1 : end]
            if inner:
                _judge_argv(judge, inner, text, depth + 1)
            judge.add(text, Action.ASK, f"find {arg} runs a program for every match")
            asked = True
            i = end + 1
            continue
        if arg == "-delete":
            judge.add(text, Action.ASK, "find -delete removes files")
            asked = True
        elif arg in {"-fprint", "-fprint0", "-fprintf", "-fls"} or arg.startswith("-D"):
            judge.add(text, Action.ASK, f"find {arg} writes a file")
            asked = True
        i += 1
    starts = []
    for a in args:
        if a.startswith(("-", "(", ")", "!")):
            break
        starts.append(a)
    if not asked:
        _judge_read_args(judge, starts, text, "find is read-only")


_GIT_VALUE_OPTIONS = frozenset(
    {"-C", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--list-cmds",
     "--attr-source"}
)  # fmt: skip
_GIT_DIR_OPTIONS = frozenset({"-C", "--git-dir", "--work-tree"})


def _judge_git(judge: _Judge, args: list[str], text: str) -> None:
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
        _check_read_path(judge, text, raw, _as_path(judge, raw))
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
            judge.cwd = _as_path(judge, dirs[0])
        _judge_read_args(judge, [a for a in rest if a != "--"], text, f"git {sub} is read-only")
        judge.cwd = saved
        return
    judge.add(text, Action.ASK, f"git {sub} changes repository state")


def _path_candidates(judge: _Judge, arg: str) -> list[str]:
    """The parts of one argument that may name a file: itself, ``--opt=V``, ``-xV``."""
    if arg.startswith("--"):
        return [arg.split("=", 1)[1]] if "=" in arg else []
    if arg.startswith("-") and len(arg) > 2:
        return [arg[2:]]  # an attached short option value: sort -oFILE, date -fFILE
    if arg.startswith("-"):
        return []
    return [arg]


def _names_a_file(judge: _Judge, value: str) -> bool:
    if not value:
        return False
    if _looks_like_path(value) or value == "." or ".." in Path(value).parts:
        return True
    if judge.cwd is _UNKNOWN_DIR:
        return True
    base = judge.cwd or Path.cwd()
    return os.path.lexists(base / value)  # relative names, symlinks included


def _judge_read_args(judge: _Judge, args: list[str], text: str, reason: str) -> None:
    for arg in args:
        for value in _path_candidates(judge, arg):
            if _names_a_file(judge, value):
                before = len(judge.parts)
                _check_read_path(judge, text, value, _as_path(judge, value))
                if len(judge.parts) > before:
                    return
    judge.add(text, Action.ALLOW, reason)
