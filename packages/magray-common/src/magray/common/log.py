"""Structured logging on structlog.

Libraries call :func:`get_logger` and log events with key/value pairs; the
application (CLI, router, tests) calls :func:`configure_logging` once. Lines go
to stderr, as a human console on a TTY or JSON lines otherwise, and optionally
to a JSON-lines file. Values that look like secrets are redacted before any
renderer sees them.

As a library, magray never writes to stdout. Until structlog is configured (by
:func:`configure_logging` or by the application itself), every event goes to the
stdlib :mod:`logging` logger of its name (``magray.memory``, ...) as one line
``event key=value ...``: an application that configured :mod:`logging` gets them
through its own handlers and levels; one that configured nothing sees only
warnings and errors, on stderr (stdlib's last-resort handler), and nothing else.

::

    log = get_logger(__name__)
    with operation("memory.search", k=10):     # binds op + op_id, logs duration
        log.info("searching", layer="assets")

structlog itself (about 0.1 s to import, with rich) loads only when an event is
actually written or context is bound: :func:`configure_logging` sets up the stdlib
handlers at once and defers structlog's configuration to the first event that
passes a handler's level, so a command that logs nothing never imports it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "bind_context",
    "configure_logging",
    "get_logger",
    "operation",
    "redact",
    "redact_secrets",
]

_REDACTED = "***"
_SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|token|password|passwd|authorization|auth[_-]?header|cookie|credential)",
    re.IGNORECASE,
)
# Common credential shapes; matched anywhere inside a string value.
_SECRET_VALUE = re.compile(
    r"(sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_\-]{30,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-~+/]{16,}=*)"
)


def redact(value: Any, *, _key: str | None = None) -> Any:
    """Return ``value`` with secrets replaced by ``***`` (recursing into dicts, lists)."""
    if _key is not None and _SECRET_KEY.search(_key) and value not in (None, "", False):
        return _REDACTED
    if isinstance(value, str):
        return _SECRET_VALUE.sub(_REDACTED, value)
    if isinstance(value, dict):
        return {k: redact(v, _key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-looking keys and values."""
    for key in list(event_dict):
        event_dict[key] = redact(event_dict[key], _key=key if key != "event" else None)
    return event_dict


def _render_line(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    """structlog processor: ``event key=value ...`` as the stdlib record's message."""
    event = str(event_dict.pop("event", ""))
    fields = " ".join(f"{key}={value!r}" for key, value in event_dict.items())
    return f"{event} {fields}" if fields else event


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}

# True after a configure_logging() made before structlog was imported: _structlog()
# applies its configuration on first use.
_pending = False


def _structlog() -> ModuleType:
    """structlog, imported now, with a deferred :func:`configure_logging` applied."""
    global _pending
    import structlog

    if _pending:
        _pending = False
        if not structlog.is_configured():  # an application that configured it since wins
            structlog.configure(**_configuration())
    return structlog


def _stdlib_chain(structlog: ModuleType) -> list[Any]:
    """The chain used while structlog is not configured: the stdlib logger decides (its
    level, its handlers), and the message is one plain line."""
    return [
        structlog.stdlib.filter_by_level,
        structlog.contextvars.merge_contextvars,
        redact_secrets,
        _render_line,
    ]


def _silent(*_args: Any, **_kwargs: Any) -> None:
    """A level method whose level no handler takes."""


class _LibraryLogger:
    """A lazy logger like structlog's, except that while structlog is unconfigured it logs
    through stdlib :mod:`logging` instead of structlog's default (print to stdout)."""

    def __init__(self, name: str | None, initial: dict[str, Any]) -> None:
        self._name = name
        self._initial = initial

    def bind(self, **new_values: Any) -> Any:
        """A bound logger for the current configuration, with ``new_values`` bound."""
        structlog = _structlog()
        if structlog.is_configured():
            args = (self._name,) if self._name else ()
            return structlog.get_logger(*args, **self._initial).bind(**new_values)
        logger = structlog.wrap_logger(
            logging.getLogger(self._name or "magray"),
            processors=_stdlib_chain(structlog),
            wrapper_class=structlog.stdlib.BoundLogger,
            context_class=dict,
        )
        return logger.bind(**self._initial, **new_values)

    def __getattr__(self, name: str) -> Any:
        level = _LEVELS.get(name)
        if level is not None and not self._wanted(level):
            return _silent
        return getattr(self.bind(), name)

    def _wanted(self, level: int) -> bool:
        """False only when no event of ``level`` can be written: structlog is not in use by
        the application (it alone could route events elsewhere) and the stdlib logger of
        this name is not enabled for ``level``."""
        structlog = sys.modules.get("structlog")
        if structlog is not None and structlog.is_configured() and not _pending:
            return True
        return logging.getLogger(self._name or "magray").isEnabledFor(level)


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger; safe to call at import time (configuration is lazy).

    Until structlog is configured it logs through stdlib :mod:`logging` (see the module
    docstring): nothing reaches stdout, and only warnings and errors reach stderr unless
    the application configured :mod:`logging` otherwise.
    """
    return _LibraryLogger(name, initial)


def bind_context(**values: Any) -> None:
    """Bind values to every log line of the current context (thread / task)."""
    _structlog().contextvars.bind_contextvars(**values)


@contextlib.contextmanager
def operation(name: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Bind ``op`` and a fresh ``op_id`` for the block, and log its duration.

    Yields a dict the block may add result fields to; they are logged at the end.
    """
    log = get_logger("magray.op")
    op_id = uuid.uuid4().hex[:12]
    result: dict[str, Any] = {}
    start = time.perf_counter()
    with _structlog().contextvars.bound_contextvars(op=name, op_id=op_id, **fields):
        try:
            yield result
        except BaseException as exc:
            log.warning(
                "operation failed",
                duration_ms=round((time.perf_counter() - start) * 1000, 3),
                error=type(exc).__name__,
                **result,
            )
            raise
        log.debug(
            "operation done", duration_ms=round((time.perf_counter() - start) * 1000, 3), **result
        )


def configure_logging(
    *,
    level: str = "WARNING",
    fmt: str = "auto",
    file: Path | None = None,
    file_level: str = "INFO",
    stream: IO[str] | None = None,
) -> None:
    """Configure structlog and the stdlib root logger (idempotent).

    Args:
        level: Minimum level for the stream handler.
        fmt: ``"auto"`` (console on a TTY, else JSON), ``"console"`` or ``"json"``.
        file: Also append JSON lines to this file.
        file_level: Minimum level for the file.
        stream: Where stream lines go (default: stderr).
    """
    global _pending
    stream = sys.stderr if stream is None else stream
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"

    _pending = "structlog" not in sys.modules
    if not _pending:  # already imported (by the application, by tests): apply now
        sys.modules["structlog"].configure(**_configuration())

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_magray", False):
            root.removeHandler(handler)
            handler.close()

    stream_handler = logging.StreamHandler(stream)
    stream_handler.setLevel(level)
    stream_handler.setFormatter(_LazyFormatter(fmt == "json"))
    stream_handler._magray = True  # type: ignore[attr-defined]
    root.addHandler(stream_handler)
    levels = [logging.getLevelName(level)]

    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(file, encoding="utf-8")
        file_handler.setLevel(file_level)
        file_handler.setFormatter(_LazyFormatter(True))
        file_handler._magray = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)
        levels.append(logging.getLevelName(file_level))
    root.setLevel(min(levels))


def _identity(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return event_dict


def _shared(structlog: ModuleType) -> list[Any]:
    """Processors every event goes through, structlog's own and stdlib's (foreign) ones."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        redact_secrets,
    ]


def _configuration() -> dict[str, Any]:
    """structlog.configure() arguments of :func:`configure_logging`."""
    import structlog

    return {
        "processors": [
            *_shared(structlog),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        "logger_factory": structlog.stdlib.LoggerFactory(),
        "wrapper_class": structlog.stdlib.BoundLogger,
        "cache_logger_on_first_use": False,
    }


class _LazyFormatter(logging.Formatter):
    """structlog's ProcessorFormatter (JSON or console), built on the first record."""

    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self._json_lines = json_lines
        self._real: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._real is None:
            structlog = _structlog()
            renderer: Any = (
                structlog.processors.JSONRenderer()
                if self._json_lines
                else structlog.dev.ConsoleRenderer(colors=False)
            )
            self._real = structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=_shared(structlog),
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info if self._json_lines else _identity,
                    renderer,
                ],
            )
        return self._real.format(record)
