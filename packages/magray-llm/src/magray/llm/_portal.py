"""An event loop in a daemon thread, so sync callers can run coroutines on it.

litellm's Router is driven through its async path only (the one on which every routing
strategy works); :class:`Portal` lets the sync client wait on those calls, and cancels
them when the waiting thread is interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["Portal"]

T = TypeVar("T")


class Portal:
    """An event loop in a daemon thread, so sync callers can use the Router's async path."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    ready.set()
                    loop.run_forever()

                thread = threading.Thread(target=run, name="magray-llm-router", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the portal's loop and wait for its result.

        An exception in the waiting thread (Ctrl-C's ``KeyboardInterrupt``) cancels the
        coroutine on the loop, whether or not it has started yet.
        """
        loop = self._ensure()
        state: dict[str, Any] = {"task": None, "cancelled": False}

        async def wrap() -> T:
            if state["cancelled"]:
                coro.close()
                raise asyncio.CancelledError
            state["task"] = asyncio.current_task()
            return await coro

        def cancel() -> None:
            state["cancelled"] = True
            if state["task"] is not None:
                state["task"].cancel()

        try:
            return asyncio.run_coroutine_threadsafe(wrap(), loop).result()
        except BaseException:
            loop.call_soon_threadsafe(cancel)
            raise

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            from magray.llm._backend import aclose_cached_clients

            await aclose_cached_clients()
            # litellm leaves background workers (its logging queue) on the loop.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await loop.shutdown_asyncgens()

        with contextlib.suppress(Exception):  # closing is best effort
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
