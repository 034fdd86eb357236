"""Gitignore-style matching for every package that walks a tree.

Two things live here, once, so the file tools and ``magray memory add`` skip
the same files and read patterns the same way:

- :func:`glob_regex` compiles a glob over relative POSIX paths (``*`` and ``?``
  stop at ``/``, ``**`` crosses it, ``[a-z]``/``[!a-z]`` classes, ``{a,b}``
  alternatives); with ``anywhere=True`` a pattern without ``/`` matches at any
  depth, as ``.gitignore`` lines do (``*.md`` matches ``docs/a.md``).
- :class:`IgnoreRules` holds the ``.gitignore`` and ``.git/info/exclude`` rules
  in force at one place of a walk. Matching is git's own (``pathspec``'s
  ``GitIgnoreSpec``): the deepest file with a matching line decides, and the
  last matching line of that file wins, so ``!keep.log`` re-includes.

Example::

    rules = IgnoreRules.above(start)  # the repository's rules above ``start``
    for directory in walk(start):
        here = rules.below(directory)  # plus ``directory/.gitignore``
        if here.ignored(directory / "build", is_dir=True):
            ...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec

__all__ = ["IGNORE_FILES", "IgnoreRules", "glob_regex", "repo_root"]

IGNORE_FILES = (".gitignore", ".git/info/exclude")
"""The files, relative to a directory, whose lines say what to ignore below it."""


@lru_cache(maxsize=512)
def glob_regex(pattern: str, *, anywhere: bool = False) -> re.Pattern[str]:
    """``pattern`` as a regex that must match a whole relative POSIX path.

    Args:
        pattern: ``*`` and ``?`` match within one path segment, ``**`` across
            segments (``**/`` also matches no directory at all), ``[...]`` a
            character class (``[!...]`` negated), ``{a,b}`` either word,
            ``\\x`` the character ``x``. A leading ``/`` is dropped.
        anywhere: When the pattern has no ``/``, let it match at any depth.
    """
    body = pattern.strip().lstrip("/")
    prefix = "(?:.*/)?" if anywhere and "/" not in body else ""
    return re.compile(f"{prefix}{_translate(body)}", re.DOTALL)


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negated = body.startswith("!")
            body = re.sub(r"([\\^\[])", r"\\\1", body[1:] if negated else body)
            out.append(f"[{'^' if negated else ''}{body}]")
            i = end + 1
        elif c == "{" and (end := pattern.find("}", i + 1)) != -1:
            options = pattern[i + 1 : end].split(",")
            out.append("(?:" + "|".join(re.escape(o) for o in options) + ")")
            i = end + 1
        elif c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out) + r"\Z"


def repo_root(directory: Path) -> Path | None:
    """The nearest of ``directory`` and its parents that holds a ``.git``, if any."""
    for parent in (directory, *directory.parents):
        if (parent / ".git").exists():
            return parent
    return None


def _load(directory: Path) -> pathspec.GitIgnoreSpec | None:
    lines: list[str] = []
    for name in IGNORE_FILES:
        try:
            lines += (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:  # absent, a directory, unreadable: no rules from it
            continue
    if not lines:
        return None
    import pathspec  # lazy: only walks pay for it

    return pathspec.GitIgnoreSpec.from_lines(lines)


class IgnoreRules:
    """The ignore rules in force at one directory of a walk (immutable).

    :meth:`below` returns the rules one directory deeper; the walk keeps one
    object per level, so siblings never see each other's rules.
    """

    __slots__ = ("_specs",)

    def __init__(self, specs: tuple[tuple[Path, pathspec.GitIgnoreSpec], ...] = ()) -> None:
        self._specs = specs

    @classmethod
    def above(cls, start: Path, *, allowed: Callable[[Path], bool] | None = None) -> IgnoreRules:
        """The rules of ``start``'s parents up to its repository's root.

        Args:
            start: The directory a walk begins at (its own rules are not read;
                call :meth:`below` with it).
            allowed: Parents for which this is false are not read, nor any
                above them (a tool reads only inside its roots).
        """
        parents: list[Path] = []
        for parent in start.parents:
            if allowed is not None and not allowed(parent):
                break
            parents.append(parent)
            if (parent / ".git").exists():
                break
        else:
            parents = []  # not inside a repository: no parent's rules apply
        rules = cls()
        for parent in reversed(parents):
            rules = rules.below(parent)
        return rules

    def below(self, directory: Path) -> IgnoreRules:
        """These rules plus those of ``directory``'s own ignore files."""
        spec = _load(directory)
        return self if spec is None else IgnoreRules((*self._specs, (directory, spec)))

    def ignored(self, path: Path, *, is_dir: bool) -> bool:
        """True when ``path`` (under the directories the rules came from) is ignored."""
        for base, spec in reversed(self._specs):  # the deepest file with a match decides
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if rel == ".":
                continue
            verdict = spec.check_file(rel + "/" if is_dir else rel).include
            if verdict is not None:
                return bool(verdict)
        return False

    def __bool__(self) -> bool:
        return bool(self._specs)
