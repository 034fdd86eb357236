"""Property: under parallelism a task never starts before its dependencies finish.

Hypothesis draws random DAGs (edges only from higher to lower index, so no
cycles), priorities and worker counts; runners record logical start/finish
stamps from one shared counter, and the database's own started/finished
times are checked too.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magray.todo import AsyncExecutor, Executor, Status, Task, TaskSpec, TodoStore


@st.composite
def dags(draw: Any) -> tuple[list[int], list[tuple[int, int]]]:
    n = draw(st.integers(min_value=1, max_value=40))
    priorities = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    edges = []
    for i in range(1, n):
        deps = draw(st.sets(st.integers(0, i - 1), max_size=min(i, 3)))
        edges.extend((i, j) for j in deps)
    return priorities, edges


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq = itertools.count()
        self.start: dict[int, int] = {}
        self.finish: dict[int, int] = {}
        self.runs: dict[int, int] = {}

    def begin(self, task: Task) -> None:
        with self.lock:
            self.start[task.id] = next(self.seq)
            self.runs[task.id] = self.runs.get(task.id, 0) + 1

    def end(self, task: Task) -> None:
        with self.lock:
            self.finish[task.id] = next(self.seq)


def build(path: Path, priorities: list[int], edges: list[tuple[int, int]]) -> TodoStore:
    store = TodoStore(path, clock=time.time)
    store.add_many([TaskSpec(f"t{i}", priority=p) for i, p in enumerate(priorities)], edges=edges)
    return store


def check(store: TodoStore, rec: Recorder) -> None:
    tasks = {t.id: t for t in store.tasks()}
    assert all(t.status is Status.DONE for t in tasks.values())
    assert all(rec.runs[i] == 1 for i in tasks)
    for task_id, dep in store.edges():
        assert rec.finish[dep] < rec.start[task_id], (dep, task_id)
        started, finished = tasks[task_id].started, tasks[dep].finished
        assert started is not None
        assert finished is not None
        assert finished <= started


def run_threads(dag: tuple[list[int], list[tuple[int, int]]], workers: int) -> None:
    priorities, edges = dag
    rec = Recorder()

    def runner(task: Task) -> int:
        rec.begin(task)
        time.sleep(0)  # yield to other workers (no timing involved)
        rec.end(task)
        return task.id

    with (
        tempfile.TemporaryDirectory() as tmp,
        build(Path(tmp) / "t.db", priorities, edges) as store,
    ):
        report = Executor(store, runner, max_workers=workers).run()
        assert report.ok
        assert report.attempts == len(priorities)
        check(store, rec)


def run_asyncio(dag: tuple[list[int], list[tuple[int, int]]], workers: int) -> None:
    priorities, edges = dag
    rec = Recorder()

    async def runner(task: Task) -> int:
        rec.begin(task)
        await asyncio.sleep(0)  # let other attempts interleave
        rec.end(task)
        return task.id

    with (
        tempfile.TemporaryDirectory() as tmp,
        build(Path(tmp) / "t.db", priorities, edges) as store,
    ):
        report = asyncio.run(AsyncExecutor(store, runner, max_workers=workers).run())
        assert report.ok
        check(store, rec)


_QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_THOROUGH = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_QUICK
@given(dag=dags(), workers=st.integers(1, 4))
def test_thread_executor_respects_dependencies(
    dag: tuple[list[int], list[tuple[int, int]]], workers: int
) -> None:
    run_threads(dag, workers)


@settings(_QUICK, max_examples=30)
@given(dag=dags(), workers=st.integers(1, 4))
def test_async_executor_respects_dependencies(
    dag: tuple[list[int], list[tuple[int, int]]], workers: int
) -> None:
    run_asyncio(dag, workers)


@pytest.mark.slow
@_THOROUGH
@given(dag=dags(), workers=st.integers(1, 8))
def test_thread_executor_respects_dependencies_thoroughly(
    dag: tuple[list[int], list[tuple[int, int]]], workers: int
) -> None:
    run_threads(dag, workers)


@pytest.mark.slow
@_THOROUGH
@given(dag=dags(), workers=st.integers(1, 8))
def test_async_executor_respects_dependencies_thoroughly(
    dag: tuple[list[int], list[tuple[int, int]]], workers: int
) -> None:
    run_asyncio(dag, workers)
