"""The call skeleton's plumbing: effects, the one driver, and the stream adapters.

:class:`~magray.llm.LLMClient` writes each call (request building, retries and
backoff, fallbacks, metrics, error mapping, structured-output repair) once, as a
generator that *yields effects* instead of doing I/O: :class:`Send` (one request on
a transport) and :class:`Sleep` (a backoff wait). The generator receives each
effect's result (or its exception, thrown in) and returns the call's result. It is
sans-IO in the sense of httpx's core and h11: the same code serves sync and async.

:func:`drive` runs such a generator with an *async* performer. The sync entry point,
:func:`run`, drives the very same coroutine with a performer that never suspends, so
it completes within a single ``send(None)``: there is no second, sync copy of the loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from magray.llm._stream import StreamAssembler, delta_from_chunk
from magray.llm._types import Completion, StreamDelta

if TYPE_CHECKING:
    from magray.common.errors import LLMError
    from magray.llm._transport import Transport

__all__ = [
    "AsyncCompletionStream",
    "CompletionStream",
    "Opened",
    "Send",
    "Sleep",
    "Steps",
    "arun",
    "run",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """Effect: send one request (``kwargs``) on ``transport``; resumes with its response."""

    transport: Transport
    kwargs: dict[str, Any]
    stream: bool


@dataclass(frozen=True)
class Sleep:
    """Effect: wait ``seconds`` (a backoff); resumes with ``None``."""

    seconds: float


Effect = Send | Sleep
Steps = Generator[Effect, Any, T]
"""A call written once: yields effects, receives their results, returns the call's result."""


async def drive(steps: Steps[T], perform: Callable[[Effect], Awaitable[Any]]) -> T:
    """Run ``steps``, performing each effect with ``perform`` and feeding back its outcome."""
    outcome: tuple[Any, BaseException | None] = (None, None)
    while True:
        value, error = outcome
        try:
            effect = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        try:
            outcome = (await perform(effect), None)
        except Exception as exc:
            outcome = (None, exc)


def run(steps: Steps[T], sleep: Callable[[float], None]) -> T:
    """Drive ``steps`` synchronously: transports' ``send``, and ``sleep`` for backoff."""

    async def perform(effect: Effect) -> Any:
        if isinstance(effect, Sleep):
            return sleep(effect.seconds)
        return effect.transport.send(effect.kwargs, stream=effect.stream)

    coroutine = drive(steps, perform)
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coroutine.close()
    raise RuntimeError("a synchronous LLM call suspended")  # pragma: no cover - a bug


async def arun(steps: Steps[T], asleep: Callable[[float], Awaitable[None]]) -> T:
    """Drive ``steps`` in the running event loop: transports' ``asend``, ``asleep``."""

    async def perform(effect: Effect) -> Any:
        if isinstance(effect, Sleep):
            return await asleep(effect.seconds)
        return await effect.transport.asend(effect.kwargs, stream=effect.stream)

    return await drive(steps, perform)


# ---------------------------------------------------------------- streams


@dataclass
class Opened:
    """A stream whose request succeeded: its chunks and how to finish the call.

    Attributes:
        chunks: The transport's (sync or async) iterator of chunks.
        assembler: Collects the deltas into the final completion.
        finish: Builds the completion (usage, cost, metrics) once the stream ended.
        fail: Maps an exception raised while reading the chunks.
    """

    chunks: Any
    assembler: StreamAssembler
    finish: Callable[[], Completion]
    fail: Callable[[BaseException], LLMError]
    completion: Completion | None = field(default=None)

    def delta(self, chunk: Any) -> StreamDelta:
        delta = delta_from_chunk(chunk)
        self.assembler.add(delta)
        return delta

    def end(self) -> None:
        if self.completion is None:
            self.completion = self.finish()


class CompletionStream:
    """An iterator of :class:`StreamDelta`; ``completion`` holds the assembled result.

    Iterate it to the end (or use :meth:`collect`); afterwards ``completion``
    has the full text, the tool calls with their arguments joined, and usage.
    """

    def __init__(self, opened: Opened) -> None:
        self._opened = opened
        self._chunks: Iterator[Any] = iter(opened.chunks)

    @property
    def completion(self) -> Completion | None:
        """The assembled completion once the stream ended (``None`` before)."""
        return self._opened.completion

    def __iter__(self) -> Iterator[StreamDelta]:
        return self

    def __next__(self) -> StreamDelta:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._opened.end()
            raise
        except Exception as exc:
            raise self._opened.fail(exc) from exc
        return self._opened.delta(chunk)

    def collect(self) -> Completion:
        """Consume the rest of the stream and return the assembled completion."""
        for _ in self:
            pass
        assert self.completion is not None
        return self.completion


class AsyncCompletionStream:
    """The async twin of :class:`CompletionStream` (``async for delta in stream``)."""

    def __init__(self, opened: Opened) -> None:
        self._opened = opened
        self._chunks: AsyncIterator[Any] = opened.chunks

    @property
    def completion(self) -> Completion | None:
        """The assembled completion once the stream ended (``None`` before)."""
        return self._opened.completion

    def __aiter__(self) -> AsyncIterator[StreamDelta]:
        return self

    async def __anext__(self) -> StreamDelta:
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._opened.end()
            raise
        except Exception as exc:
            raise self._opened.fail(exc) from exc
        return self._opened.delta(chunk)

    async def collect(self) -> Completion:
        """Consume the rest of the stream and return the assembled completion."""
        async for _ in self:
            pass
        assert self.completion is not None
        return self.completion
