"""Shared fixtures of magray-memory's tests (helpers live in ``memtestkit``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from magray.memory import MemoryStore
from memtestkit import Clock, HashingEmbedder, fresh_schema, start_pgserver


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(scope="session")
def pg_server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL 16 + pgvector server from ``pgserver`` for the whole session.

    Skips (with the reason) only when pgserver is not installed or cannot start here.
    """
    yield from start_pgserver(tmp_path_factory.mktemp("pg"))


@pytest.fixture(params=["local", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend a backend-agnostic test runs on (each test runs on both)."""
    return str(request.param)


@pytest.fixture
def target(backend: str, store_dir: Path, request: pytest.FixtureRequest) -> Path | str:
    """Where the test's store lives: a directory (local) or a DSN with a fresh schema."""
    if backend == "local":
        return store_dir
    dsn: str = request.getfixturevalue("pg_server_dsn")
    return fresh_schema(dsn)


@pytest.fixture
def open_store(target: Path | str, clock: Clock) -> Iterator[Callable[..., MemoryStore]]:
    """Factory: open a store (closed after the test) with the test clock, on ``backend``."""
    opened: list[MemoryStore] = []

    def factory(embedder: Any = None, **kwargs: Any) -> MemoryStore:
        kwargs.setdefault("clock", clock)
        if embedder is None and "dim" not in kwargs:
            kwargs["dim"] = 16
        store = MemoryStore.open(kwargs.pop("path", target), embedder, **kwargs)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
