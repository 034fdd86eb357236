"""File tools that read and change one file: read, write, edit, inside the sandbox roots.

The tools that walk directories (list, glob, grep) are in :mod:`._tree`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from pydantic import Field

from magray.common.errors import ConflictError, InvalidInputError, NotFoundError, ToolError
from magray.common.fs import atomic_write_bytes, user_umask
from magray.tools._model import Assessment, Risk, Tool, ToolContext, ToolResult
from magray.tools.builtin._textfile import (
    FALLBACK_ENCODINGS,
    SNIFF_BYTES,
    FileArgs,
    decode_text,
    looks_binary,
    regular_file,
    rel_path,
    unified_diff,
)

# The entry points (pyproject.toml) name this module for all six file tools.
from magray.tools.builtin._tree import FileGlob, FileGrep, FileList

__all__ = ["FileEdit", "FileGlob", "FileGrep", "FileList", "FileRead", "FileWrite"]

_MAX_LINE_SCAN_BYTES = 64 * 1024 * 1024  # line ranges stream at most this much of a file


# ---------------------------------------------------------------------- read
class FileReadArgs(FileArgs):
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
        st = regular_file(path, args.path)
        cap = min(args.max_bytes or ctx.policy.max_output_bytes, ctx.policy.max_output_bytes)
        if args.start_line and args.end_line and args.end_line < args.start_line:
            raise InvalidInputError("end_line is before start_line")
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
            if looks_binary(head):
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
class FileWriteArgs(FileArgs):
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
            st = regular_file(path, args.path)
            # Never keep (or give) an executable bit: a written file must not become a
            # program that a later "./file --version" runs.
            mode = stat.S_IMODE(st.st_mode) & ~0o111
            old, _ = decode_text(path.read_bytes())
        parent = path.parent
        if not parent.exists():
            if not args.create_parents:
                raise NotFoundError(
                    f"directory {rel_path(parent, ctx)} does not exist",
                    hint="set create_parents=true to create it",
                )
            # ``path`` is resolved and inside a write root, so every missing parent is too.
            ctx.policy.check_write(parent)
            _make_parents(parent)
        elif not parent.is_dir():
            raise InvalidInputError(f"{rel_path(parent, ctx)} is not a directory")
        atomic_write_bytes(path, args.content.encode("utf-8"), mode=mode)
        rel = rel_path(path, ctx)
        diff = unified_diff(old, args.content, rel)
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
class FileEditArgs(FileArgs):
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
        st = regular_file(path, args.path)
        raw = path.read_bytes()
        if looks_binary(raw[:SNIFF_BYTES]):
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
        out_encoding = "utf-8" if encoding in FALLBACK_ENCODINGS else encoding
        atomic_write_bytes(path, new.encode(out_encoding), mode=stat.S_IMODE(st.st_mode))
        rel = rel_path(path, ctx)
        diff = unified_diff(text, new, rel)
        return ToolResult(
            content=f"edited {rel}: {count} replacement(s)\n{diff}",
            data={"path": str(path), "replacements": count, "diff": diff},
        )
