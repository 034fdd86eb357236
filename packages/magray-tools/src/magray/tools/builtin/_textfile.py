"""What the file tools share: argument base, paths shown relative, text decoding, diffs."""

from __future__ import annotations

import codecs
import difflib
import os
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from magray.common.errors import InvalidInputError, NotFoundError, ToolError
from magray.tools._model import ToolContext

__all__ = [
    "FALLBACK_ENCODINGS",
    "SNIFF_BYTES",
    "FileArgs",
    "decode_text",
    "existing_dir",
    "looks_binary",
    "regular_file",
    "rel_path",
    "unified_diff",
]

SNIFF_BYTES = 8192  # a NUL byte in this much of the head makes a file binary
FALLBACK_ENCODINGS = ("cp1252", "latin-1")  # tried after UTF-8; edits write UTF-8 back


class FileArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def rel_path(path: Path, ctx: ToolContext) -> str:
    try:
        return path.relative_to(ctx.workspace).as_posix() or "."
    except ValueError:
        return str(path)


def regular_file(path: Path, raw: str) -> os.stat_result:
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


def looks_binary(head: bytes) -> bool:
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
    for encoding in FALLBACK_ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"  # pragma: no cover - latin-1 never fails


def unified_diff(old: str, new: str, rel: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{rel}" if old else "/dev/null",
        tofile=f"b/{rel}",
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)  # fmt: skip


def existing_dir(path: Path, raw: str) -> Path:
    if not path.exists():
        raise NotFoundError(f"directory not found: {raw}")
    if not path.is_dir():
        raise InvalidInputError(f"{raw} is not a directory")
    return path
