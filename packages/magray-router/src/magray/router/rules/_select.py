"""Tool selection: which tool (if any) fulfils a request?

:class:`RuleToolSelector` scores word overlap
between the request and each tool's name, description and parameter names,
expanded with a small synonym table and weighted by the intent; no match above
the threshold means "no tool".
"""

# ruff: noqa: E501  (the phrase table reads best with one rule per line)
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field

from magray.common.errors import LLMError
from magray.router.rules._ask import ask_model, fell_back
from magray.router.rules._intent import Intent, IntentKind, RuleIntentAnalyzer
from magray.router.rules._schema import ToolSpec, tool_specs
from magray.router.rules._text import stem, tokens

if TYPE_CHECKING:
    from magray.llm import LLMClient

__all__ = ["LLMToolSelector", "RuleToolSelector", "ToolSelection", "ToolSelector"]


@dataclass(frozen=True)
class ToolSelection:
    """The chosen tool (``None`` = no tool fits) with the reasons and runner-up scores."""

    tool: str | None
    confidence: float
    reasons: list[str] = field(default_factory=list)
    candidates: list[tuple[str, float]] = field(default_factory=list)
    source: str = "rules"


class ToolSelector(Protocol):
    """Anything that picks a tool for a request."""

    def select(
        self, request: str, tools: Sequence[Mapping[str, Any]], *, intent: Intent | None = None
    ) -> ToolSelection: ...


# Request words that mean the same as words found in tool names and descriptions.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "show": ("read", "list", "display"),
    "open": ("read", "fetch", "list"),
    "cat": ("read",),
    "view": ("read",),
    "content": ("read", "text"),
    "contents": ("read", "text"),
    "save": ("write",),
    "creat": ("write",),
    "create": ("write",),
    "put": ("write", "add"),
    "append": ("write",),
    "folder": ("directory", "list", "dir"),
    "dir": ("directory", "list"),
    "director": ("directory", "list"),
    "directory": ("list",),
    "ls": ("list", "directory"),
    "grep": ("search", "pattern", "content"),
    "find": ("search",),
    "mention": ("search", "content"),
    "us": ("search",),
    "where": ("search",),
    "look": ("search",),
    "lookup": ("search",),
    "google": ("search", "web"),
    "internet": ("web",),
    "online": ("web",),
    "news": ("search", "web"),
    "latest": ("search", "web"),
    "current": ("search", "web"),
    "price": ("search", "web"),
    "weather": ("search", "web"),
    "documentation": ("search", "web"),
    "download": ("fetch", "page"),
    "page": ("fetch",),
    "url": ("fetch",),
    "http": ("fetch", "url"),
    "https": ("fetch", "url"),
    "www": ("fetch", "url"),
    "run": ("command", "shell"),
    "execut": ("run", "command", "shell"),
    "execute": ("run", "command", "shell"),
    "terminal": ("shell", "command"),
    "test": ("run", "command"),
    "pytest": ("run", "command"),
    "install": ("run", "command"),
    "pip": ("run", "command"),
    "npm": ("run", "command"),
    "make": ("run", "command"),
    "docker": ("run", "command"),
    "disk": ("run", "command"),
    "process": ("run", "command"),
    "kill": ("run", "command"),
    "uptime": ("run", "command"),
    "up": ("run",),
    "linter": ("run", "command"),
    "histor": ("log", "commit"),
    "history": ("log", "commit"),
    "commit": ("commit",),
    "chang": ("diff", "status", "change"),
    "changed": ("diff", "status"),
    "unstag": ("diff",),
    "stag": ("diff", "staged"),
    "head": ("diff",),
    "compar": ("diff",),
    "clean": ("status",),
    "uncommitt": ("status",),
    "tree": ("status",),
    "remember": ("remember", "fact", "note"),
    "memoriz": ("remember",),
    "forget": ("remember",),
    "note": ("remember", "note"),
    "mind": ("remember",),
    "recall": ("recall", "memori"),
    "know": ("recall",),
    "tell": ("recall",),
    "told": ("recall",),
    "mentioned": ("recall",),
    "decid": ("recall",),
    "remind": ("add", "task", "reminder"),
    "todo": ("task", "todo", "list"),
    "task": ("task",),
    "pend": ("list", "task"),
    "done": ("done", "mark"),
    "finish": ("done", "mark"),
    "close": ("done", "mark"),
    "complet": ("done", "mark"),
}

# Phrases that point at a tool's *action* word (found in tool names of any registry):
# (pattern on the lower-cased request, action words, weight).
_PHRASES: list[tuple[re.Pattern[str], tuple[str, ...], float]] = [
    (re.compile(p), words, w)
    for p, words, w in [
        (
            r"\bcommits\b|\b(last|recent|latest|previous) commit\b|\bhistory\b|\bwho (made|wrote|changed)\b",
            ("log", "history"),
            3.0,
        ),
        (
            r"\bcommit (everything|all|it|the changes|with|my)\b|\bmake a commit\b|\bcommit:|^commit\b",
            ("commit",),
            2.0,
        ),
        (
            r"\bdiff\b|\bchanges? (since|compared|vs)\b|\bcompared to\b|\bwhat changed\b|\bwhat i changed\b",
            ("diff",),
            2.5,
        ),
        (
            r"\bstatus\b|\bclean working tree\b|\b(changed|modified) but not committed\b|\buntracked\b",
            ("status",),
            2.5,
        ),
        (
            r"\bgrep\b|\bsearch (in|through)\b|\bfind (where|usages?|uses|references)\b|\bmention",
            ("search", "grep", "find"),
            2.5,
        ),
        (
            r"\b(list|what('s| is) in|contents of) .*(folder|directory|dir)\b|\bwhat files\b|\bls\b",
            ("list", "ls"),
            2.0,
        ),
        (
            r"(?<!you )\b(remember|memori[sz]e|keep in mind|note that|don't forget)\b",
            ("store", "save", "remember", "add"),
            2.0,
        ),
        (
            r"\b(do you remember|recall|what did i|what do you know|have i (told|mentioned)|did i (tell|say|mention))\b",
            ("search", "recall", "query", "get"),
            4.0,
        ),
        (
            r"\b(done|finished|completed?|close it|close the)\b(?! ones)",
            ("done", "complete", "finish", "close"),
            2.0,
        ),
        (
            r"\b(list|show)( me)? (my |all |the )?(open |pending |done )?(tasks|todos?|to-dos?|items|reminders)\b"
            r"|\bwhat('s| is) (on|in) my\b|\bpending\b",
            ("list",),
            2.0,
        ),
        (
            r"^(add|remind|create|put)\b|\bremind me\b|\badd (a|an|the)? ?(task|todo|reminder)\b",
            ("add", "create", "new"),
            2.0,
        ),
        (r"https?://|\bwww\.", ("fetch", "get", "url", "browse", "open"), 2.0),
    ]
]

# Which words in a tool's name tie it to an intent (tool families).
_FAMILY: dict[IntentKind, tuple[str, ...]] = {
    IntentKind.FILE: ("file", "dir", "directory", "folder", "read", "write", "path", "grep"),
    IntentKind.GIT: ("git",),
    IntentKind.WEB: ("web", "http", "url", "browse", "fetch", "search"),
    IntentKind.SHELL: ("shell", "command", "exec", "run", "terminal", "bash"),
    IntentKind.MEMORY: ("memory", "memori", "remember", "recall"),
    IntentKind.TODO: ("todo", "task", "remind"),
}


def _in_family(tool_name: str, family: tuple[str, ...]) -> bool:
    name_words = set(tokens(tool_name))
    return any(stem(word) in name_words for word in family)


class RuleToolSelector:
    """Deterministic tool choice by weighted word overlap plus an intent prior.

    Args:
        threshold: Minimum score for a tool to be chosen.
        analyzer: Computes the intent when the caller gives none.
        family_confidence: When the intent is at least this confident and no tool of
            its family (``git_*`` for git, ...) is available, choose no tool rather than
            a look-alike from another family (``git_add`` for "add a task").
    """

    def __init__(
        self,
        *,
        threshold: float = 2.5,
        analyzer: RuleIntentAnalyzer | None = None,
        family_confidence: float = 0.75,
    ) -> None:
        self.threshold = threshold
        self.family_confidence = family_confidence
        self.analyzer = analyzer or RuleIntentAnalyzer()

    def select(
        self, request: str, tools: Sequence[Mapping[str, Any]], *, intent: Intent | None = None
    ) -> ToolSelection:
        specs = tool_specs(tools)
        if not specs:
            return ToolSelection(None, 1.0, ["no tools are available"])
        if intent is None:
            intent = self.analyzer.analyze(request)
        if intent.kind in (IntentKind.CHAT, IntentKind.PLAN):
            return ToolSelection(
                None, intent.confidence, [f"intent is {intent.kind.value}: no single tool"]
            )
        family = _FAMILY.get(intent.kind, ())
        if (
            family
            and intent.confidence >= self.family_confidence
            and not any(_in_family(spec.name, family) for spec in specs)
        ):
            kind = intent.kind.value
            return ToolSelection(
                None,
                intent.confidence,
                [f"the intent is {kind} and no {kind} tool is available"],
            )
        words = tokens(request)
        expanded: dict[str, str] = {w: w for w in words}
        for word in words:
            for synonym in _SYNONYMS.get(word, ()):
                expanded.setdefault(stem(synonym), word)
        lowered = request.lower()
        hints = [
            (words_, weight) for pattern, words_, weight in _PHRASES if pattern.search(lowered)
        ]
        scored: list[tuple[float, str, list[str]]] = []
        for spec in specs:
            score, reasons = self._score(spec, words, expanded, intent)
            name_words = set(tokens(spec.name))
            for action_words, weight in hints:
                hit = next((w for w in action_words if stem(w) in name_words), None)
                if hit is not None:
                    score += weight
                    reasons.append(f"the request's phrasing asks for '{hit}'")
            scored.append((score, spec.name, reasons))
        scored.sort(key=lambda item: (-item[0], item[1]))
        candidates = [(name, round(score, 2)) for score, name, _ in scored[:5]]
        best_score, best_name, best_reasons = scored[0]
        if best_score < self.threshold:
            return ToolSelection(
                None,
                round(min(0.9, 0.5 + (self.threshold - best_score) / (2 * self.threshold)), 3),
                [f"no tool scored above {self.threshold} (best {best_name}: {best_score:.2f})"],
                candidates,
            )
        second = scored[1][0] if len(scored) > 1 else 0.0
        confidence = round(min(0.99, 0.5 + 0.5 * (best_score - second) / best_score), 3)
        return ToolSelection(best_name, confidence, best_reasons, candidates)

    def _score(
        self,
        spec: ToolSpec,
        words: list[str],
        expanded: dict[str, str],
        intent: Intent,
    ) -> tuple[float, list[str]]:
        name_words = set(tokens(spec.name))
        desc_words = set(tokens(spec.description))
        param_words = {t for p in spec.properties for t in tokens(p)}
        score = 0.0
        reasons: list[str] = []
        lead = words[0] if words else None
        for word, source in expanded.items():
            direct = word in words
            weight = 1.0 if direct else 0.6
            if source == lead:
                weight *= 1.5  # the leading word is usually the verb: it names the action
            if word in name_words:
                score += 2.0 * weight
                reasons.append(
                    f"'{source}' matches the tool name"
                    if direct
                    else f"'{source}' ~ '{word}' in the tool name"
                )
            elif word in desc_words:
                score += 1.0 * weight
                reasons.append(
                    f"'{source}' in the description"
                    if direct
                    else f"'{source}' ~ '{word}' in the description"
                )
            elif word in param_words:
                score += 0.5 * weight
        family = _FAMILY.get(intent.kind, ())
        if family and _in_family(spec.name, family):
            bonus = 2.0 * intent.confidence
            score += bonus
            reasons.append(f"a {intent.kind.value} tool and the intent is {intent.kind.value}")
        elif family and any(_in_family(spec.name, other) for other in _FAMILY.values()):
            score -= 2.5  # a tool of another family: words alone rarely justify it
        return score, reasons


class SelectionReply(BaseModel):
    """The model's tool choice."""

    tool: str | None = Field(description="The tool's exact name, or null when none fits.")
    confidence: float = Field(ge=0, le=1)
    reasons: list[str] = Field(default_factory=list)


class LLMToolSelector:
    """Tool choice by a language model, validated against the real tool names.

    An unknown tool name from the model counts as "no tool"; a failed call falls
    back to :class:`RuleToolSelector` (unless ``raise_errors``).
    """

    def __init__(
        self,
        client: LLMClient,
        *,
        fallback: ToolSelector | None = None,
        raise_errors: bool = False,
        prompt_version: int | None = None,
        max_tokens: int = 192,
    ) -> None:
        self.client = client
        self.fallback = fallback if fallback is not None else RuleToolSelector()
        self.raise_errors = raise_errors
        self.prompt_version = prompt_version
        # Caps a runaway reply (a JSON grammar allows endless whitespace).
        self.max_tokens = max_tokens

    def select(
        self, request: str, tools: Sequence[Mapping[str, Any]], *, intent: Intent | None = None
    ) -> ToolSelection:
        specs = tool_specs(tools)
        if not specs:
            return ToolSelection(None, 1.0, ["no tools are available"], source="llm")
        listing = "\n".join(f"- {s.name}: {s.description}" for s in specs)
        reply = ask_model(self, "select_tool", SelectionReply, request=request, tools=listing)
        if isinstance(reply, LLMError):
            fallback = self.fallback.select(request, tools, intent=intent)
            return replace(fallback, source=fell_back(reply))
        names = {s.name for s in specs}
        tool = reply.tool if reply.tool not in ("", "null", "none", "None") else None
        if tool is not None and tool not in names:
            return ToolSelection(
                None, 0.0, [f"the model chose unknown tool {tool!r}", *reply.reasons], source="llm"
            )
        return ToolSelection(tool, reply.confidence, reply.reasons, source="llm")
