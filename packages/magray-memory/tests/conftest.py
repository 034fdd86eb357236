"""Shared fixtures of magray-memory's tests (helpers live in ``memtestkit``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from magray.memory import MemoryStore
from memtestkit import Clock, HashingEmbedder


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def open_store(store_dir: Path, clock: Clock) -> Iterator[Callable[..., MemoryStore]]:
    """Factory: open a store (closed after the test) with the test clock."""
    opened: list[MemoryStore] = []

    def factory(embedder: Any = None, **kwargs: Any) -> MemoryStore:
        kwargs.setdefault("clock", clock)
        if embedder is None and "dim" not in kwargs:
            kwargs["dim"] = 16
        store = MemoryStore.open(kwargs.pop("path", store_dir), embedder, **kwargs)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
