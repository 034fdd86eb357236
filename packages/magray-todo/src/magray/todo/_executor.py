"""The thread-pool executor."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Unpack

from magray.todo._attempt import Attempt, _current
from magray.todo._loop import Effect, ExecutorBase, ExecutorOptions, Sleep, Start
from magray.todo._model import Task
from magray.todo._run import Outcome

if TYPE_CHECKING:
    from magray.todo._events import RunReport
    from magray.todo._store import TodoStore

__all__ = ["Executor", "Runner"]

#: Runs one task and returns its JSON-serialisable result; raising fails the attempt.
Runner = Callable[[Task], Any]


@dataclass
class _Flight:
    attempt: Attempt
    token: int
    deadline: float | None
    timeout: float | None

    @property
    def task(self) -> Task:
        return self.attempt.task


class _Pool:
    """Daemon worker threads. A timed-out worker is abandoned and replaced.

    Python cannot kill a thread, so an attempt that times out keeps running in
    the background until it returns; its result is dropped and a new worker
    takes its slot so the run's parallelism stays ``size``.
    """

    def __init__(self, size: int, runner: Runner) -> None:
        self.runner = runner
        self.jobs: queue.SimpleQueue[tuple[int, Attempt] | None] = queue.SimpleQueue()
        # queue.Queue, not SimpleQueue: its blocking get() is interrupted by Ctrl-C.
        self.results: queue.Queue[tuple[int, Attempt, bool, Any, float]] = queue.Queue()
        self._lock = threading.Lock()
        self._abandoned: set[int] = set()  # tokens whose worker was replaced
        self._closed = False  # the run has ended
        self._alive = 0
        self._names = itertools.count(1)
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            self._alive += 1
        thread = threading.Thread(
            target=self._work, name=f"magray-todo-{next(self._names)}", daemon=True
        )
        thread.start()

    def _work(self) -> None:
        while True:
            item = self.jobs.get()
            if item is None:
                with self._lock:
                    self._alive -= 1
                return
            token, attempt = item
            with self._lock:
                if token in self._abandoned:  # timed out before it even started: skip it
                    self._abandoned.discard(token)
                    self._alive -= 1
                    attempt.returned()
                    return
            start = time.perf_counter()
            context = _current.set(attempt)
            try:
                ok, value = True, self.runner(attempt.task)
            except BaseException as exc:  # a runner's SystemExit must not kill the pool
                ok, value = False, exc
            finally:
                _current.reset(context)
            # The driver lets go of the task lock when it takes the result (doing it here
            # makes workers and driver trade the GIL and halves throughput).
            self.results.put((token, attempt, ok, value, time.perf_counter() - start))
            with self._lock:
                closed = self._closed
                abandoned = token in self._abandoned
                if abandoned:  # a replacement took this worker's slot
                    self._abandoned.discard(token)
                    self._alive -= 1
            if abandoned or closed:  # the run may have ended: nobody takes the result
                attempt.returned()
            if abandoned:
                return

    def submit(self, token: int, attempt: Attempt) -> None:
        self.jobs.put((token, attempt))

    def abandon(self, token: int) -> None:
        """The worker running ``token`` is stuck on a timed-out attempt: replace it.

        That worker exits when its attempt finally returns, so the pool is
        back to ``size`` workers. If the attempt timed out before any worker
        picked it up, the worker that does skips it (it must not run next to
        a retry) and exits instead.
        """
        with self._lock:
            self._abandoned.add(token)
        self._spawn()

    def shutdown(self) -> None:
        """Let the workers go; from now on each lets go of its task lock itself."""
        with self._lock:
            alive = self._alive
            self._closed = True
        for _ in range(alive):
            self.jobs.put(None)
        while True:  # results nobody will take: their runners have returned
            try:
                self.results.get_nowait()[1].returned()
            except queue.Empty:
                break


class Executor(ExecutorBase):
    """Runs ready tasks in parallel threads until nothing in scope can run.

    Dependencies are honoured (a task is claimed only once all its
    dependencies are done), higher priority runs first, each attempt gets a
    timeout, and failures are retried with exponential backoff up to the
    task's ``max_attempts``. State lives in the database, so a run that is
    killed resumes with another ``run()``: tasks left ``running`` by the dead
    run are reset (re-run if idempotent, failed otherwise).

    Args:
        store: The task store.
        runner: ``runner(task) -> result``; raising fails the attempt.
            Exceptions a retry cannot fix (``InvalidInputError``,
            ``PermissionDeniedError``, ``NotFoundError``, ``ConfigError``)
            fail the task at once.
        max_workers: Parallel attempts (default: ``settings.max_workers``).
        default_timeout: Seconds for tasks without their own timeout
            (default: ``settings.default_timeout``; ``None``: no limit).
        backoff: Retry delays (default from settings: ``retry_backoff``,
            doubling, capped at ``retry_backoff_max``).
        with_action: Claim only tasks that have an action; tasks without one
            are manual and are left ready (listed in ``RunReport.waiting``).
        clock: Epoch-seconds clock for timeouts, retry times and ETA
            (default: the store's clock).
        metrics: Where ``todo.attempts``, ``todo.tasks{outcome=...}`` and the
            ``todo.attempt_ms`` histogram are counted (default: the process-wide
            registry).
        sleep: ``sleep(seconds)`` used while every remaining task waits for
            a retry delay (inject with a fake clock in tests; default waits
            on an event that :meth:`stop` sets).

    Example::

        def runner(task):
            return {"echo": task.title}

        report = Executor(store, runner, max_workers=4).run()
        report.counts["done"]
    """

    def __init__(
        self,
        store: TodoStore,
        runner: Runner,
        *,
        sleep: Callable[[float], None] | None = None,
        **options: Unpack[ExecutorOptions],
    ) -> None:
        super().__init__(store, **options)
        self.runner = runner
        self._stop = threading.Event()
        self._sleep: Callable[[float], object] = sleep or self._stop.wait

    def stop(self) -> None:
        """Ask a running :meth:`run` to claim nothing more, finish what is in flight, and return.

        Safe to call from any thread (or from a runner or subscriber). Attempts
        in flight are waited for (up to their timeouts) and recorded, so no task
        is left running. Ctrl-C instead interrupts at once: tasks in flight are
        then reset as after a crash.
        """
        self._stop.set()

    def run(self, *, tasks: Iterable[int] | None = None) -> RunReport:
        """Run until no task in scope is ready, running or waiting for a retry.

        Args:
            tasks: Run these tasks and everything they depend on (default: all).

        Raises:
            RunActiveError: Another executor holds this database.
        """
        self._stop.clear()
        core, loop = self._begin(tasks, self._stop.is_set)
        pool = _Pool(self.max_workers, self.runner)
        flights: dict[int, _Flight] = {}
        tokens = itertools.count()
        stopped: bool | None = None  # None until the loop ends normally: interrupted

        def handle(effect: Effect) -> list[Outcome] | None:
            if isinstance(effect, Start):
                for attempt in effect.attempts:
                    timeout = core.timeout_of(attempt.task)
                    deadline = None if timeout is None else self.clock() + timeout
                    flight = _Flight(attempt, next(tokens), deadline, timeout)
                    flights[flight.token] = flight
                    pool.submit(flight.token, attempt)
                return None
            if isinstance(effect, Sleep):
                self._sleep(effect.seconds)
                return None
            return self._collect(pool, flights, effect.timeout)

        try:
            effect = next(loop)
            while True:
                effect = loop.send(handle(effect))
        except StopIteration as finished:
            stopped = finished.value
        finally:
            if stopped is None:
                for flight in flights.values():
                    flight.attempt.cancel("the run was interrupted")
            pool.shutdown()
            report = self._end(core, stopped)
        return report

    def _collect(
        self, pool: _Pool, flights: dict[int, _Flight], retry_wait: float | None
    ) -> list[Outcome]:
        """Wait for at least one result, a deadline or ``retry_wait``; return every outcome in."""
        now = self.clock()
        waits = [f.deadline - now for f in flights.values() if f.deadline is not None]
        if retry_wait is not None:
            waits.append(retry_wait)
        timeout = max(0.0, min(waits)) if waits else None
        outcomes: list[Outcome] = []
        first = _wait_for(pool.results, timeout)
        if first is not None:
            self._take(first, flights, outcomes)
            while True:
                try:
                    item = pool.results.get_nowait()
                except queue.Empty:
                    break
                self._take(item, flights, outcomes)
        now = self.clock()
        for token, flight in list(flights.items()):
            if flight.deadline is not None and flight.deadline <= now:
                del flights[token]
                flight.attempt.cancel(f"timed out after {flight.timeout:g}s")
                pool.abandon(token)
                outcomes.append(
                    Outcome(flight.task, False, flight.timeout, timed_out=True, duration=None)
                )
        return outcomes

    @staticmethod
    def _take(
        item: tuple[int, Attempt, bool, Any, float],
        flights: dict[int, _Flight],
        out: list[Outcome],
    ) -> None:
        token, attempt, ok, value, duration = item
        attempt.returned()  # its runner has returned
        flight = flights.pop(token, None)
        if flight is None:  # an abandoned (timed-out) attempt finished late
            return
        out.append(Outcome(flight.task, ok, value, duration=duration))


_SLICE = 0.2  # seconds; see _wait_for


def _wait_for(results: queue.Queue[Any], timeout: float | None) -> Any:
    """``results.get(timeout=timeout)``, or ``None`` when it expires.

    Waits in short slices: Ctrl-C may be delivered to a worker thread, and a
    main thread blocked in one long wait would only notice it when that wait
    ends. Waking every slice lets it raise KeyboardInterrupt promptly.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
        try:
            return results.get(timeout=max(0.0, left))
        except queue.Empty:
            if deadline is not None and time.monotonic() >= deadline:
                return None
