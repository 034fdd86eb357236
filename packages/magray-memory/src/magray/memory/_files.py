"""Which files a tree holds for ingest: ``.gitignore`` rules, globs and excludes.

:func:`iter_files` walks directories in sorted order without following symlinked
directories, skips ``.git``, and reports each file with whether it is ignored: by a
``.gitignore`` of the tree or of the git repository above it (git's pattern rules:
anchoring, ``**``, negation, directory-only patterns), by an ``excludes`` pattern, or by
matching none of ``globs``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IgnoreRules", "iter_files"]


# ---------------------------------------------------------------- path patterns
def _translate(pattern: str) -> str:
    """A gitignore-style glob as a regex over a relative POSIX path."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _rule(line: str) -> _Rule | None:
    """One ``.gitignore`` line as a rule (``None`` for blanks and comments)."""
    line = line.rstrip("\n").rstrip("\r")
    if line.endswith(" ") and not line.endswith("\\ "):
        line = line.rstrip(" ")
    if not line or line.startswith("#"):
        return None
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    elif line.startswith("\\"):
        line = line[1:] if line[1:2] in ("#", "!") else line
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    body = _translate(line)
    prefix = "" if anchored else "(?:.*/)?"
    return _Rule(re.compile(f"^{prefix}{body}(?:/.*)?$", re.DOTALL), negate, dir_only)


class IgnoreRules:
    """``.gitignore`` rules from several directories; the last matching rule wins."""

    def __init__(self) -> None:
        self._sets: list[tuple[Path, list[_Rule]]] = []

    def load(self, directory: Path) -> None:
        """Add the rules of ``directory/.gitignore`` (if it exists) for paths under it."""
        try:
            text = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        rules = [r for r in map(_rule, text.splitlines()) if r is not None]
        if rules:
            self._sets.append((directory, rules))

    def ignored(self, path: Path, *, is_dir: bool) -> bool:
        verdict = False
        for base, rules in self._sets:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if rel == ".":
                continue
            for rule in rules:
                if rule.dir_only and not is_dir:
                    # ``dir/`` also ignores files below that directory
                    parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
                    if not parent or not rule.regex.match(parent):
                        continue
                elif not rule.regex.match(rel):
                    continue
                verdict = not rule.negate
        return verdict

    def copy(self) -> IgnoreRules:
        other = IgnoreRules()
        other._sets = list(self._sets)
        return other


def _patterns(globs: Sequence[str]) -> list[re.Pattern[str]]:
    out = []
    for glob in globs:
        body = glob.strip().lstrip("/")
        prefix = "" if "/" in body else "(?:.*/)?"
        out.append(re.compile(f"^{prefix}{_translate(body)}$", re.DOTALL))
    return out


def _repo_root(directory: Path) -> Path | None:
    for parent in (directory, *directory.parents):
        if (parent / ".git").exists():
            return parent
    return None


def iter_files(
    paths: Iterable[str | Path],
    *,
    globs: Sequence[str] = (),
    excludes: Sequence[str] = (),
    gitignore: bool = True,
) -> Iterator[tuple[Path, bool]]:
    """Files under ``paths`` as ``(path, ignored)``, in sorted order.

    Directories are walked recursively (``.git`` is never entered, symlinked
    directories are not followed). Inside a directory a file is ``ignored``
    when a ``.gitignore`` (of that tree, or of its repository above it) ignores
    it, when it matches an ``excludes`` pattern, or when ``globs`` are given and
    it matches none of them; patterns are gitignore-style (``*.md`` matches at
    any depth, ``docs/**/*.md`` from the directory given). A file named
    directly is only subject to ``excludes``.
    """
    include = _patterns(globs)
    exclude = _patterns(excludes)
    for raw in paths:
        top = Path(raw).expanduser()
        if not top.is_dir():
            yield top, any(p.match(top.name) or p.match(top.as_posix()) for p in exclude)
            continue
        top = top.resolve()
        rules = IgnoreRules()
        if gitignore and (root := _repo_root(top)) is not None:
            for ancestor in reversed(top.relative_to(root).parents):
                rules.load(root / ancestor)
        yield from _walk(top, top, rules, include, exclude, gitignore)


def _walk(  # noqa: PLR0917 - a private recursion
    top: Path,
    directory: Path,
    rules: IgnoreRules,
    include: list[re.Pattern[str]],
    exclude: list[re.Pattern[str]],
    gitignore: bool,
) -> Iterator[tuple[Path, bool]]:
    if gitignore:
        rules = rules.copy()
        rules.load(directory)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        rel = path.relative_to(top).as_posix()
        if entry.is_dir(follow_symlinks=False):
            if entry.name == ".git":
                continue
            if (gitignore and rules.ignored(path, is_dir=True)) or any(
                p.match(rel) for p in exclude
            ):
                continue
            yield from _walk(top, path, rules, include, exclude, gitignore)
            continue
        if not entry.is_file():
            continue
        ignored = (
            (gitignore and rules.ignored(path, is_dir=False))
            or any(p.match(rel) for p in exclude)
            or (bool(include) and not any(p.match(rel) for p in include))
        )
        yield path, ignored
