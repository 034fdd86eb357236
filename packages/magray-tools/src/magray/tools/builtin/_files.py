"""File tools: read, write, edit, list, glob and grep, all inside the sandbox roots."""

from __future__ import annotations

import codecs
import difflib
import os
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from magray.common.errors import ConflictError, InvalidInputError, NotFoundError, ToolError
from magray.common.fs import atomic_write_bytes, user_umask
from magray.tools._model import Assessment, Risk, Tool, ToolContext, ToolResult
from magray.tools.builtin._walk import glob_to_regex, walk

__all__ = ["FileEdit", "FileGlob", "FileGrep", "FileList", "FileRead", "FileWrite"]

_SNIFF = 8192
_MAX_LINE_SCAN_BYTES = 64 * 1024 * 1024  # line ranges stream at most this much of a file
_FALLBACK_ENCODINGS = ("cp1252", "latin-1")


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _rel(path: Path, ctx: ToolContext) -> str:
    try:
        return path.relative_to(ctx.workspace).as_posix() or "."
    except ValueError:
        return str(path)


def _regular_file(path: Path, raw: str) -> os.stat_result:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise NotFoundError(
            f"file not found: {raw}", hint="file_list or file_glob show what exists"
        ) from None
    except OSError as exc:
        raise ToolError(f"cannot stat {raw}: {exc.strerror}", code="tool.file") from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInputError(f"{raw} is a directory", hint="use file_list for directories")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(
            f"{raw} is not a regular file (device, FIFO or socket)",
            hint="only regular files can be read or edited",
        )
    return st


def _looks_binary(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return b"\x00" in head


def decode_text(data: bytes, *, final: bool = True) -> tuple[str, str]:
    """``(text, encoding)``: UTF-8 (with or without BOM), UTF-16 with BOM, then cp1252/latin-1."""
    if data.startswith(codecs.BOM_UTF8):
        return codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=final), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), "utf-16"
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=final), "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding in _FALLBACK_ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"  # pragma: no cover - latin-1 never fails


def _diff(old: str, new: str, rel: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{rel}" if old else "/dev/null",
        tofile=f"b/{rel}",
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)  # fmt: skip


# ---------------------------------------------------------------------- read
class FileReadArgs(_Args):
    path: str = Field(description="File to read, relative to the workspace or absolute.")
    start_line: int | None = Field(default=None, ge=1, description="First line (1-based).")
    end_line: int | None = Field(default=None, ge=1, description="Last line, inclusive.")
    max_bytes: int | None = Field(
        default=None, ge=1, description="Read at most this many bytes (default: the output cap)."
    )


class FileRead(Tool[FileReadArgs]):
    name = "file_read"
    description = (
        "Read a text file inside the workspace. Optionally only lines start_line..end_line "
        "(1-based, inclusive). Binary files are refused; large files are cut at max_bytes "
        "and the result says so."
    )
    args_model = FileReadArgs
    risk = Risk.READ
    path_args = ("path",)

    def assess(self, args: FileReadArgs, ctx: ToolContext) -> Assessment:
        ctx.policy.check_read(args.path, cwd=ctx.workspace)
        return Assessment.allow()

    def run(self, args: FileReadArgs, ctx: ToolContext) -> ToolResult:
        path = ctx.policy.check_read(args.path, cwd=ctx.workspace)
        st = _regular_file(path, args.path)
        cap = min(args.max_bytes or ctx.policy.max_output_bytes, ctx.policy.max_output_bytes)
        if args.start_line and args.end_line and args.end_line < args.start_line:
            raise InvalidInputError("end_line is before start_line")
        with path.open("rb") as handle:
            head = handle.read(_SNIFF)
            if _looks_binary(head):
                raise ToolError(
                    f"{args.path} looks like a binary file ({st.st_size} bytes); not shown",
                    hint="only text files can be read",
                    code="tool.file.binary",
                    details={"size": st.st_size},
                )
            handle.seek(0)
            if args.start_line is None and args.end_line is None:
                data = handle.read(cap + 1)
                truncated = len(data) > cap
                data = data[:cap]
                first, last = 1, None
            else:
                data, truncated, first, last = _read_lines(handle, args, cap, ctx)
        text, encoding = decode_text(data, final=not truncated)
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if last is None:
            last = first + max(lines - 1, 0)
        content = text
        if truncated:
            content += f"\n[... cut at {cap} bytes of {st.st_size}; use start_line/end_line]"
        return ToolResult(
            content=content,
            truncated=truncated,
            data={
                "path": str(path),
                "encoding": encoding,
                "size_bytes": st.st_size,
                "start_line": first,
                "end_line": last,
            },
        )


def _read_lines(
    handle: Any, args: FileReadArgs, cap: int, ctx: ToolContext
) -> tuple[bytes, bool, int, int]:
    start = args.start_line or 1
    end = args.end_line
    out = bytearray()
    scanned = 0
    last = start - 1
    truncated = False
    for number, line in enumerate(handle, start=1):
        scanned += len(line)
        if number % 10_000 == 0:
            ctx.check()
        if scanned > _MAX_LINE_SCAN_BYTES:
            truncated = True
            break
        if number < start:
            continue
        if end is not None and number > end:
            break
        if len(out) + len(line) > cap:
            out += line[: cap - len(out)]
            truncated = True
            last = number
            break
        out += line
        last = number
    return bytes(out), truncated, start, max(last, start)


# ---------------------------------------------------------------------- write
class FileWriteArgs(_Args):
    path: str = Field(description="File to write, relative to the workspace or absolute.")
    content: str = Field(description="The complete new content of the file (UTF-8).")
    overwrite: bool = Field(default=False, description="Replace the file if it exists.")
    create_parents: bool = Field(
        default=True, description="Create missing parent directories (inside the workspace)."
    )


class FileWrite(Tool[FileWriteArgs]):
    name = "file_write"
    description = (
        "Write a UTF-8 text file inside the workspace, atomically. Refuses to replace an "
        "existing file unless overwrite is true. Returns a unified diff of the change."
    )
    args_model = FileWriteArgs
    risk = Risk.WRITE
    path_args = ("path",)

    def assess(self, args: FileWriteArgs, ctx: ToolContext) -> Assessment:
        path = ctx.policy.check_write(args.path, cwd=ctx.workspace)
        if args.overwrite and path.exists() and not ctx.policy.allow_overwrite:
            return Assessment.ask(
                f"replaces the existing file {args.path} (tools.allow_overwrite = true "
                "lets file_write overwrite without asking)"
            )
        return Assessment.allow()

    def run(self, args: FileWriteArgs, ctx: ToolContext) -> ToolResult:
        path = ctx.policy.check_write(args.path, cwd=ctx.workspace)
        old = ""
        # A new file gets the user's umask (magray itself runs with a private 077), never
        # an executable bit.
        mode = 0o666 & ~user_umask()
        existed = path.exists() or path.is_symlink()
        if existed:
            if path.is_dir():
                raise InvalidInputError(f"{args.path} is a directory")
            if not args.overwrite:
                raise ConflictError(
                    f"{args.path} already exists",
                    hint="set overwrite=true to replace it, or use file_edit for a change",
                    code="conflict.exists",
                )
            st = _regular_file(path, args.path)
            # Never keep (or give) an executable bit: a written file must not become a
            # program that a later "./file --version" runs.
            mode = stat.S_IMODE(st.st_mode) & ~0o111
            old, _ = decode_text(path.read_bytes())
        parent = path.parent
        if not parent.exists():
            if not args.create_parents:
                raise NotFoundError(
                    f"directory {_rel(parent, ctx)} does not exist",
                    hint="set create_parents=true to create it",
                )
            # ``path`` is resolved and inside a write root, so every missing parent is too.
            ctx.policy.check_write(parent)
            _make_parents(parent)
        elif not parent.is_dir():
            raise InvalidInputError(f"{_rel(parent, ctx)} is not a directory")
        atomic_write_bytes(path, args.content.encode("utf-8"), mode=mode)
        rel = _rel(path, ctx)
        diff = _diff(old, args.content, rel)
        verb = "replaced" if existed else "created"
        return ToolResult(
            content=f"{verb} {rel} ({len(args.content.encode())} bytes)\n{diff}",
            data={"path": str(path), "bytes": len(args.content.encode()), "diff": diff},
        )


def _make_parents(directory: Path) -> None:
    """Create ``directory`` and its missing parents with the user's umask, not magray's."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    if missing:
        missing[0].mkdir(parents=True, exist_ok=True)
    dir_mode = 0o777 & ~user_umask()
    for made in missing:
        os.chmod(made, dir_mode)


# ---------------------------------------------------------------------- edit
class FileEditArgs(_Args):
    path: str = Field(description="File to edit.")
    old_text: str = Field(min_length=1, description="Exact text to replace (must be unique).")
    new_text: str = Field(description="Replacement text.")
    replace_all: bool = Field(
        default=False, description="Replace every occurrence instead of requiring exactly one."
    )


class FileEdit(Tool[FileEditArgs]):
    name = "file_edit"
    description = (
        "Replace old_text with new_text in a UTF-8 file inside the workspace. old_text must "
        "occur exactly once (include surrounding lines to make it unique) unless replace_all "
        "is true. Written atomically; returns a unified diff."
    )
    args_model = FileEditArgs
    risk = Risk.WRITE
    path_args = ("path",)

    def assess(self, args: FileEditArgs, ctx: ToolContext) -> Assessment:
        ctx.policy.check_write(args.path, cwd=ctx.workspace)
        return Assessment.allow()

    def run(self, args: FileEditArgs, ctx: ToolContext) -> ToolResult:
        path = ctx.policy.check_write(args.path, cwd=ctx.workspace)
        st = _regular_file(path, args.path)
        raw = path.read_bytes()
        if _looks_binary(raw[:_SNIFF]):
            raise ToolError(f"{args.path} looks binary; not edited", code="tool.file.binary")
        text, encoding = decode_text(raw)
        count = text.count(args.old_text)
        if count == 0:
            hint = "file_read the file and copy the text exactly (whitespace matters)"
            if args.old_text.strip() and args.old_text.strip() in text:
                hint = "the text occurs with different surrounding whitespace; copy it exactly"
            raise NotFoundError(f"old_text not found in {args.path}", hint=hint)
        if count > 1 and not args.replace_all:
            raise ConflictError(
                f"old_text occurs {count} times in {args.path}",
                hint="include more surrounding lines to make it unique, or set replace_all=true",
                code="conflict.ambiguous",
            )
        new = text.replace(args.old_text, args.new_text)
        out_encoding = "utf-8" if encoding in _FALLBACK_ENCODINGS else encoding
        atomic_write_bytes(path, new.encode(out_encoding), mode=stat.S_IMODE(st.st_mode))
        rel = _rel(path, ctx)
        diff = _diff(text, new, rel)
        return ToolResult(
            content=f"edited {rel}: {count} replacement(s)\n{diff}",
            data={"path": str(path), "replacements": count, "diff": diff},
        )


# ---------------------------------------------------------------------- list
class FileListArgs(_Args):
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
        root = _directory(ctx.policy.check_read(args.path, cwd=ctx.workspace), args.path)
        lines: list[str] = [f"{_rel(root, ctx)}/"]
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


def _directory(path: Path, raw: str) -> Path:
    if not path.exists():
        raise NotFoundError(f"directory not found: {raw}")
    if not path.is_dir():
        raise InvalidInputError(f"{raw} is not a directory")
    return path


# ---------------------------------------------------------------------- glob
class FileGlobArgs(_Args):
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
        root = _directory(ctx.policy.check_read(args.path, cwd=ctx.workspace), args.path)
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
class FileGrepArgs(_Args):
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
            root = _directory(start, args.path)
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
            if _looks_binary(data[:_SNIFF]):
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
