"""Structured logging: JSON lines, context binding, secret redaction."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from magray.common.log import bind_context, configure_logging, get_logger, operation, redact


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    import structlog

    yield
    structlog.contextvars.clear_contextvars()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_magray", False):
            root.removeHandler(handler)
            handler.close()
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_with_context() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="auto", stream=stream)  # not a TTY -> JSON
    bind_context(request_id="r-1")
    get_logger("magray.test").info("hello", layer="assets")
    (record,) = lines(stream)
    assert record["event"] == "hello"
    assert record["layer"] == "assets"
    assert record["request_id"] == "r-1"
    assert record["level"] == "info"
    assert "timestamp" in record


def test_secrets_are_never_logged() -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    log = get_logger("magray.test")
    log.info(
        "calling provider",
        api_key="sk-live-abcdefghijklmnopqrstuvwxyz",
        headers={"Authorization": "Bearer abcdefghijklmnopqrstuvwx"},
        note="key is sk-proj-ABCDEFGHIJKLMNOPQRSTUV1234 ok",
        token="ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    )
    logging.getLogger("thirdparty").warning("env OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwxyz12")
    text = stream.getvalue()
    for secret in ("sk-live-abc", "Bearer abcdef", "sk-proj-ABC", "ghp_abc", "sk-abcdefgh"):
        assert secret not in text, secret
    assert text.count("***") >= 5


def test_redact_keeps_ordinary_values() -> None:
    assert redact({"layer": "assets", "k": 10, "tokens": 0}) == {
        "layer": "assets",
        "k": 10,
        "tokens": 0,
    }


def test_console_format_is_human() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="console", stream=stream)
    get_logger("magray.test").warning("disk low", free_mb=12)
    out = stream.getvalue()
    assert "disk low" in out
    assert "free_mb=12" in out
    assert not out.lstrip().startswith("{")


def test_level_filters_and_file_output(tmp_path: Path) -> None:
    stream = io.StringIO()
    log_file = tmp_path / "logs" / "magray.jsonl"
    configure_logging(level="WARNING", fmt="json", stream=stream, file=log_file, file_level="DEBUG")
    log = get_logger("magray.test")
    log.debug("detail")
    log.warning("important")
    assert [r["event"] for r in lines(stream)] == ["important"]
    file_events = [json.loads(x)["event"] for x in log_file.read_text().splitlines()]
    assert file_events == ["detail", "important"]


def test_operation_binds_id_and_logs_duration() -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    with operation("memory.search", k=5) as result:
        get_logger("magray.test").info("inside")
        result["hits"] = 3
    inside, done = lines(stream)
    assert inside["op"] == "memory.search"
    assert inside["op_id"] == done["op_id"]
    assert done["hits"] == 3
    assert isinstance(done["duration_ms"], float)


def test_operation_logs_failure() -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    with pytest.raises(ValueError, match="bad"), operation("x"):
        raise ValueError("bad")
    (record,) = lines(stream)
    assert record["event"] == "operation failed"
    assert record["error"] == "ValueError"


# A program that uses a magray library and never configures logging.
_UNCONFIGURED = r"""
import logging, sys
from magray.common.log import get_logger, operation

log = get_logger("magray.memory")
print("own output")
log.info("an info event", layer="assets")
log.debug("a debug event")
with operation("memory.search", k=3):
    pass
log.warning("a warning the user must see", path="/x")
if len(sys.argv) > 1:  # the application configures stdlib logging itself
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s|%(message)s")
    log.info("after basicConfig", n=1)
"""


def _run(*args: str) -> tuple[str, str]:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _UNCONFIGURED, *args], capture_output=True, text=True, check=True
    )
    return done.stdout, done.stderr


def test_a_library_never_writes_to_stdout_and_only_warnings_to_stderr() -> None:
    stdout, stderr = _run()
    assert stdout == "own output\n"  # structlog's default printed every event here
    assert stderr.splitlines() == ["a warning the user must see path='/x'"]


def test_an_application_that_configures_logging_gets_the_events() -> None:
    stdout, stderr = _run("configure")
    assert stdout == "own output\n"
    assert "magray.memory|after basicConfig n=1" in stderr.splitlines()


def test_unconfigured_events_follow_the_stdlib_logger(caplog: pytest.LogCaptureFixture) -> None:
    import structlog

    structlog.reset_defaults()
    with caplog.at_level(logging.INFO, logger="magray.test"):
        get_logger("magray.test").info("captured", api_key="sk-live-abcdefghijklmnopqrstuvwxyz")
    (record,) = [r for r in caplog.records if r.name == "magray.test"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == "captured api_key='***'"


def test_structlog_loads_only_when_an_event_is_written() -> None:
    """A command that logs nothing never pays for importing structlog (and rich)."""
    import subprocess
    import sys

    code = """
import sys
from magray.common.log import configure_logging, get_logger
configure_logging(level="WARNING", fmt="json")
log = get_logger("magray.test")
log.debug("hidden", n=1)
log.info("hidden too")
print("before", "structlog" in sys.modules)
log.warning("shown", api_key="sk-live-abcdefghijklmnopqrstuvwxyz")
print("after", "structlog" in sys.modules)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.split() == ["before", "False", "after", "True"]
    (line,) = proc.stderr.splitlines()
    record = json.loads(line)
    assert record["event"] == "shown"
    assert record["level"] == "warning"
    assert record["api_key"] == "***"
    assert "timestamp" in record
