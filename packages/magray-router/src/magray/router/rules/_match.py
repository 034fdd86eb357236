"""What the tool rules share: the verdict type and the words and patterns for paths.

A rule (:data:`Rule`) reads one clause, with the tool the general agents picked, and
returns a :class:`Refined` verdict or ``None``; :func:`path_in` finds the directory or
file a clause points into.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from magray.router.rules._text import NUMBER_WORDS

__all__ = [
    "FILE",
    "NOT_PATHS",
    "PATHISH",
    "PRONOUN",
    "Refined",
    "Rule",
    "count_word",
    "path_in",
    "valid_regex",
]

PATHISH = r"[\w.\-~/]+"
NOT_PATHS = {
    "the",
    "this",
    "that",
    "my",
    "our",
    "your",
    "a",
    "it",
    "code",
    "codebase",
    "repo",
    "repository",
    "project",
    "workspace",
    "here",
    "current",
    "folder",
    "directory",
    "dir",
    "memory",
    "memories",
    "web",
    "internet",
    "files",
    "file",
    "all",
    "git",
    "source",
}
_IN_PATH = re.compile(
    r"\b(?:in|under|inside|within|of|from)\s+(?:the\s+|my\s+)?(?P<path>"
    + PATHISH
    + r")(?:\s+(?:folder|directory|dir|tree))?(?=$|[\s,.;:!?])(?!\s+files?\b)",
    re.IGNORECASE,
)
FILE = r"(?P<file>[\w.\-~/]*\w\.[A-Za-z]\w{0,7})"
PRONOUN = (
    r"(?:it|them|that|this|these|those|the results?|the output|the matches|what you found|"
    r"everything)"
)


def path_in(clause: str) -> str | None:
    """The directory or file a clause points into: "... in src" → ``src``."""
    for m in _IN_PATH.finditer(clause):
        path = m.group("path").rstrip(".")
        if path.lower() not in NOT_PATHS and not path.isdigit():
            return path
    return None


def count_word(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word.lower())


def valid_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error:
        return re.escape(pattern)
    return pattern


@dataclass(frozen=True)
class Refined:
    """A rule's verdict on one clause: the tool and the arguments it found."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    rule: str = ""
    keep: bool = True  # keep the agents' other arguments when they picked the same tool
    fill: bool = False  # only fill arguments the agents left out (same tool only)


Rule = Callable[[str, str | None], Refined | None]
