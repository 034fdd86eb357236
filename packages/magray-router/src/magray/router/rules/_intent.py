"""Intent analysis: what kind of thing does the user want?

:class:`RuleIntentAnalyzer` scores weighted regular-expression signals per
intent kind and is fully deterministic; :class:`LLMIntentAnalyzer` asks a model
for a structured answer and falls back to the rules when the model fails (or
skips the model when the rules are already sure).
"""

# ruff: noqa: E501  (the signal table reads best with one rule per line)
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, Field

from magray.common.errors import LLMError
from magray.router.rules._ask import ask_model, fell_back
from magray.router.rules._text import FILE_EXTENSIONS

if TYPE_CHECKING:
    from magray.llm import LLMClient

__all__ = [
    "Intent",
    "IntentAnalyzer",
    "IntentKind",
    "LLMIntentAnalyzer",
    "RuleIntentAnalyzer",
]


class IntentKind(StrEnum):
    """The kinds of request magray routes."""

    CHAT = "chat"
    FILE = "file"
    GIT = "git"
    WEB = "web"
    SHELL = "shell"
    MEMORY = "memory"
    TODO = "todo"
    PLAN = "plan"


@dataclass(frozen=True)
class Intent:
    """An analysed request.

    Attributes:
        kind: The intent.
        confidence: 0–1; rules give ~0.5 when nothing matched (chat by default).
        signals: Why: the matched rule names (``"git:commit"``) or the model's reason.
        source: ``"rules"``, ``"llm"`` or ``"rules (llm failed: <code>)"``.
        scores: Per-kind rule scores (empty for the LLM).
    """

    kind: IntentKind
    confidence: float
    signals: list[str] = field(default_factory=list)
    source: str = "rules"
    scores: dict[str, float] = field(default_factory=dict)


class IntentAnalyzer(Protocol):
    """Anything that turns a request into an :class:`Intent`."""

    def analyze(self, text: str) -> Intent: ...


_PATH = rf"(?:~?/[\w.\-/]+|\b[\w\-/]+\.(?:{FILE_EXTENSIONS}))\b"
_URL = r"https?://\S+|\bwww\.\S+|\b[\w-]+\.(?:com|org|net|io|dev|ai)\b"

_CODE_MARKER = re.compile(r"\b(TODO|FIXME|XXX|HACK)[sS]?\b")  # case-sensitive on purpose
_SEARCH_VERB = re.compile(r"\b(grep|search|find|look for|scan|locate|count)\b")

# (kind, signal name, pattern, weight). Patterns run on the lower-cased text.
_SIGNALS: list[tuple[IntentKind, str, str, float]] = [
    # git
    (IntentKind.GIT, "git", r"\bgit\b", 3.0),
    (IntentKind.GIT, "commit", r"\bcommit(s|ted|ting)?\b", 2.5),
    (IntentKind.GIT, "branch", r"\bbranch(es)?\b", 2.0),
    (IntentKind.GIT, "diff", r"\bdiff\b|\bunstaged\b|\bstaged\b|\buncommitted\b", 2.0),
    (
        IntentKind.GIT,
        "vcs-verb",
        r"\b(rebase|merge|cherry-pick|stash|checkout|blame|bisect)\b",
        2.0,
    ),
    (
        IntentKind.GIT,
        "push-pull",
        r"\b(push|pull|fetch)\b.*\b(origin|remote|upstream|main|master)\b",
        2.0,
    ),
    (IntentKind.GIT, "repo", r"\b(repo|repository)\b", 1.0),
    (
        IntentKind.GIT,
        "history",
        r"\b(history|log)\b.*\b(repo|project|changes|commits?)\b|\bgit log\b",
        1.5,
    ),
    (
        IntentKind.GIT,
        "changed",
        r"\bwhat (has )?changed\b|\bmodified files\b|\bworking tree\b",
        1.5,
    ),
    (IntentKind.GIT, "tag", r"\b(tag|release) v?\d", 1.0),
    # file
    (IntentKind.FILE, "path", _PATH, 2.0),
    (IntentKind.FILE, "file", r"\bfiles?\b", 2.0),
    (IntentKind.FILE, "folder", r"\b(director(y|ies)|folders?|dir)\b", 2.0),
    (
        IntentKind.FILE,
        "read",
        r"\b(read|open|view|display|cat|print) (the |this |my )?(file|contents?|config|readme)\b|\bcontents? of\b",
        2.0,
    ),
    (
        IntentKind.FILE,
        "write",
        r"\b(write|save|append|create|rename|move|copy|delete|remove)\b.*\b(file|to [\w./-]+\.\w+|folder|directory)\b",
        2.0,
    ),
    (
        IntentKind.FILE,
        "list",
        r"\blist\b.*\b(files|folders|directory|dir)\b|\bwhat('s| is) in (the |this )?(folder|directory|dir)\b",
        1.5,
    ),
    (
        IntentKind.FILE,
        "find",
        r"\bfind\b.*\b(files?|\.\w+)\b|\bgrep\b|\bsearch (in|through) (the )?(code|files|project|repo)\b",
        1.5,
    ),
    (
        IntentKind.FILE,
        "code",
        r"\bfind (where|usages?|uses|references)\b|\b(in|through|across) the (code|codebase|source( code)?|project)\b",
        2.0,
    ),
    (IntentKind.FILE, "lines", r"\b(first|last) \d+ lines\b|\bline \d+\b", 1.5),
    # web
    (IntentKind.WEB, "url", _URL, 3.0),
    (
        IntentKind.WEB,
        "web",
        r"\b(web|internet|online|website|webpage|web page|google|duckduckgo|browser)\b",
        3.0,
    ),
    (IntentKind.WEB, "search", r"\b(search|look up|lookup|look for|find out)\b", 1.0),
    (
        IntentKind.WEB,
        "news",
        r"\b(news|latest|current|today's|weather|price of|stock|release notes|documentation for|docs for)\b",
        1.5,
    ),
    (
        IntentKind.WEB,
        "fetch",
        r"\b(fetch|download|scrape)\b.*\b(page|site|url|http|docs?|article)\b",
        2.0,
    ),
    # shell
    (IntentKind.SHELL, "run", r"\b(run|execute|exec|launch|start)\b", 1.5),
    (IntentKind.SHELL, "shell", r"\b(shell|terminal|command line|command|bash|zsh|cli)\b", 2.5),
    (IntentKind.SHELL, "backticks", r"`[^`]+`", 2.0),
    (
        IntentKind.SHELL,
        "tool",
        r"\b(pytest|npm|pip|cargo|make|docker|kubectl|ls|du|df|ps|top|kill|chmod|curl|python3?|node|uv|ruff|mypy)\b",
        2.0,
    ),
    (
        IntentKind.SHELL,
        "system",
        r"\b(disk (space|usage)|memory usage|(most|much|using|uses|free) (memory|ram)|cpu|processes|process|port \d+|uptime|install(ed)? packages?|environment variables?|env vars?)\b",
        2.0,
    ),
    (
        IntentKind.SHELL,
        "tests",
        r"\b(run|execute) (the )?(tests?|test suite|build|linter|benchmarks?)\b",
        2.0,
    ),
    # memory
    (
        IntentKind.MEMORY,
        "remember",
        r"\b(remember|memori[sz]e|memorise|don't forget|keep in mind|note that)\b",
        3.0,
    ),
    (
        IntentKind.MEMORY,
        "recall",
        r"\b(recall|what do you (know|remember)|did i (tell|say|mention)|what did i (say|tell)|have i (told|mentioned))\b",
        3.0,
    ),
    (IntentKind.MEMORY, "forget", r"\bforget\b", 2.5),
    (
        IntentKind.MEMORY,
        "memory",
        r"\b(memories|your memory|in (your )?memory|my preferences?|about me)\b",
        2.0,
    ),
    (
        IntentKind.MEMORY,
        "last-time",
        r"\b(last time|earlier (we|you|i)|previous(ly)? (conversation|session))\b",
        1.5,
    ),
    # todo
    (IntentKind.TODO, "todo", r"\bto-?dos?\b|\btodo list\b", 3.0),
    (IntentKind.TODO, "task", r"\btasks?\b", 2.0),
    (IntentKind.TODO, "remind", r"\bremind(er|ers)?\b", 3.0),
    (
        IntentKind.TODO,
        "deadline",
        r"\b(deadline|due (date|by|on|tomorrow|today)|by (monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight))\b",
        1.5,
    ),
    (
        IntentKind.TODO,
        "mark-done",
        r"\bmark\b.*\b(done|complete|finished)\b|\b(complete|finish|close) (the |my )?(task|item)\b",
        2.5,
    ),
    (
        IntentKind.TODO,
        "list",
        r"\b(my list|backlog|what('s| is) (left|pending|open)|pending items|open items)\b",
        2.0,
    ),
    # plan
    (
        IntentKind.PLAN,
        "plan",
        r"\b(plan|roadmap|strategy|break (it |this )?down|step[- ]by[- ]step|steps to)\b",
        2.5,
    ),
    (
        IntentKind.PLAN,
        "sequence",
        r"\b(then|after that|afterwards|and finally|finally|followed by|once (that|it)'?s? done|next,)\b",
        1.5,
    ),
    (IntentKind.PLAN, "first", r"\bfirst\b.*\b(then|after|next|finally)\b", 2.0),
    (IntentKind.PLAN, "numbered", r"(^|\n)\s*(1[.)]|- ).*(\n\s*(2[.)]|- ))", 2.5),
    (
        IntentKind.PLAN,
        "project",
        r"\b(set up|setup|bootstrap|scaffold|migrate|refactor) (a |the |my )?(new )?(project|repo|codebase|app|service)\b",
        1.5,
    ),
    # chat
    (
        IntentKind.CHAT,
        "greeting",
        r"^\s*(hi|hello|hey|good (morning|evening|afternoon)|thanks|thank you|cheers)\b",
        3.0,
    ),
    (
        IntentKind.CHAT,
        "explain",
        r"\b(explain|what is|what are|what's the difference|why (is|does|do)|how (does|do|is)|tell me about|describe|define|meaning of|summari[sz]e (this|the following))\b",
        1.5,
    ),
    (
        IntentKind.CHAT,
        "concept",
        r"\b(difference between|explain|how (does|do) .+ work|what does .+ mean|pros and cons)\b",
        0.0,
    ),
    (
        IntentKind.CHAT,
        "opinion",
        r"\b(do you think|your opinion|would you|can you help|joke|poem|story|translate|rewrite|rephrase)\b",
        2.0,
    ),
]

_COMPILED = [(kind, name, re.compile(pattern), weight) for kind, name, pattern, weight in _SIGNALS]

# How many different action areas a sequenced request touches before it is a plan.
_ACTION_KINDS = {
    IntentKind.FILE,
    IntentKind.GIT,
    IntentKind.WEB,
    IntentKind.SHELL,
    IntentKind.MEMORY,
    IntentKind.TODO,
}


_SEQUENCE_SPLIT = re.compile(
    r"\b(?:then|after that|afterwards|and finally|finally|followed by)\b|;"
)


def _multi_step(lowered: str) -> bool:
    """Whether at least two sequenced clauses each name an action on their own."""
    clauses = [c for c in _SEQUENCE_SPLIT.split(lowered) if c.strip(" ,.")]
    if len(clauses) < 2:
        return False
    acting = 0
    for clause in clauses:
        totals: dict[IntentKind, float] = {}
        for kind, _name, pattern, weight in _COMPILED:
            if kind in _ACTION_KINDS and pattern.search(clause):
                totals[kind] = totals.get(kind, 0.0) + weight
        acting += any(v >= 1.5 for v in totals.values())
    return acting >= 2


class RuleIntentAnalyzer:
    """Deterministic intent analysis from weighted keyword and pattern signals.

    Every kind sums the weights of its matching signals. A request with
    sequencing words ("then", "after that", a numbered list) that touches two
    or more action kinds becomes a ``plan``. Nothing matched means ``chat``.

    Example::

        RuleIntentAnalyzer().analyze("show the last 3 commits").kind   # IntentKind.GIT
    """

    def analyze(self, text: str) -> Intent:
        lowered = text.lower().strip()
        scores: dict[IntentKind, float] = dict.fromkeys(IntentKind, 0.0)
        signals: list[str] = []
        for kind, name, pattern, weight in _COMPILED:
            if pattern.search(lowered):
                scores[kind] += weight
                signals.append(f"{kind.value}:{name}")
        # "grep TODO", "find the FIXMEs in src": an upper-case code marker next to a
        # search verb is text to look for in files, not the user's to-do list.
        if _CODE_MARKER.search(text) and _SEARCH_VERB.search(lowered):
            scores[IntentKind.FILE] += 3.5
            signals.append("file:code-marker")
            # Only when the to-do signal came from the marker itself ("grep TODO"),
            # not from a real "add a todo" elsewhere in the request.
            if "todo:todo" in signals and not re.search(r"\b(to-?dos?)\b", text):
                scores[IntentKind.TODO] -= 3.0
                signals.remove("todo:todo")
        active = [k for k in _ACTION_KINDS if scores[k] >= 2.0]
        if scores[IntentKind.PLAN] >= 1.5 and len(active) >= 2:
            scores[IntentKind.PLAN] += 2.0 + max(scores[k] for k in active)
            signals.append("plan:multi-area")
        elif scores[IntentKind.PLAN] >= 1.5 and active and _multi_step(lowered):
            # "grep TODO then read the file": one area, but two actions in sequence.
            scores[IntentKind.PLAN] += 2.0 + max(scores[k] for k in active)
            signals.append("plan:multi-step")
        # A question that also names an action area is about that area, not chat.
        if (
            scores[IntentKind.CHAT]
            and active
            and not re.match(r"^\s*(hi|hello|hey|thanks)", lowered)
        ):
            scores[IntentKind.CHAT] *= 0.5
        # ... unless it asks about a concept ("explain", "difference between"): that is chat.
        if "chat:concept" in signals:
            scores[IntentKind.CHAT] += 3.0
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], _ORDER[kv[0]]))
        (best, top), (_, second) = ranked[0], ranked[1]
        rounded = {k.value: round(v, 2) for k, v in scores.items() if v}
        if top <= 0:
            return Intent(IntentKind.CHAT, 0.5, ["chat:default"], "rules", rounded)
        margin = (top - second) / top
        confidence = round(min(0.99, 0.45 + 0.35 * margin + 0.05 * min(top, 4.0)), 3)
        return Intent(best, confidence, signals, "rules", rounded)


# Tie-break order: more specific kinds first.
_ORDER = {
    IntentKind.PLAN: 0,
    IntentKind.GIT: 1,
    IntentKind.TODO: 2,
    IntentKind.MEMORY: 3,
    IntentKind.WEB: 4,
    IntentKind.FILE: 5,
    IntentKind.SHELL: 6,
    IntentKind.CHAT: 7,
}


class IntentReply(BaseModel):
    """The model's classification of one request."""

    intent: IntentKind = Field(
        description="One of: chat, file, git, web, shell, memory, todo, plan."
    )
    confidence: float = Field(ge=0, le=1, description="How sure you are, 0 to 1.")
    reason: str = Field(default="", description="A short reason.")


class LLMIntentAnalyzer:
    """Intent analysis by a language model (structured output), with the rules as safety net.

    Args:
        client: The LLM client.
        fallback: Used when the model call fails and for the fast path
            (default: :class:`RuleIntentAnalyzer`).
        raise_errors: Raise the model's error instead of falling back.
        fast_path: Skip the model when the rules are at least this confident
            (``None`` = always ask the model).
        prompt_version: Which ``intent`` prompt template to use (default: latest).
        max_tokens: Limit of the model's reply.
    """

    def __init__(
        self,
        client: LLMClient,
        *,
        fallback: IntentAnalyzer | None = None,
        raise_errors: bool = False,
        fast_path: float | None = None,
        prompt_version: int | None = None,
        max_tokens: int = 128,
    ) -> None:
        self.client = client
        self.fallback = fallback if fallback is not None else RuleIntentAnalyzer()
        self.raise_errors = raise_errors
        self.fast_path = fast_path
        self.prompt_version = prompt_version
        # Caps a runaway reply (a JSON grammar allows endless whitespace).
        self.max_tokens = max_tokens

    def analyze(self, text: str) -> Intent:
        if self.fast_path is not None:
            quick = self.fallback.analyze(text)
            if quick.confidence >= self.fast_path:
                return Intent(
                    quick.kind, quick.confidence, quick.signals, "rules (fast path)", quick.scores
                )
        reply = ask_model(self, "intent", IntentReply, request=text)
        if isinstance(reply, LLMError):
            return replace(self.fallback.analyze(text), source=fell_back(reply))
        return Intent(reply.intent, reply.confidence, [reply.reason] if reply.reason else [], "llm")
