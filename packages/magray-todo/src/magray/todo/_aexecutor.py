"""The asyncio executor: the same rules as :class:`Executor`, on an event loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Unpack

from magray.todo._attempt import Attempt, _current
from magray.todo._loop import Effect, ExecutorBase, ExecutorOptions, Sleep, Start
from magray.todo._model import Task
from magray.todo._run import Outcome, RunCore

if TYPE_CHECKING:
    from magray.todo._events import RunReport
    from magray.todo._store import TodoStore

__all__ = ["AsyncExecutor", "AsyncRunner"]

#: ``async def runner(task) -> result``, or a plain function (run in a thread).
AsyncRunner = Callable[[Task], Awaitable[Any]] | Callable[[Task], Any]


class AsyncExecutor(ExecutorBase):
    """Runs ready tasks concurrently as asyncio tasks.

    Same arguments and guarantees as :class:`~magray.todo.Executor`. An
    ``async`` runner is cancelled for real when its attempt times out; a
    plain function runs in a worker thread (``asyncio.to_thread``), which,
    like any Python thread, cannot be killed: its late result is dropped.
    Database calls are short and made on the loop's thread.

    Example::

        async def runner(task):
            await asyncio.sleep(0)
            return task.title

        report = await AsyncExecutor(store, runner, max_workers=8).run()
    """

    def __init__(
        self,
        store: TodoStore,
        runner: AsyncRunner,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        **options: Unpack[ExecutorOptions],
    ) -> None:
        super().__init__(store, **options)
        self.runner = runner
        self._sleep = sleep
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        """Claim nothing more; attempts in flight finish (up to their timeouts), then return.

        Safe to call from a runner, a subscriber or another thread.
        Cancelling the coroutine (Ctrl-C) instead cancels attempts in flight
        and resets their tasks as after a crash.
        """
        self._stopping = True
        event, loop = self._wake, self._loop
        if event is not None and loop is not None:
            loop.call_soon_threadsafe(event.set)

    async def run(self, *, tasks: Iterable[int] | None = None) -> RunReport:
        """Run until nothing in scope is ready, running or waiting for a retry."""
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        core, loop = self._begin(tasks, lambda: self._stopping)
        flights: set[asyncio.Task[Outcome]] = set()
        stopped: bool | None = None  # None until the loop ends normally: interrupted

        async def handle(effect: Effect) -> list[Outcome] | None:
            if isinstance(effect, Start):
                flights.update(asyncio.create_task(self._attempt(a, core)) for a in effect.attempts)
                return None
            if isinstance(effect, Sleep):
                await self._wait(effect.seconds)
                return None
            done, _ = await asyncio.wait(
                flights, timeout=effect.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            flights.difference_update(done)
            return [finished.result() for finished in done]

        try:
            effect = next(loop)
            while True:
                effect = loop.send(await handle(effect))
        except StopIteration as finished:
            stopped = finished.value
        finally:
            if stopped is None:
                for pending in flights:
                    pending.cancel()
                if flights:
                    await asyncio.gather(*flights, return_exceptions=True)
            report = self._end(core, stopped)
            self._wake = self._loop = None
        return report

    async def _wait(self, seconds: float) -> None:
        """Wait for a retry to come due; :meth:`stop` cuts the wait short."""
        if self._sleep is not None:
            await self._sleep(seconds)
            return
        wake = self._wake
        if wake is None:  # pragma: no cover - only called inside run()
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), seconds)

    async def _attempt(self, attempt: Attempt, core: RunCore) -> Outcome:
        task = attempt.task
        timeout = core.timeout_of(task)
        start = time.perf_counter()
        _current.set(attempt)  # this asyncio task's own context; to_thread copies it
        threaded = not _is_async(self.runner)
        try:
            if threaded:
                call: Awaitable[Any] = asyncio.to_thread(_in_thread, self.runner, attempt)
            else:
                call = self.runner(task)
            value = await asyncio.wait_for(call, timeout)
        except TimeoutError:
            if timeout is None:
                return Outcome(task, False, TimeoutError(), duration=time.perf_counter() - start)
            attempt.cancel(f"timed out after {timeout:g}s")  # reaches a runner in a thread
            return Outcome(task, False, timeout, timed_out=True, duration=timeout)
        except asyncio.CancelledError:
            attempt.cancel("the run was interrupted")
            raise
        except Exception as exc:
            return Outcome(task, False, exc, duration=time.perf_counter() - start)
        finally:
            if not threaded:  # a thread lets go of the lock itself, when the runner returns
                attempt.returned()
        return Outcome(task, True, value, duration=time.perf_counter() - start)


def _in_thread(runner: Callable[[Task], Any], attempt: Attempt) -> Any:
    """Run a plain runner in a worker thread; the task lock is let go when it returns.

    An attempt that timed out before its thread started is not run at all.
    """
    try:
        return None if attempt.cancelled else runner(attempt.task)
    finally:
        attempt.returned()


def _is_async(runner: Any) -> bool:
    return inspect.iscoroutinefunction(runner) or inspect.iscoroutinefunction(
        getattr(runner, "__call__", None)  # noqa: B004 - an object with async __call__
    )
