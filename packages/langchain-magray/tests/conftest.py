"""Shared fixtures of langchain-magray's tests.

LangChain's standard suites define some tests as plain ``async def`` (LangChain's own
packages run them with pytest-asyncio in auto mode). The hook below runs such a test
in a fresh event loop, so they really run here without that plugin's global settings.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests to completion with :func:`asyncio.run`."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if pyfuncitem.get_closest_marker(
        "asyncio"
    ) is not None and pyfuncitem.config.pluginmanager.has_plugin("asyncio"):
        return None  # pytest-asyncio is installed and owns explicitly marked tests
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True


@pytest.fixture(scope="session")
def pg_server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """PostgreSQL 16 + pgvector from pgserver; skipped (with the reason) where it cannot start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        try:
            import pgserver
        except ImportError as exc:
            pytest.skip(f"pgserver is not installed ({exc}); pip install 'langchain-magray[test]'")
        try:
            server = pgserver.get_server(  # type: ignore[attr-defined]
                tmp_path_factory.mktemp("pg"), cleanup_mode="stop"
            )
        except Exception as exc:  # initdb/pg_ctl failures surface as plain exceptions
            pytest.skip(f"pgserver could not start PostgreSQL here: {type(exc).__name__}: {exc}")
    try:
        yield server.get_uri()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()


@pytest.fixture
def pg_dsn(pg_server_dsn: str) -> str:
    """The server's DSN with a fresh store schema (tests never share a store)."""
    sep = "&" if "?" in pg_server_dsn else "?"
    return f"{pg_server_dsn}{sep}schema=lc_{uuid.uuid4().hex[:16]}"


# LangChain's standard suites, reported with their counts at the end of every run
# (issue #10 asks for the counts to be visible in the test output).
_SUITES = {
    "TestMagrayVectorStoreLocal": "VectorStoreIntegrationTests (local)",
    "TestMagrayVectorStorePostgres": "VectorStoreIntegrationTests (postgres)",
    "TestMagrayEmbeddingsUnit": "EmbeddingsUnitTests",
    "TestMagrayEmbeddingsIntegration": "EmbeddingsIntegrationTests",
    "TestMagrayRetriever": "RetrieversIntegrationTests",
}
_COUNTS: dict[str, dict[str, int]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    suite = next((s for s in _SUITES if f"::{s}::" in report.nodeid), None)
    if suite is None:
        return
    counts = _COUNTS.setdefault(suite, {"passed": 0, "failed": 0, "skipped": 0})
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome = report.outcome if report.outcome in counts else "failed"
        counts[outcome] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _COUNTS:
        return
    terminalreporter.section("langchain-tests standard suites")
    for suite, label in _SUITES.items():
        c = _COUNTS.get(suite)
        if c is not None:
            terminalreporter.line(
                f"{label}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
            )
