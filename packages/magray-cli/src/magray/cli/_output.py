"""Rendering: JSON for machines, rich tables for people, errors as one line.

Data goes to stdout; errors, hints and progress go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import click

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "console",
    "emit_json",
    "exit_code_for",
    "print_error",
    "print_table",
    "to_jsonable",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INTERRUPTED = 130


def to_jsonable(value: Any) -> Any:
    """Convert paths, enums, datetimes, pydantic models and dataclasses for ``json``."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump(mode="json"))
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return to_jsonable(asdict(value))
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    return value


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False))


def console(*, stderr: bool = False) -> Any:
    """A rich Console (imported lazily); plain text when not a TTY."""
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=False, highlight=False)


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    """Print a table of rows (values converted with ``str``).

    On a terminal long cells fold to the window's width; piped or redirected,
    every row stays on one line (a 32-character id is never split), so
    ``grep``, ``cut`` and ``awk`` see whole values.
    """
    from rich.measure import Measurement
    from rich.table import Table

    out = console()
    piped = not out.is_terminal
    table = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=piped)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    if piped:
        wide = out.options.update_width(1_000_000)
        out.width = max(out.width, Measurement.get(out, wide, table).maximum)
    out.print(table)


def exit_code_for(exc: BaseException) -> int:
    """Documented exit codes: 2 usage/config/validation, 3 not found, 130 interrupt, else 1."""
    from magray.common.errors import ConfigError, InvalidInputError, NotFoundError

    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ConfigError | InvalidInputError):
        return EXIT_USAGE
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    return EXIT_FAILURE


def print_error(code: str, message: str, hint: str | None = None, *, as_json: bool = False) -> None:
    """``error[CODE]: message`` and ``hint: ...`` on stderr (or a JSON object)."""
    if as_json:
        payload = {"error": {"code": code, "message": message, "hint": hint}}
        click.echo(json.dumps(payload, ensure_ascii=False), err=True)
        return
    click.echo(f"error[{code}]: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)


def flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
