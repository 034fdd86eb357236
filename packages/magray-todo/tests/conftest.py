"""Shared fixtures: a store in a temp dir and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from magray.todo import TodoStore


class FakeClock:
    """A settable epoch clock; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[TodoStore]:
    with TodoStore(tmp_path / "todo.db", clock=clock) as s:
        yield s


@pytest.fixture
def skip_store(tmp_path: Path, clock: FakeClock) -> Iterator[TodoStore]:
    with TodoStore(tmp_path / "skip.db", clock=clock, on_failure="skip") as s:
        yield s
