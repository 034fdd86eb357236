"""How the shell classifier unwraps programs that run other programs.

``env`` (also ``-S``), ``nice``, ``nohup``, ``flock``, ``timeout``, ``watch``,
``xargs``, ``busybox``, shells with ``-c``, ``eval`` and ``find -exec``: the
inner command is judged as if it ran alone (through :meth:`Judge.argv` and
:meth:`Judge.command`), so a wrapper never lowers its verdict.
"""

from __future__ import annotations

from magray.tools._model import Action
from magray.tools.builtin._cmdjudge import (
    Judge,
    as_path,
    check_read_path,
    judge_read_args,
    option_value,
    skip_options,
)
from magray.tools.builtin._cmdtables import ASSIGN, DANGEROUS_ASSIGN, SHELLS, SIMPLE_WRAPPERS
from magray.tools.builtin._shlex import Word


def judge_wrapper(  # noqa: PLR0917 (the arguments of the decision table in _classify)
    judge: Judge,
    name: str,
    args: list[str],
    arg_words: list[Word],
    text: str,
    depth: int,
) -> bool:
    """Judge ``name`` if it is a wrapper (True), else leave it to the caller (False)."""
    if name == "env":
        rest = _unwrap_env(judge, arg_words, text, depth)
        if rest is None:
            return True
        if not rest:
            judge.add(text, Action.ALLOW, "prints the environment")
            return True
        judge.argv(rest, text, depth + 1)
        return True
    if name in SIMPLE_WRAPPERS:
        if name == "command" and args[:1] in (["-v"], ["-V"]):
            judge.add(text, Action.ALLOW, "looks up a command")
            return True
        rest = skip_options(arg_words, SIMPLE_WRAPPERS[name])
        if name in {"taskset", "flock"} and rest:
            rest = rest[1:]  # the CPU mask / the lock file
        if name == "flock":
            flock_cmd = option_value(args, ("-c", "--command"))
            if flock_cmd is not None:
                judge.command(flock_cmd, depth + 1)
                judge.add(text, Action.ASK, "flock runs a command")
                return True
        if not rest:
            judge.add(text, Action.ALLOW if name in {"nice", "time"} else Action.ASK, name)
            return True
        judge.argv(rest, text, depth + 1)
        return True
    if name == "timeout":
        rest = skip_options(arg_words, frozenset({"-s", "-k", "--signal", "--kill-after"}))
        if len(rest) > 1:
            judge.argv(rest[1:], text, depth + 1)
        else:
            judge.add(text, Action.ASK, "timeout without a command")
        return True
    if name == "watch":
        rest = skip_options(arg_words, frozenset({"-n", "--interval", "-d"}))
        judge.command(" ".join(w.text for w in rest), depth + 1)
        return True
    if name == "xargs":
        rest = skip_options(
            arg_words, frozenset({"-n", "-I", "-i", "-L", "-l", "-P", "-d", "-E", "-e", "-s", "-a",
                                  "--max-args", "--max-procs", "--delimiter", "--arg-file"})
        )  # fmt: skip
        arg_file = option_value(args[: len(args) - len(rest)], ("-a", "--arg-file"))
        if arg_file is not None:  # xargs reads its arguments from this file
            before = len(judge.parts)
            check_read_path(judge, text, arg_file, as_path(judge, arg_file))
            if len(judge.parts) > before:
                return True
        if not rest:
            judge.add(text, Action.ALLOW, "xargs echo")
            return True
        judge.argv(rest, text, depth + 1)
        return True
    if name == "busybox" and arg_words and not arg_words[0].text.startswith("-"):
        judge.argv(arg_words, text, depth + 1)  # busybox rm -rf / is rm -rf /
        return True
    if name in SHELLS:
        _judge_shell(judge, name, arg_words, text, depth)
        return True
    if name == "eval":
        judge.needs_shell = True
        judge.command(" ".join(args), depth + 1)
        judge.add(text, Action.ASK, "eval runs a computed command")
        return True
    return False


def _unwrap_env(judge: Judge, words: list[Word], text: str, depth: int) -> list[Word] | None:
    i = 0
    while i < len(words):
        t = words[i].text
        if t in {"-S", "--split-string"} or t.startswith(("-S", "--split-string=")):
            value = (
                words[i + 1].text if t in {"-S", "--split-string"} and i + 1 < len(words)
                else t.split("=", 1)[-1] if t.startswith("--") else t[2:]
            )  # fmt: skip
            rest = " ".join(w.text for w in words[i + 2 :])
            judge.command(f"{value} {rest}".strip(), depth + 1)
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
        if ASSIGN.match(t):
            if DANGEROUS_ASSIGN.match(t):
                judge.add(text, Action.ASK, f"sets {t.split('=')[0]}, which changes what runs")
            i += 1
            continue
        break
    return words[i:]


def _judge_shell(judge: Judge, name: str, words: list[Word], text: str, depth: int) -> None:
    args = [w.text for w in words]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and "c" in arg.lstrip("-") and not arg.startswith("--"):
            if i + 1 < len(args):
                judge.needs_shell = True  # running a shell is shell use, whoever spells it
                judge.command(args[i + 1], depth + 1)
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


def judge_find(judge: Judge, words: list[Word], text: str, depth: int) -> None:
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
                judge.argv(inner, text, depth + 1)
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
        judge_read_args(judge, starts, text, "find is read-only")
