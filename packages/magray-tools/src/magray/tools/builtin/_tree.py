"""File tools that walk directories: list, glob and grep, inside the sandbox roots.

Walks skip hidden and ``.gitignore``'d entries unless asked, and the files that
path rules hide (:mod:`._walk`).
"""

from __future__ import annotations

import stat
from typing import Any

from pydantic import Field

from magray.common.errors import InvalidInputError, ToolError
from magray.tools._model import Assessment, Risk, Tool, ToolContext, ToolResult
from magray.tools.builtin._textfile import (
    SNIFF_BYTES,
    FileArgs,
    decode_text,
    existing_dir,
    looks_binary,
    rel_path,
)
from magray.tools.builtin._walk import glob_to_regex, walk

__all__ = ["FileGlob", "FileGrep", "FileList"]


# ---------------------------------------------------------------------- list
class FileListArgs(FileArgs):
    path: str = Field(default=".", description="Directory to list.")
    depth: int = Field(default=2, ge=1, le=20, description="How many levels to descend.")
    include_hidden: bool = Field(default=False, description="Show dot-files.")
    respect_gitignore: bool = Field(default=True, description="Skip .gitignore'd paths.")
    max_entries: int = Field(default=500, ge=1, le=20_000)


class FileList(Tool[FileListArgs]):
    name = "file_list"
    description = (
        "List a directory inside the workspace as a tree (directories end with '/'), "
        "skipping .gitignore'd and hidden files by default."
    )
    args_model = FileListArgs
    risk = Risk.READ
    path_args = ("path",)

    def assess(self, args: FileListArgs, ctx: ToolContext) -> Assessment:
        ctx.policy.check_read(args.path, cwd=ctx.workspace)
        return Assessment.allow()

    def run(self, args: FileListArgs, ctx: ToolContext) -> ToolResult:
        root = existing_dir(ctx.policy.check_read(args.path, cwd=ctx.workspace), args.path)
        lines: list[str] = [f"{rel_path(root, ctx)}/"]
        entries: list[dict[str, Any]] = []
        truncated = False
        for entry in walk(
            root,
            ctx,
            max_depth=args.depth,
            include_hidden=args.include_hidden,
            respect_gitignore=args.respect_gitignore,
            tool=self.name,
        ):
            if len(entries) >= args.max_entries:
                truncated = True
                break
            kind = "dir" if entry.is_dir else "symlink" if entry.is_symlink else "file"
            suffix = "/" if entry.is_dir else " -> (symlink)" if entry.is_symlink else ""
            lines.append(f"{'  ' * entry.depth}{entry.path.name}{suffix}")
            entries.append({"path": entry.rel, "type": kind})
        if truncated:
            lines.append(f"[... stopped at {args.max_entries} entries]")
        return ToolResult(content="\n".join(lines), truncated=truncated, data={"entries": entries})


# ---------------------------------------------------------------------- glob
class FileGlobArgs(FileArgs):
    pattern: str = Field(
        min_length=1,
        description="Glob on paths relative to `path`: '*' and '?' stay within one directory, "
        "'**/' spans directories, '{a,b}' alternatives. Example: '**/*.py'.",
    )
    path: str = Field(default=".", description="Directory to search from.")
    include_hidden: bool = Field(default=False)
    respect_gitignore: bool = Field(default=True)
    max_results: int = Field(default=500, ge=1, le=20_000)


class FileGlob(Tool[FileGlobArgs]):
    name = "file_glob"
    description = (
        "Find files whose path (relative to `path`) matches a glob such as '**/*.py' or "
        "'src/*.{ts,tsx}'. Skips .gitignore'd and hidden files by default."
    )
    args_model = FileGlobArgs
    risk = Risk.READ
    path_args = ("path",)

    def assess(self, args: FileGlobArgs, ctx: ToolContext) -> Assessment:
        ctx.policy.check_read(args.path, cwd=ctx.workspace)
        return Assessment.allow()

    def run(self, args: FileGlobArgs, ctx: ToolContext) -> ToolResult:
        root = existing_dir(ctx.policy.check_read(args.path, cwd=ctx.workspace), args.path)
        regex = glob_to_regex(args.pattern.removeprefix("./"))
        matches: list[str] = []
        truncated = False
        for entry in walk(
            root,
            ctx,
            include_hidden=args.include_hidden,
            respect_gitignore=args.respect_gitignore,
            tool=self.name,
        ):
            if entry.is_dir or not regex.match(entry.rel):
                continue
            if len(matches) >= args.max_results:
                truncated = True
                break
            matches.append(entry.rel)
        content = "\n".join(matches) if matches else f"no files match {args.pattern!r}"
        if truncated:
            content += f"\n[... stopped at {args.max_results} results]"
        return ToolResult(
            content=content,
            truncated=truncated,
            data={"root": str(root), "matches": matches, "count": len(matches)},
        )


# ---------------------------------------------------------------------- grep
class FileGrepArgs(FileArgs):
    pattern: str = Field(min_length=1, description="Regular expression (Python syntax).")
    path: str = Field(default=".", description="File or directory to search.")
    glob: str | None = Field(
        default=None, description="Only files whose relative path matches this glob."
    )
    ignore_case: bool = Field(default=False)
    context: int = Field(default=0, ge=0, le=20, description="Lines of context around matches.")
    max_matches: int = Field(default=200, ge=1, le=10_000)
    include_hidden: bool = Field(default=False)
    respect_gitignore: bool = Field(default=True)
    max_file_bytes: int = Field(default=2_000_000, ge=1, description="Skip larger files.")


class FileGrep(Tool[FileGrepArgs]):
    name = "file_grep"
    description = (
        "Search file contents with a regular expression. Prints 'path:line:text' for "
        "matches and 'path-line-text' for context lines. Skips binary, huge, hidden and "
        ".gitignore'd files by default."
    )
    args_model = FileGrepArgs
    risk = Risk.READ
    path_args = ("path",)

    def assess(self, args: FileGrepArgs, ctx: ToolContext) -> Assessment:
        ctx.policy.check_read(args.path, cwd=ctx.workspace)
        return Assessment.allow()

    def run(self, args: FileGrepArgs, ctx: ToolContext) -> ToolResult:
        import regex

        start = ctx.policy.check_read(args.path, cwd=ctx.workspace)
        flags = regex.IGNORECASE if args.ignore_case else 0
        try:
            compiled = regex.compile(args.pattern, flags | regex.VERSION0)
        except regex.error as exc:
            raise InvalidInputError(
                f"invalid regular expression {args.pattern!r}: {exc}",
                hint="escape special characters such as ( [ . * with a backslash",
            ) from None
        file_filter = glob_to_regex(args.glob) if args.glob else None
        if start.is_file():
            files = [(start, start.name)]
        else:
            root = existing_dir(start, args.path)
            files = [
                (e.path, e.rel)
                for e in walk(
                    root,
                    ctx,
                    include_hidden=args.include_hidden,
                    respect_gitignore=args.respect_gitignore,
                    tool=self.name,
                )
                if not e.is_dir
                and not e.is_symlink
                and (file_filter is None or file_filter.match(e.rel))
            ]
        out: list[str] = []
        matches: list[dict[str, Any]] = []
        skipped = 0
        truncated = False
        for path, rel in files:
            ctx.check()
            try:
                st = path.stat()
                if not stat.S_ISREG(st.st_mode) or st.st_size > args.max_file_bytes:
                    skipped += 1
                    continue
                data = path.read_bytes()
            except OSError:
                skipped += 1
                continue
            if looks_binary(data[:SNIFF_BYTES]):
                continue
            text, _ = decode_text(data)
            lines = text.splitlines()
            hits: list[int] = []
            for number, line in enumerate(lines):
                try:
                    found = compiled.search(line, timeout=max(ctx.remaining(), 0.001))
                except TimeoutError:
                    ctx.check()
                    raise ToolError(
                        "the regular expression took too long (catastrophic backtracking?)",
                        hint="simplify the pattern; nested quantifiers like (a+)+ are slow",
                        code="tool.file.regex_timeout",
                    ) from None
                if found:
                    hits.append(number)
                    matches.append({"path": rel, "line": number + 1, "text": line[:500]})
                    if len(matches) >= args.max_matches:
                        truncated = True
                        break
            if hits:
                out.extend(_with_context(rel, lines, hits, args.context))
            if truncated:
                break
        if not matches:
            content = f"no matches for {args.pattern!r}"
        else:
            content = "\n".join(out)
            if truncated:
                content += f"\n[... stopped at {args.max_matches} matches]"
        return ToolResult(
            content=content,
            truncated=truncated,
            data={"matches": matches, "count": len(matches), "files_skipped": skipped},
        )


def _with_context(rel: str, lines: list[str], hits: list[int], context: int) -> list[str]:
    out: list[str] = []
    hit_set = set(hits)
    shown: set[int] = set()
    previous = -2
    for hit in hits:
        for number in range(max(0, hit - context), min(len(lines), hit + context + 1)):
            if number in shown:
                continue
            if context and previous >= 0 and number > previous + 1:
                out.append("--")
            sep = ":" if number in hit_set else "-"
            out.append(f"{rel}{sep}{number + 1}{sep}{lines[number][:500]}")
            shown.add(number)
            previous = number
    return out
