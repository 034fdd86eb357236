"""Directory walking shared by the list, glob and grep tools.

Honours ``.gitignore`` files at every level (and ``.git/info/exclude`` at a
repository root), always skips ``.git`` directories, never follows symlinked
directories (no loops, no escapes) and checks the call's deadline as it goes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pathspec

from magray.tools._model import ToolContext

__all__ = ["Entry", "glob_to_regex", "walk"]

ALWAYS_SKIPPED = frozenset({".git"})


@dataclass(frozen=True)
class Entry:
    """One walked path."""

    path: Path
    rel: str  # posix path relative to the walk's start
    is_dir: bool
    is_symlink: bool
    depth: int  # 1 = a direct child of the start


def _load_spec(directory: Path) -> pathspec.GitIgnoreSpec | None:
    lines: list[str] = []
    for name in (".gitignore", ".git/info/exclude"):
        candidate = directory / name
        try:
            if candidate.is_file():
                lines += candidate.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


def _ignored(stack: list[tuple[Path, pathspec.GitIgnoreSpec]], path: Path, is_dir: bool) -> bool:
    for base, spec in reversed(stack):  # the deepest .gitignore decides first
        rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
        verdict = spec.check_file(rel).include
        if verdict is not None:
            return bool(verdict)
    return False


def walk(
    start: Path,
    ctx: ToolContext,
    *,
    max_depth: int | None = None,
    include_hidden: bool = False,
    respect_gitignore: bool = True,
    tool: str = "*",
) -> Iterator[Entry]:
    """Yield entries under ``start`` depth-first in name order.

    Paths that a path rule of the policy denies or asks for (for ``tool``) are
    left out, with everything beneath them.
    """
    stack: list[tuple[Path, pathspec.GitIgnoreSpec]] = []
    if respect_gitignore:
        # .gitignore files of parent directories up to the repository root apply too
        # (only parents inside the readable roots are looked at).
        parents: list[Path] = []
        for parent in start.parents:
            if not any(parent.is_relative_to(r) for r in ctx.policy.all_read_roots):
                break
            parents.append(parent)
            if (parent / ".git").exists():
                break
        for parent in reversed(parents):
            spec = _load_spec(parent)
            if spec is not None:
                stack.append((parent, spec))
    walker = _Walker(start, ctx, stack, max_depth, include_hidden, respect_gitignore, tool)
    yield from walker.walk_dir(start, 1)


@dataclass
class _Walker:
    start: Path
    ctx: ToolContext
    stack: list[tuple[Path, pathspec.GitIgnoreSpec]]
    max_depth: int | None
    include_hidden: bool
    respect_gitignore: bool
    tool: str

    def walk_dir(self, directory: Path, depth: int) -> Iterator[Entry]:
        self.ctx.check()
        pushed = False
        if self.respect_gitignore:
            spec = _load_spec(directory)
            if spec is not None:
                self.stack.append((directory, spec))
                pushed = True
        try:
            try:
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                return
            for entry in entries:
                if entry.name.lower() in ALWAYS_SKIPPED:
                    continue
                if not self.include_hidden and entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                is_symlink = entry.is_symlink()
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if self.respect_gitignore and self.stack and _ignored(self.stack, path, is_dir):
                    continue
                if self.ctx.policy.path_rule_blocks(self.tool, path):
                    continue
                rel = path.relative_to(self.start).as_posix()
                yield Entry(path, rel, is_dir, is_symlink, depth)
                if is_dir and (self.max_depth is None or depth < self.max_depth):
                    yield from self.walk_dir(path, depth + 1)
        finally:
            if pushed:
                self.stack.pop()


@lru_cache(maxsize=256)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob on posix relative paths: ``*`` and ``?`` stop at ``/``, ``**`` crosses it."""
    i, out = 0, []
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
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        elif c == "{":
            end = pattern.find("}", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                options = pattern[i + 1 : end].split(",")
                out.append("(?:" + "|".join(re.escape(o) for o in options) + ")")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")
