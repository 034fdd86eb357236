"""The executors' shared part: construction, subscriptions and the run loop, written once.

The run loop is a generator of effects, free of threads and event loops
(the "sans-IO" shape): it decides *what* to do next and the executor decides
*how*. :class:`~magray.todo.Executor` drives it with a thread pool,
:class:`~magray.todo.AsyncExecutor` with asyncio tasks; each answers three
effects:

- :class:`Start`: start these attempts (the loop has claimed them);
- :class:`Wait`: wait until at least one attempt ends, or ``timeout``
  seconds (a retry comes due), and send back the outcomes that are in;
- :class:`Sleep`: nothing is in flight; sleep until a retry comes due.

The generator returns whether the run was stopped (:meth:`stop`) before the
end. Database work stays on the driver's thread, as :class:`RunCore` requires.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, Unpack

from magray.todo._attempt import Attempt
from magray.todo._run import DEFAULT, Backoff, Outcome, RunCore, resolve_limits

if TYPE_CHECKING:
    from magray.common.metrics import MetricsRegistry
    from magray.todo._events import RunReport, Subscriber
    from magray.todo._store import TodoStore

__all__ = [
    "Effect",
    "ExecutorBase",
    "ExecutorOptions",
    "Loop",
    "Sleep",
    "Start",
    "Wait",
    "run_loop",
]


@dataclass(frozen=True, slots=True)
class Start:
    """Start these attempts."""

    attempts: list[Attempt]


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait for attempts to end (``timeout``: at most this long; ``None``: no limit)."""

    timeout: float | None


@dataclass(frozen=True, slots=True)
class Sleep:
    """Nothing is in flight: sleep this long, until a retry comes due."""

    seconds: float


Effect = Start | Wait | Sleep
#: The loop: yields effects, receives outcomes after a :class:`Wait`, returns "stopped".
Loop = Generator[Effect, Sequence[Outcome] | None, bool]


def run_loop(core: RunCore, *, max_workers: int, stopping: Callable[[], bool]) -> Loop:
    """Claim, start, wait, record, until nothing in scope can run (see the module docstring)."""
    in_flight = 0
    while True:
        stop = stopping()
        if not stop:
            attempts = core.claim(max_workers - in_flight)
            if attempts:
                in_flight += len(attempts)
                yield Start(attempts)
        if not in_flight:
            if stop:
                return True
            retry_at = core.next_retry_at()
            if retry_at is None:
                return False
            yield Sleep(max(0.0, retry_at - core.clock()))
            continue
        timeout = None
        if in_flight < max_workers and not stop:
            retry_at = core.next_retry_at()
            if retry_at is not None:
                timeout = max(0.0, retry_at - core.clock())
        outcomes = (yield Wait(timeout)) or ()
        in_flight -= len(outcomes)
        core.finish(outcomes)


class ExecutorOptions(TypedDict, total=False):
    """The keyword arguments both executors take (see :class:`~magray.todo.Executor`)."""

    max_workers: int | None
    default_timeout: float | None
    backoff: Backoff | None
    with_action: bool
    clock: Callable[[], float] | None
    metrics: MetricsRegistry | None


class ExecutorBase:
    """Arguments, subscriptions and the per-run :class:`RunCore` both executors share."""

    def __init__(self, store: TodoStore, **options: Unpack[ExecutorOptions]) -> None:
        self.store = store
        self.max_workers, self.default_timeout, self.backoff = resolve_limits(
            store,
            max_workers=options.get("max_workers"),
            default_timeout=options.get("default_timeout", DEFAULT),
            backoff=options.get("backoff"),
        )
        self.with_action = options.get("with_action", False)
        self.clock = options.get("clock") or store.clock
        self.metrics = options.get("metrics")
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every progress event (on the run's thread).

        Returns:
            A function that unsubscribes.
        """
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def _begin(
        self, tasks: Iterable[int] | None, stopping: Callable[[], bool]
    ) -> tuple[RunCore, Loop]:
        """Start a run: its core takes the run lock; returns the core and the loop to drive."""
        core = RunCore(
            self.store,
            targets=tasks,
            with_action=self.with_action,
            backoff=self.backoff,
            default_timeout=self.default_timeout,
            clock=self.clock,
            subscribers=list(self._subscribers),
            metrics=self.metrics,
        )
        core.begin()
        return core, run_loop(core, max_workers=self.max_workers, stopping=stopping)

    @staticmethod
    def _end(core: RunCore, stopped: bool | None) -> RunReport:
        """End the run (``stopped is None``: it was interrupted); returns the report."""
        interrupted = stopped is None
        return core.end(stopped=interrupted or bool(stopped), interrupted=interrupted)
