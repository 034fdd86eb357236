"""Rules for the file tools: grep, glob, listing a directory, reading a file."""

from __future__ import annotations

import re
from typing import Any

from magray.router.rules._match import FILE, NOT_PATHS, PATHISH, Refined, path_in, valid_regex

__all__ = ["glob", "grep_command", "list_dir", "marker_grep", "open_file", "quoted_grep"]

_MARKER = re.compile(r"\b(TODO|FIXME|XXX|HACK)(?:s|'s)?\b")
_LANGUAGES = {
    "python": "py",
    "markdown": "md",
    "rust": "rs",
    "javascript": "js",
    "typescript": "ts",
    "go": "go",
    "java": "java",
    "json": "json",
    "yaml": "{yaml,yml}",
    "toml": "toml",
    "text": "txt",
    "shell": "sh",
    "c": "c",
    "html": "html",
    "css": "css",
}


_GREP_COMMAND = re.compile(
    r"^\s*grep\s+(?P<flags>(?:-[a-zA-Z]+\s+)*)(?:[\"'](?P<q>[^\"']+)[\"']|(?P<w>\S+))"
    r"(?:\s+(?:in\s+)?(?P<path>" + PATHISH + r"))?\s*$",
    re.IGNORECASE,
)


def grep_command(clause: str, tool: str | None) -> Refined | None:
    """``grep -i error in logs/app.log``: a grep written like the command."""
    m = _GREP_COMMAND.search(clause)
    if m is None or (m.group("w") or "").lower() in ("for", "the"):
        return None
    args: dict[str, Any] = {"pattern": valid_regex(m.group("q") or m.group("w"))}
    if "i" in (m.group("flags") or ""):
        args["ignore_case"] = True
    if m.group("path") and m.group("path").lower() not in NOT_PATHS:
        args["path"] = m.group("path")
    return Refined("file_grep", args, "grep command", keep=False)


def marker_grep(clause: str, tool: str | None) -> Refined | None:
    m = _MARKER.search(clause)
    if m is None:
        return None
    lowered = clause.lower()
    if re.match(r"\s*(?:add|create|remind|put|new)\b", lowered) or re.search(
        r"\bmy\s+(?:todo|task)", lowered
    ):
        return None
    args: dict[str, Any] = {"pattern": m.group(1)}
    path = path_in(clause)
    if path:
        args["path"] = path
    return Refined("file_grep", args, "code marker → grep")


_SEARCH_QUOTED = re.compile(
    r"\b(?:search|grep|look|find)\b[^\"'`“]*?[\"'`“](?P<q>[^\"'`”]+)[\"'`”]", re.IGNORECASE
)
_IN_CODE = re.compile(r"\b(?:code|codebase|repo|repository|project|sources?|files)\b", re.I)


def quoted_grep(clause: str, tool: str | None) -> Refined | None:
    m = _SEARCH_QUOTED.search(clause)
    if m is None or re.search(r"\b(?:memory|memories|web|internet|online)\b", clause, re.I):
        return None
    path = path_in(clause)
    searched = re.search(r"\b(?:search|grep)\s+(?P<p>[\w.\-/]+)\s+for\b", clause, re.I)
    if path is None and searched and searched.group("p").lower() not in NOT_PATHS:
        path = searched.group("p")
    if path is None and not _IN_CODE.search(clause):
        return None
    args: dict[str, Any] = {"pattern": valid_regex(m.group("q"))}
    if path:
        args["path"] = path
    return Refined("file_grep", args, "grep for quoted text", keep=False)


_OPEN_FILE = re.compile(
    r"^\s*(?:please\s+)?(?:open|view|cat|print|display|show)\s+(?:me\s+)?(?:the\s+)?(?:file\s+)?"
    + FILE
    + r"\s*$",
    re.IGNORECASE,
)


_INSIDE_FILE = re.compile(
    r"\b(?:what(?:'s|\s+is)\s+(?:inside|in)|contents?\s+of)\s+(?:the\s+)?(?:file\s+)?"
    + FILE
    + r"|\bwhat\s+does\s+(?:the\s+)?(?:file\s+)?"
    + FILE.replace("file>", "file2>")
    + r"\s+(?:contain|say|hold)\b",
    re.IGNORECASE,
)


def open_file(clause: str, tool: str | None) -> Refined | None:
    m = _OPEN_FILE.search(clause) or _INSIDE_FILE.search(clause)
    if m is None:
        return None
    return Refined("file_read", {"path": m.group("file") or m.group("file2")}, "open file")


_LANG_FILES = re.compile(
    r"\b(?:find|list|show|which|what|all|get)\b.*?\b(?P<lang>"
    + "|".join(_LANGUAGES)
    + r")\s+files?\b",
    re.IGNORECASE,
)
_GLOB = re.compile(r"(?:^|\s)(?P<g>[\w.\-/]*\*[\w.*?\-/{},]*)")


def glob(clause: str, tool: str | None) -> Refined | None:
    m = _GLOB.search(clause)
    if m and re.search(r"\b(?:find|list|show|files?|matching|named)\b", clause, re.I):
        pattern = m.group("g")
        if "/" not in pattern:
            pattern = f"**/{pattern}"
    else:
        lang = _LANG_FILES.search(clause)
        if lang is None:
            return None
        pattern = f"**/*.{_LANGUAGES[lang.group('lang').lower()]}"
    args: dict[str, Any] = {"pattern": pattern}
    path = path_in(clause)
    if path:
        args["path"] = path
    return Refined("file_glob", args, "glob", keep=False)


_LIST_DIR = re.compile(
    r"\b(?:list|show|display|ls|tree)\b.*\b(?:files?|contents?|director(?:y|ies)|folders?|tree)\b"
    r"|\b(?:what|which)\s+files\b"
    r"|\bwhat(?:'s|\s+is)\s+in\s+(?:the\s+)?[\w.\-/]+\s+(?:folder|directory|dir)\b",
    re.IGNORECASE,
)


def list_dir(clause: str, tool: str | None) -> Refined | None:
    if re.search(
        r"\btree\s+of\s+(?:the\s+|this\s+)?(?:repo|repository|project|workspace)\b", clause, re.I
    ):
        return Refined("file_list", {}, "tree of the workspace", keep=False)
    if tool != "file_list" and not _LIST_DIR.search(clause):
        return None
    if re.search(r"\b(?:tasks?|todos?|commits?|memor(?:y|ies))\b", clause, re.I):
        return None
    path = path_in(clause)
    if path is None or re.search(r"\.[A-Za-z]\w{0,7}$", path):  # a file: not a listing
        return None
    return Refined("file_list", {"path": path}, "list a directory")
