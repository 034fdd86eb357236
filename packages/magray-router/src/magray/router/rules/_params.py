"""Parameter extraction: a request + a tool's JSON schema → validated arguments.

The extractor never guesses a required value: what it cannot find is reported
in ``missing`` with a question to ask the user. :class:`RuleParameterExtractor`
uses patterns keyed on each property's name, type, enum and description (paths,
URLs, quoted text, backticks, numbers, "for ..." queries, "remind me to ...");
:class:`LLMParameterExtractor` asks a model and then applies the same
validation, so a model cannot smuggle in arguments the schema rejects.
"""

# ruff: noqa: E501  (the pattern tables read best with one pattern per line)
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field

from magray.common.errors import LLMError
from magray.router.rules._ask import ask_model, fell_back
from magray.router.rules._schema import ToolSpec, tool_specs, validate_arguments
from magray.router.rules._text import FILE_EXTENSIONS, NUMBER_WORDS

if TYPE_CHECKING:
    from magray.llm import LLMClient

__all__ = ["Extraction", "LLMParameterExtractor", "ParameterExtractor", "RuleParameterExtractor"]


@dataclass(frozen=True)
class Extraction:
    """Arguments for one tool call, or what is still missing.

    Attributes:
        tool: The tool's name.
        arguments: Values found (validated against the schema).
        missing: Required properties that were not found.
        question: What to ask the user when something is missing.
        errors: Schema violations of values that were found (they are dropped).
        source: ``"rules"`` or ``"llm"`` (or the rules after an LLM failure).
    """

    tool: str
    arguments: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    question: str | None = None
    errors: list[str] = field(default_factory=list)
    source: str = "rules"

    @property
    def complete(self) -> bool:
        """All required arguments are present and valid."""
        return not self.missing


class ParameterExtractor(Protocol):
    """Anything that fills in a tool's arguments from a request."""

    def extract(self, request: str, tool: Mapping[str, Any]) -> Extraction: ...


def _question(spec: ToolSpec, missing: list[str]) -> str | None:
    if not missing:
        return None
    parts = []
    for name in missing:
        desc = str(spec.properties.get(name, {}).get("description") or "").rstrip(".")
        parts.append(f"{name} ({desc.lower()})" if desc else name)
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"To run {spec.name} I need the {listed}. What should I use?"


# ------------------------------------------------------------------ rules

_QUOTED = re.compile(r"\"([^\"]+)\"|'([^']{2,})'|“([^”]+)”")
_BACKTICK = re.compile(r"`([^`]+)`")
_URL = re.compile(r"https?://[^\s'\"<>]+|\bwww\.[^\s'\"<>]+")
_PATH = re.compile(
    r"(?<![\w@/])(~?/[\w.\-/]+|\.{1,2}/[\w.\-/]*|[\w\-]+(?:/[\w.\-]+)+|[\w\-]+\.[A-Za-z][\w]{0,7})(?![\w/])"
)
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_DAYS = r"(today|tonight|tomorrow|monday|tuesday|wednesday|thursday|friday|saturday|sunday|next week|\d{4}-\d{2}-\d{2})"

_PATH_NAMES = {
    "path",
    "file",
    "filename",
    "file_path",
    "filepath",
    "dir",
    "directory",
    "folder",
    "src",
    "source",
    "dst",
    "dest",
    "destination",
    "target",
    "cwd",
}
_URL_NAMES = {"url", "uri", "link", "href", "page"}
_QUERY_NAMES = {"query", "q", "search", "pattern", "term", "terms", "keywords", "topic", "regex"}
_COMMAND_NAMES = {"command", "cmd", "script", "shell", "command_line"}
_MESSAGE_NAMES = {"message", "msg", "commit_message"}
_TEXT_NAMES = {"text", "content", "contents", "body", "note", "fact", "value", "data"}
_TITLE_NAMES = {"title", "task", "name", "summary", "description", "item"}
_DUE_NAMES = {"due", "due_date", "date", "when", "deadline"}
_COUNT_NAMES = {
    "n",
    "limit",
    "count",
    "max",
    "max_results",
    "max_lines",
    "lines",
    "number",
    "k",
    "top",
    "top_k",
    "num",
}

_FILE_EXT = re.compile(rf"\.(?:{FILE_EXTENSIONS})$", re.IGNORECASE)


def _strip(text: str) -> str:
    return text.strip().strip(".,;:!?").strip()


def _quoted(text: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]


def _quoted_or_matched(text: str, patterns: list[str]) -> str | None:
    """The first quoted string in ``text``, else group 1 of the first pattern that finds one."""
    quoted = _quoted(text)
    if quoted:
        return quoted[0]
    for pattern in patterns:
        match = re.search(pattern, text, re.IGNORECASE)
        if match and _strip(match.group(1)):
            return _strip(match.group(1))
    return None


def _paths(text: str) -> list[str]:
    cleaned = _URL.sub(" ", _QUOTED.sub(" ", text))
    found = []
    for match in _PATH.finditer(cleaned):
        candidate = match.group(1).rstrip(".,;:!?")
        if "/" in candidate or _FILE_EXT.search(candidate) or candidate.startswith("~"):
            found.append(candidate)
    # Quoted file names count too ("open 'my notes.txt'").
    found += [q for q in _quoted(text) if _FILE_EXT.search(q)]
    return found


def _after(text: str, words: str) -> str | None:
    match = re.search(rf"\b(?:{words})\b[:\s]+(.+)$", text, re.IGNORECASE | re.DOTALL)
    return _strip(match.group(1)) if match else None


class RuleParameterExtractor:
    """Deterministic argument extraction from patterns keyed on the schema.

    Example::

        tool = {"name": "read_file", "parameters": {"type": "object",
                "properties": {"path": {"type": "string"}}, "required": ["path"]}}
        RuleParameterExtractor().extract("show me README.md", tool).arguments
        # {"path": "README.md"}
    """

    def extract(self, request: str, tool: Mapping[str, Any]) -> Extraction:
        (spec,) = tool_specs([tool])
        found: dict[str, Any] = {}
        used_paths: list[str] = []
        for name, schema in spec.properties.items():
            value = self._value(name, schema, request, used_paths, spec)
            if value is not None:
                found[name] = value
        valid, missing, errors = validate_arguments(found, spec)
        return Extraction(spec.name, valid, missing, _question(spec, missing), errors, "rules")

    def _value(
        self,
        name: str,
        schema: Mapping[str, Any],
        text: str,
        used_paths: list[str],
        spec: ToolSpec,
    ) -> Any:
        key = name.lower()
        kind = schema.get("type")
        lowered = text.lower()
        if "enum" in schema:
            for option in schema["enum"]:
                if isinstance(option, str) and re.search(
                    rf"\b{re.escape(option.lower())}\b", lowered
                ):
                    return option
            if key == "status" and re.search(r"\b(all|including|every)\b", lowered):
                return "all" if "all" in schema["enum"] else None
            return None
        if kind == "boolean":
            return self._boolean(key, schema, lowered)
        if kind in ("integer", "number"):
            return self._number(key, lowered, kind)
        if key in _URL_NAMES or "url" in key:
            urls = _URL.findall(text)
            return urls[0].rstrip(".,;:!?)") if urls else None
        if key in _PATH_NAMES or key.endswith(("_path", "_file", "_dir")):
            for candidate in _paths(text) + self._folder_words(text):
                if candidate not in used_paths:
                    used_paths.append(candidate)
                    return candidate
            return None
        if key in _COMMAND_NAMES:
            ticks = _BACKTICK.findall(text)
            if ticks:
                return ticks[0].strip()
            quoted = _quoted(text)
            if quoted:
                return quoted[0]
            match = re.search(
                r"\b(?:run|execute|exec)\s+(?!the\b|a\b|all\b|my\b)(.+?)(?:\s+in the terminal)?$",
                text,
                re.IGNORECASE,
            )
            return _strip(match.group(1)) if match else None
        if key in _MESSAGE_NAMES:
            quoted = _quoted(text)
            if quoted:
                return quoted[0]
            match = re.search(r"\b(?:message|msg|commit)\s*:\s*(.+)$", text, re.IGNORECASE)
            return _strip(match.group(1)) if match else _after(text, r"with (?:the )?message|-m")
        if key in _QUERY_NAMES:
            return self._query(text, key)
        if key in _TEXT_NAMES:
            return self._content(text, spec)
        if key in _TITLE_NAMES:
            return self._title(text)
        if key in _DUE_NAMES:
            match = re.search(rf"\b(?:on |by |for |until )?{_DAYS}\b", lowered)
            return match.group(1) if match else None
        return None

    @staticmethod
    def _folder_words(text: str) -> list[str]:
        match = re.search(
            r"\b(?:in|of|under|inside)\s+(?:the\s+)?([\w.\-~/]+)\s+(?:folder|directory|dir)\b"
            r"|\b(?:folder|directory|dir)\s+([\w.\-~/]+)",
            text,
            re.IGNORECASE,
        )
        if not match:
            return []
        word = match.group(1) or match.group(2)
        return [] if word.lower() in {"the", "this", "that", "a", "my"} else [word]

    @staticmethod
    def _boolean(key: str, schema: Mapping[str, Any], lowered: str) -> bool | None:
        patterns = {
            "recursive": r"\brecursive(ly)?\b|\ball subfolders\b",
            "all": r"\b(everything|all (changes|files)|-a\b)",
            "staged": r"\bstaged\b(?! and)",
            "append": r"\bappend\b|\badd to the end\b",
            "force": r"\bforce\b",
        }
        pattern = patterns.get(key, rf"\b{re.escape(key)}\b")
        if re.search(pattern, lowered) and not re.search(rf"\bun{re.escape(key)}\b", lowered):
            return True
        return None

    @staticmethod
    def _number(key: str, lowered: str, kind: str) -> int | float | None:
        if key not in _COUNT_NAMES and key not in {"timeout", "seconds"}:
            return None
        if key in {"timeout", "seconds"}:
            match = re.search(r"(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds)\b", lowered)
        else:
            match = re.search(
                r"\b(?:last|first|top|latest|recent|max(?:imum)?|up to|at most)\s+"
                r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|twenty)\b",
                lowered,
            )
            match = match or re.search(
                r"\b(\d+)\s+(?:commits?|lines?|results?|items?|entries|files?)\b", lowered
            )
        if not match:
            return None
        raw = match.group(1)
        value: float = NUMBER_WORDS[raw] if raw in NUMBER_WORDS else float(raw)
        return int(value) if kind == "integer" else value

    @staticmethod
    def _query(text: str, key: str) -> str | None:
        quoted = _quoted(text)
        if quoted:
            return quoted[0]
        ticks: list[str] = _BACKTICK.findall(text)
        if ticks:
            return ticks[0]
        patterns = [
            r"\b(?:search|searching|look|looking)\s+(?:the web |online |the internet )?(?:up |for |about )(.+)",
            r"\b(?:google|look up|lookup|find out|research)\s+(?:about\s+)?(.+)",
            r"\bgrep\s+(?:for\s+)?(\S+)",
            r"\bfind (?:where )?(?:the (?:function|class|variable|word|text|string) )?(\S+)",
            r"\b(?:what|anything|everything) (?:do you (?:know|remember) |did i (?:tell you |say )|we decided )?about (.+)",
            r"\b(?:recall|remember)\s+(?:what\s+)?(.+)",
            r"\b(?:news|latest|documentation|docs) (?:about|on|for) (.+)",
            r"\bmention(?:s|ed)?\s+(.+)",
        ]
        for pattern in patterns:
            match = re.search(pattern, text, re.IGNORECASE)
            if match:
                value = re.sub(
                    r"\s+(?:in|on|from|inside)\s+(?:the\s+)?(?:web|internet|online|code|codebase|src|"
                    r"[\w./-]+\s+(?:folder|directory|dir)|[\w./-]+/)\s*$",
                    "",
                    match.group(1),
                    flags=re.IGNORECASE,
                )
                value = re.sub(
                    r"\s+(?:online|on the (?:web|internet)|is used in the code)\s*$",
                    "",
                    value,
                    flags=re.IGNORECASE,
                )
                value = _strip(value)
                if value:
                    return value
        return None

    @staticmethod
    def _content(text: str, spec: ToolSpec) -> str | None:
        return _quoted_or_matched(
            text,
            [
                r"\b(?:remember|memori[sz]e|note|keep in mind|don't forget)(?: that)?[:\s]+(.+)",
                r"\b(?:the following|this|text)[:\s]+(.+)",
                r":\s+(.+)",
            ],
        )

    @staticmethod
    def _title(text: str) -> str | None:
        return _quoted_or_matched(
            text,
            [
                rf"\bremind me (?:to|about)\s+(.+?)(?:\s+(?:on|by|at|for)?\s*{_DAYS}\b.*)?$",
                rf"\b(?:add|create|new)\s+(?:a\s+)?(?:task|todo|to-do|reminder)\s+(?:to\s+|for\s+|:\s*)?(.+?)(?:\s+(?:on|by|for)\s+{_DAYS}\b.*)?$",
                r"\bmark (?:the )?(.+?) (?:task )?as (?:done|complete|finished)",
                r"\b(?:finished|completed|done with) (?:the )?(.+?)(?: task)?(?:,|$)",
            ],
        )


# ------------------------------------------------------------------ LLM


class ExtractionReply(BaseModel):
    """The model's arguments for one tool call."""

    arguments: dict[str, Any] = Field(default_factory=dict)
    missing: list[str] = Field(default_factory=list)
    question: str | None = None


class LLMParameterExtractor:
    """Argument extraction by a language model, validated against the schema.

    Values that violate the schema are dropped and reported; required
    properties that are absent are listed as missing even if the model forgot
    to say so. A failed call falls back to the rules (unless ``raise_errors``).
    """

    def __init__(
        self,
        client: LLMClient,
        *,
        fallback: ParameterExtractor | None = None,
        raise_errors: bool = False,
        prompt_version: int | None = None,
        max_tokens: int = 384,
    ) -> None:
        self.client = client
        self.fallback = fallback if fallback is not None else RuleParameterExtractor()
        self.raise_errors = raise_errors
        self.prompt_version = prompt_version
        # Caps a runaway reply (a JSON grammar allows endless whitespace).
        self.max_tokens = max_tokens

    def extract(self, request: str, tool: Mapping[str, Any]) -> Extraction:
        (spec,) = tool_specs([tool])
        schema = json.dumps(spec.parameters, indent=1)
        reply = ask_model(
            self, "extract_params", ExtractionReply, request=request, tool=spec.name, schema=schema
        )
        if isinstance(reply, LLMError):
            return replace(self.fallback.extract(request, tool), source=fell_back(reply))
        valid, missing, errors = validate_arguments(reply.arguments, spec)
        missing = sorted(
            set(missing) | {m for m in reply.missing if m in spec.required} - set(valid),
            key=spec.required.index,
        )
        question = reply.question if missing and reply.question else _question(spec, missing)
        return Extraction(spec.name, valid, missing, question, errors, "llm")
