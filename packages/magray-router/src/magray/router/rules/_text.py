"""Small text helpers shared by the rule-based agents (no dependencies, deterministic)."""

from __future__ import annotations

import re

__all__ = ["FILE_EXTENSIONS", "NUMBER_WORDS", "STOPWORDS", "stem", "tokens", "words"]

#: Number words the rules read as counts ("the last three commits").
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twenty": 20,
}

#: File extensions that make a word a file name (a regex alternation, no group).
FILE_EXTENSIONS = (
    r"py|md|txt|json|toml|ya?ml|cfg|ini|csv|rs|js|ts|html|css|log|sh|c|h|"
    r"cpp|go|java|rb|lock|xml|pdf|env|conf|sql"
)

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "into",
        "onto",
        "about",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "i",
        "me",
        "my",
        "mine",
        "you",
        "your",
        "yours",
        "we",
        "our",
        "us",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "please",
        "pls",
        "just",
        "some",
        "any",
        "all",
        "each",
        "every",
        "so",
        "than",
        "too",
        "very",
        "also",
        "not",
        "no",
        "yes",
        "then",
        "now",
        "up",
        "out",
        "over",
        "again",
        "once",
        "more",
        "most",
        "such",
        "only",
        "own",
        "same",
        "other",
        "s",
        "t",
        "don't",
        "let",
        "lets",
        "let's",
        "want",
        "wanna",
        "need",
        "like",
        "get",
        "got",
        "give",
        "make",
    ]
)

_WORD = re.compile(r"[a-z0-9][a-z0-9_'-]*")


def words(text: str) -> list[str]:
    """Lower-cased words (letters, digits, ``_ ' -``)."""
    return _WORD.findall(text.lower())


def stem(word: str) -> str:
    """A deliberately tiny English stemmer: commits→commit, branches→branch, running→run."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "ls":
                base = base[:-1]  # running -> run, committed -> commit
            return base
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Stemmed content words of ``text`` (stopwords removed; ``_`` and ``-`` split)."""
    out = []
    for word in words(text):
        for part in re.split(r"[_-]+", word):
            if part and part not in STOPWORDS:
                out.append(stem(part))
    return out
