"""The thread executor: ordering, parallelism, retries, timeouts, events, resume."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from magray.common.errors import InvalidInputError
from magray.todo import (
    Action,
    Backoff,
    EventKind,
    Executor,
    ProgressEvent,
    RunActiveError,
    Status,
    Task,
    TodoStore,
)
from magray.todo._claims import claim


def test_runs_everything_in_dependency_order(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id
    c = store.add("c", depends_on=[b]).id
    seen: list[int] = []

    def runner(task: Task) -> str:
        seen.append(task.id)
        return task.title.upper()

    report = Executor(store, runner, max_workers=4).run()
    assert seen == [a, b, c]
    assert [store.get(i).result for i in (a, b, c)] == ["A", "B", "C"]
    assert report.counts["done"] == 3
    assert report.ok
    assert report.complete
    assert (report.attempts, report.succeeded, report.failed) == (3, 3, 0)
    assert all(store.get(i).attempts == 1 for i in (a, b, c))


def test_priority_decides_among_ready_tasks(store: TodoStore) -> None:
    ids = {p: store.add(f"p{p}", priority=p).id for p in (1, 5, 3)}
    seen: list[int] = []
    Executor(store, lambda t: seen.append(t.priority), max_workers=1).run()
    assert seen == [5, 3, 1]
    assert len(ids) == 3


def test_independent_tasks_really_run_in_parallel(store: TodoStore) -> None:
    for i in range(3):
        store.add(f"t{i}")
    barrier = threading.Barrier(3, timeout=30)  # breaks (fails the test) unless all 3 meet
    report = Executor(store, lambda t: barrier.wait(), max_workers=3).run()
    assert report.counts["done"] == 3
    assert report.failed == 0


def test_failed_attempts_are_retried_with_backoff(store: TodoStore, clock: Any) -> None:
    task = store.add("flaky", max_attempts=3).id
    calls: list[float] = []

    def runner(t: Task) -> str:
        calls.append(clock.now)
        if len(calls) < 3:
            raise RuntimeError(f"boom {len(calls)}")
        return "ok"

    events: list[ProgressEvent] = []
    ex = Executor(store, runner, backoff=Backoff(base=5, factor=2), sleep=clock.sleep)
    ex.subscribe(events.append)
    report = ex.run()
    assert clock.sleeps == [5, 10]
    assert calls[1] - calls[0] == 5
    assert calls[2] - calls[1] == 10
    done = store.get(task)
    assert (done.status, done.attempts, done.result, done.error) == (Status.DONE, 3, "ok", None)
    assert report.retried == 2
    retries = [e for e in events if e.kind is EventKind.TASK_RETRYING]
    assert [e.retry_in for e in retries] == [5, 10]
    assert retries[0].error == "RuntimeError: boom 1"


def test_out_of_attempts_fails_and_blocks_dependents(store: TodoStore, clock: Any) -> None:
    a = store.add("a", max_attempts=2).id
    b = store.add("b", depends_on=[a]).id
    other = store.add("other").id

    def runner(t: Task) -> None:
        if t.id == a:
            raise ValueError("always")

    report = Executor(store, runner, sleep=clock.sleep).run()
    assert store.get(a).status is Status.FAILED
    assert store.get(a).attempts == 2
    assert store.get(a).error == "ValueError: always"
    assert store.get(b).status is Status.BLOCKED
    assert store.get(other).status is Status.DONE
    assert (report.failed, report.retried, report.ok, report.complete) == (1, 1, False, True)


def test_errors_a_retry_cannot_fix_fail_at_once(store: TodoStore, clock: Any) -> None:
    a = store.add("a", max_attempts=5).id

    def runner(t: Task) -> None:
        raise InvalidInputError("bad args")

    Executor(store, runner, sleep=clock.sleep).run()
    assert store.get(a).status is Status.FAILED
    assert store.get(a).attempts == 1
    assert clock.sleeps == []


def test_a_timed_out_attempt_fails_and_frees_its_slot(store: TodoStore) -> None:
    stuck = store.add("stuck", timeout=0.05, max_attempts=1).id
    after = store.add("after", priority=-1).id
    release = threading.Event()
    events: list[ProgressEvent] = []

    def runner(t: Task) -> str:
        if t.id == stuck:
            release.wait(60)  # never returns in time: the executor gives up on it
        return "ok"

    ex = Executor(store, runner, max_workers=1, clock=time.time)
    ex.subscribe(events.append)
    try:
        report = ex.run()
    finally:
        release.set()
    assert store.get(stuck).status is Status.FAILED
    assert store.get(stuck).error == "timed out after 0.05s"
    assert store.get(after).status is Status.DONE  # ran in the replacement worker
    failed = [e for e in events if e.kind is EventKind.TASK_FAILED]
    assert len(failed) == 1
    assert failed[0].timed_out
    assert report.failed == 1


def test_manual_tasks_are_left_when_only_actions_run(store: TodoStore) -> None:
    tool = store.add("tool", action=Action("echo", {"x": 1})).id
    manual = store.add("manual").id
    after = store.add("after manual", action=Action("echo"), depends_on=[manual]).id
    seen: list[Any] = []
    report = Executor(store, lambda t: seen.append(t.action), with_action=True).run()
    assert seen == [Action("echo", {"x": 1})]
    assert store.get(tool).status is Status.DONE
    assert store.get(manual).status is Status.READY
    assert store.get(after).status is Status.PENDING
    assert report.waiting == [manual]
    assert not report.complete


def test_progress_events(store: TodoStore) -> None:
    a = store.add("a").id
    store.add("b", depends_on=[a])
    events: list[ProgressEvent] = []
    ex = Executor(store, lambda t: None, max_workers=2)
    unsubscribe = ex.subscribe(events.append)
    ex.run()
    kinds = [e.kind for e in events]
    assert kinds == [
        EventKind.RUN_STARTED,
        EventKind.TASK_STARTED,
        EventKind.TASK_SUCCEEDED,
        EventKind.TASK_STARTED,
        EventKind.TASK_SUCCEEDED,
        EventKind.RUN_FINISHED,
    ]
    assert events[0].total == 2
    assert events[0].finished == 0
    assert events[0].eta is None
    assert events[2].finished == 1
    assert events[2].counts["done"] == 1
    assert events[-1].finished == 2
    assert events[-1].eta == 0.0
    assert events[1].task is not None
    assert events[1].task.status is Status.RUNNING
    assert events[2].to_dict()["kind"] == "task_succeeded"
    unsubscribe()
    store.add("c")
    ex.run()
    assert len(events) == 6


def test_a_broken_subscriber_does_not_break_the_run(store: TodoStore) -> None:
    store.add("a")
    ex = Executor(store, lambda t: None)

    def broken(event: ProgressEvent) -> None:
        raise RuntimeError("display crashed")

    ex.subscribe(broken)
    assert ex.run().counts["done"] == 1


def test_only_one_run_per_database(store: TodoStore) -> None:
    store.add("a")
    errors: list[BaseException] = []

    def runner(t: Task) -> None:
        try:
            Executor(store, lambda t: None).run()
        except RunActiveError as exc:
            errors.append(exc)

    Executor(store, runner).run()
    assert len(errors) == 1
    assert "another run" in str(errors[0])
    store.add("b")
    assert Executor(store, lambda t: None).run().counts["done"] == 2  # lock released


def test_cancel_during_an_attempt_discards_its_result(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id
    events: list[ProgressEvent] = []

    def runner(t: Task) -> str:
        store.cancel(t.id)  # e.g. `magray todo cancel` from another terminal
        return "too late"

    ex = Executor(store, runner)
    ex.subscribe(events.append)
    report = ex.run()
    assert store.get(a).status is Status.CANCELLED
    assert store.get(a).result is None
    assert store.get(b).status is Status.CANCELLED
    assert EventKind.TASK_DISCARDED in [e.kind for e in events]
    assert report.succeeded == 0


def test_stop_claims_nothing_more(store: TodoStore) -> None:
    first = store.add("first", priority=1, idempotent=True).id
    second = store.add("second").id
    ex = Executor(store, lambda t: ex.stop(), max_workers=1)
    report = ex.run()
    assert report.stopped
    assert not report.ok
    assert store.get(first).status is Status.DONE
    assert store.get(second).status is Status.READY


def test_run_a_target_and_its_dependencies_only(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id
    c = store.add("c", depends_on=[b]).id
    other = store.add("other").id
    report = Executor(store, lambda t: None).run(tasks=[b])
    assert [store.get(i).status.value for i in (a, b, c, other)] == [
        "done",
        "done",
        "ready",
        "ready",
    ]
    assert sum(report.counts.values()) == 2


def test_stale_running_tasks_are_reset(store: TodoStore) -> None:
    again = store.add("idempotent", idempotent=True).id
    once = store.add("not idempotent").id
    after = store.add("after", depends_on=[once]).id
    assert len(claim(store, "dead-run", 10)) == 2  # as if a process died mid-run
    events: list[ProgressEvent] = []
    ex = Executor(store, lambda t: "ran")
    ex.subscribe(events.append)
    report = ex.run()
    assert report.reset == 2
    assert store.get(again).status is Status.DONE
    assert store.get(again).attempts == 1
    lost = store.get(once)
    assert lost.status is Status.FAILED
    assert "not marked idempotent" in (lost.error or "")
    assert f"magray todo retry {once}" in (lost.error or "")
    assert store.get(after).status is Status.BLOCKED
    assert [e.kind for e in events].count(EventKind.TASK_RESET) == 2


def test_invalid_worker_count(store: TodoStore) -> None:
    from magray.todo import TodoInputError

    with pytest.raises(TodoInputError):
        Executor(store, lambda t: None, max_workers=0)


def test_ctrl_c_resets_attempts_in_flight_and_releases_the_lock(store: TodoStore) -> None:
    import signal

    again = store.add("idempotent", idempotent=True, priority=1).id
    once = store.add("not idempotent").id
    release = threading.Event()
    started = threading.Barrier(2, timeout=30)

    def runner(t: Task) -> None:
        started.wait()  # both attempts are in flight
        if t.id == again:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C reaches the run's (main) thread
        release.wait(60)

    try:
        with pytest.raises(KeyboardInterrupt):
            Executor(store, runner, max_workers=2).run()
    finally:
        release.set()
    assert store.get(again).status is Status.READY
    assert store.get(once).status is Status.FAILED
    assert "the run was interrupted" in (store.get(once).error or "")
    store.retry(once)
    report = Executor(store, lambda t: None).run()  # the lock was released
    assert report.counts["done"] == 2


def test_metrics_are_counted(store: TodoStore, clock: Any) -> None:
    from magray.common.metrics import MetricsRegistry

    store.add("ok")
    store.add("bad", max_attempts=2)
    metrics = MetricsRegistry()

    def runner(t: Task) -> None:
        if t.title == "bad":
            raise RuntimeError("no")

    Executor(store, runner, metrics=metrics, sleep=clock.sleep).run()
    assert metrics.counter("todo.attempts").value == 3
    assert metrics.counter("todo.tasks", outcome="done").value == 1
    assert metrics.counter("todo.tasks", outcome="retried").value == 1
    assert metrics.counter("todo.tasks", outcome="failed").value == 1
    assert metrics.histogram("todo.attempt_ms").count == 3


def test_parallelism_survives_a_timed_out_attempt(store: TodoStore) -> None:
    """After a worker is abandoned, max_workers attempts still run side by side."""
    stuck = store.add("stuck", priority=9, timeout=0.05, max_attempts=1).id
    pairs = [store.add(f"p{i}", priority=5 - i).id for i in range(4)]
    release = threading.Event()
    barrier = threading.Barrier(2, timeout=10)  # breaks unless two attempts meet

    def runner(t: Task) -> None:
        if t.id == stuck:
            release.wait(60)
        else:
            barrier.wait()

    try:
        report = Executor(store, runner, max_workers=2, clock=time.time).run()
    finally:
        release.set()
    assert store.get(stuck).status is Status.FAILED
    assert [store.get(i).status for i in pairs] == [Status.DONE] * 4
    assert report.failed == 1


def test_a_timed_out_runner_is_asked_to_stop(store: TodoStore) -> None:
    from magray.todo import current_attempt

    store.add("long", timeout=0.5, max_attempts=1)  # long enough for the attempt to start
    seen: list[Any] = []
    stopped = threading.Event()
    callbacks: list[str] = []

    def runner(t: Task) -> None:
        attempt = current_attempt()
        assert attempt is not None
        assert attempt.task.id == t.id
        attempt.on_cancel(lambda: callbacks.append("tool cancelled"))
        seen.append(attempt.wait(60))  # returns as soon as the executor gives up
        seen.append(attempt.reason)
        stopped.set()

    Executor(store, runner, clock=time.time).run()
    assert stopped.wait(30)
    assert seen == [True, "timed out after 0.5s"]
    assert callbacks == ["tool cancelled"]
    assert current_attempt() is None  # only set inside an attempt


def test_tasks_added_during_a_run_are_run_and_counted(store: TodoStore) -> None:
    store.add("first")
    events: list[ProgressEvent] = []
    added: list[int] = []

    def runner(t: Task) -> None:
        if not added:  # e.g. `magray todo add` from another terminal mid-run
            added.append(store.add("late").id)

    ex = Executor(store, runner, max_workers=1)
    ex.subscribe(events.append)
    report = ex.run()
    assert store.get(added[0]).status is Status.DONE
    assert report.counts["done"] == 2
    assert all(n >= 0 for e in events for n in e.counts.values())
    assert events[-1].total == 2
    assert events[-1].finished == 2
