"""The asyncio executor: same rules, real cancellation of async attempts."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from magray.todo import AsyncExecutor, Backoff, EventKind, ProgressEvent, Status, Task, TodoStore


def test_runs_async_and_sync_runners(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id

    async def arunner(task: Task) -> str:
        await asyncio.sleep(0)
        return task.title * 2

    asyncio.run(AsyncExecutor(store, arunner).run())
    assert store.get(b).result == "bb"
    c = store.add("c").id
    asyncio.run(AsyncExecutor(store, lambda t: t.title.upper()).run())
    assert store.get(c).result == "C"


def test_attempts_run_concurrently(store: TodoStore) -> None:
    for i in range(3):
        store.add(f"t{i}")
    arrived = 0
    everyone = asyncio.Event()

    async def runner(task: Task) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            everyone.set()
        await asyncio.wait_for(everyone.wait(), 30)  # only passes if all 3 are in flight

    report = asyncio.run(AsyncExecutor(store, runner, max_workers=3).run())
    assert report.counts["done"] == 3


def test_timeout_cancels_the_async_attempt(store: TodoStore) -> None:
    task = store.add("slow", timeout=0.01, max_attempts=1).id
    cancelled = []

    async def runner(t: Task) -> None:
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            cancelled.append(t.id)
            raise

    events: list[ProgressEvent] = []
    ex = AsyncExecutor(store, runner)
    ex.subscribe(events.append)
    asyncio.run(ex.run())
    assert cancelled == [task]
    assert store.get(task).status is Status.FAILED
    assert store.get(task).error == "timed out after 0.01s"
    assert [e.timed_out for e in events if e.kind is EventKind.TASK_FAILED] == [True]


def test_retries_with_injected_sleep(store: TodoStore, clock: Any) -> None:
    task = store.add("flaky", max_attempts=3).id
    attempts = []

    async def runner(t: Task) -> str:
        attempts.append(clock.now)
        if len(attempts) < 3:
            raise ConnectionError("reset")
        return "ok"

    async def fake_sleep(seconds: float) -> None:
        clock.sleep(seconds)

    ex = AsyncExecutor(store, runner, backoff=Backoff(base=2), sleep=fake_sleep)
    report = asyncio.run(ex.run())
    assert clock.sleeps == [2, 4]
    assert store.get(task).status is Status.DONE
    assert report.retried == 2


def test_stop_finishes_attempts_in_flight_and_claims_nothing_more(store: TodoStore) -> None:
    first = store.add("first", priority=2).id
    second = store.add("second", priority=1).id
    third = store.add("third").id
    ex = AsyncExecutor(store, lambda t: None, max_workers=2)
    first_ran = asyncio.Event()

    async def runner(t: Task) -> str:
        if t.id == first:
            ex.stop()
            first_ran.set()
        else:
            await first_ran.wait()  # still in flight when stop() is called
        return t.title

    ex.runner = runner
    report = asyncio.run(ex.run())
    assert report.stopped
    assert store.get(first).status is Status.DONE
    assert store.get(second).status is Status.DONE  # waited for, not abandoned
    assert store.get(third).status is Status.READY


def test_cancelling_the_run_resets_attempts_in_flight(store: TodoStore) -> None:
    slow = store.add("slow", idempotent=True).id
    started = asyncio.Event()

    async def runner(t: Task) -> None:
        started.set()
        await asyncio.Event().wait()

    async def main() -> None:
        run = asyncio.create_task(AsyncExecutor(store, runner).run())
        await started.wait()
        run.cancel()  # what Ctrl-C does to asyncio.run
        with contextlib.suppress(asyncio.CancelledError):
            await run

    asyncio.run(main())
    assert store.get(slow).status is Status.READY  # idempotent: reset for the next run


def test_a_sync_runner_in_a_thread_sees_the_cancellation(store: TodoStore) -> None:
    import threading

    from magray.todo import current_attempt

    store.add("long", timeout=0.5, max_attempts=1)  # long enough for the attempt to start
    reasons: list[Any] = []
    finished = threading.Event()

    def runner(t: Task) -> None:
        attempt = current_attempt()
        assert attempt is not None
        attempt.wait(60)
        reasons.append(attempt.reason)
        finished.set()

    asyncio.run(AsyncExecutor(store, runner).run())
    assert finished.wait(30)
    assert reasons == ["timed out after 0.5s"]
