"""Which files a tree holds for ingest: ``.gitignore`` rules, globs and excludes.

:func:`iter_files` walks directories in sorted order without following symlinked
directories, skips ``.git``, and reports each file with whether it is ignored: by the
ignore files of the tree or of the git repository above it (``.gitignore``,
``.git/info/exclude``), by an ``excludes`` pattern, or by matching none of ``globs``.
Patterns are matched by :mod:`magray.common.ignore`, as in the file tools.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from magray.common.ignore import IgnoreRules, glob_regex

__all__ = ["iter_files"]


def _patterns(globs: Sequence[str]) -> list[re.Pattern[str]]:
    """Gitignore-style globs (``*.md`` at any depth), each to match a whole relative path."""
    return [glob_regex(glob, anywhere=True) for glob in globs]


def iter_files(
    paths: Iterable[str | Path],
    *,
    globs: Sequence[str] = (),
    excludes: Sequence[str] = (),
    gitignore: bool = True,
) -> Iterator[tuple[Path, bool]]:
    """Files under ``paths`` as ``(path, ignored)``, in sorted order.

    Directories are walked recursively (``.git`` is never entered, symlinked
    directories are not followed). Inside a directory a file is ``ignored`` when
    an ignore file (``.gitignore``, ``.git/info/exclude``) of that tree or of its
    repository above it ignores it, when it matches an ``excludes`` pattern, or
    when ``globs`` are given and it matches none of them; patterns are
    gitignore-style (``*.md`` matches at any depth, ``docs/**/*.md`` from the
    directory given). A file named directly is only subject to ``excludes``.
    """
    include = _patterns(globs)
    exclude = _patterns(excludes)
    for raw in paths:
        top = Path(raw).expanduser()
        if not top.is_dir():
            yield top, any(p.fullmatch(top.name) or p.fullmatch(top.as_posix()) for p in exclude)
            continue
        top = top.resolve()
        rules = IgnoreRules.above(top) if gitignore else IgnoreRules()
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
        rules = rules.below(directory)
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
                p.fullmatch(rel) for p in exclude
            ):
                continue
            yield from _walk(top, path, rules, include, exclude, gitignore)
            continue
        if not entry.is_file():
            continue
        ignored = (
            (gitignore and rules.ignored(path, is_dir=False))
            or any(p.fullmatch(rel) for p in exclude)
            or (bool(include) and not any(p.fullmatch(rel) for p in include))
        )
        yield path, ignored
