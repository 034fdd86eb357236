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
from pathlib import Path

from magray.common.ignore import IgnoreRules, glob_regex
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
    rules = IgnoreRules()
    if respect_gitignore:
        # .gitignore files of parent directories up to the repository root apply too
        # (only parents inside the readable roots are looked at).
        roots = ctx.policy.all_read_roots
        rules = IgnoreRules.above(start, allowed=lambda p: any(p.is_relative_to(r) for r in roots))
    walker = _Walker(start, ctx, max_depth, include_hidden, respect_gitignore, tool)
    yield from walker.walk_dir(start, 1, rules)


@dataclass
class _Walker:
    start: Path
    ctx: ToolContext
    max_depth: int | None
    include_hidden: bool
    respect_gitignore: bool
    tool: str

    def walk_dir(self, directory: Path, depth: int, rules: IgnoreRules) -> Iterator[Entry]:
        self.ctx.check()
        if self.respect_gitignore:
            rules = rules.below(directory)
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
            if rules and rules.ignored(path, is_dir=is_dir):
                continue
            if self.ctx.policy.path_rule_blocks(self.tool, path):
                continue
            rel = path.relative_to(self.start).as_posix()
            yield Entry(path, rel, is_dir, is_symlink, depth)
            if is_dir and (self.max_depth is None or depth < self.max_depth):
                yield from self.walk_dir(path, depth + 1, rules)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob on posix relative paths: ``*`` and ``?`` stop at ``/``, ``**`` crosses it."""
    return glob_regex(pattern)
