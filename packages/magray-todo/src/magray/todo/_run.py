"""What both executors share: the run lock, claiming, outcomes, retries, events.

An executor drives a :class:`RunCore`: ``begin()``, then repeatedly
``claim(n)`` and ``finish(results)``, then ``end()``. The core talks to the
store from the driver's thread only; runners never touch the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magray.common.errors import (
    ConfigError,
    InvalidInputError,
    NotFoundError,
    OperationTimeoutError,
    PermissionDeniedError,
)
from magray.common.log import get_logger
from magray.common.metrics import MetricsRegistry, default_registry
from magray.todo import _claims as C
from magray.todo._attempt import Attempt
from magray.todo._events import EventKind, ProgressEvent, RunReport, Subscriber
from magray.todo._lock import try_lock
from magray.todo._model import FINISHED, Status, Task
from magray.todo._resolver import Change
from magray.todo._store import TodoStore
from magray.todo.errors import RunActiveError, TodoInputError

__all__ = ["DEFAULT", "Backoff", "Outcome", "RunCore", "lock_path", "resolve_limits"]

log = get_logger(__name__)

#: Exceptions a retry cannot fix: the attempt fails for good at once.
PERMANENT: tuple[type[BaseException], ...] = (
    InvalidInputError,
    PermissionDeniedError,
    NotFoundError,
    ConfigError,
)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n`` (1-based): ``min(maximum, base * factor ** (n - 1))``."""

    base: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0

    def delay(self, attempt: int) -> float:
        return float(min(self.maximum, self.base * self.factor ** max(attempt - 1, 0)))


# "Take it from settings", for options where None already means something (no timeout).
DEFAULT: Any = object()

#: Seconds between looks at a task whose lock another process holds.
HOLD_POLL = 0.5


def resolve_limits(
    store: TodoStore, *, max_workers: int | None, default_timeout: Any, backoff: Backoff | None
) -> tuple[int, float | None, Backoff]:
    """An executor's worker count, default timeout and backoff: arguments over ``[todo]``."""
    settings = store.settings
    workers = settings.max_workers if max_workers is None else int(max_workers)
    if workers < 1:
        raise TodoInputError("max_workers must be at least 1")
    timeout = settings.default_timeout if default_timeout is DEFAULT else default_timeout
    return (
        workers,
        timeout,
        backoff or Backoff(base=settings.retry_backoff, maximum=settings.retry_backoff_max),
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended (made by the driver, judged by the core)."""

    task: Task
    ok: bool
    value: Any = None  # the result, or the exception
    timed_out: bool = False
    duration: float | None = None


def lock_path(db: Path) -> Path:
    """The run-lock file beside a database."""
    return db.with_name(db.name + ".run.lock")


def _info_path(db: Path) -> Path:
    return db.with_name(db.name + ".run.json")


class RunCore:
    """Shared run logic; see the module docstring."""

    def __init__(
        self,
        store: TodoStore,
        *,
        targets: Iterable[int] | None,
        with_action: bool,
        backoff: Backoff,
        default_timeout: float | None,
        clock: Callable[[], float],
        subscribers: Sequence[Subscriber],
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or default_registry()
        self.run_id = uuid.uuid4().hex[:12]
        self.with_action = with_action
        self.backoff = backoff
        self.default_timeout = default_timeout
        self.clock = clock
        self.subscribers = list(subscribers)
        self.scope: frozenset[int] | None = (
            None if targets is None else C.scope(store, list(targets))
        )
        self.counts: dict[Status, int] = dict.fromkeys(Status, 0)
        self.started_at = 0.0
        self.finished_in_run = 0
        self.attempts = 0
        self.succeeded = 0
        self.failed = 0
        self.retried = 0
        self.reset = 0
        self._lock: Any = None
        self._maybe_retry = False
        self._held_seen: set[int] = set()  # tasks reported as held by another process

    # ------------------------------------------------------------ lifecycle
    def begin(self) -> None:
        """Take the run lock, reset tasks a dead run left running, emit ``run_started``."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(lock_path(self.store.path)), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RunActiveError(
                f"another run is already executing tasks from {self.store.path}"
                f"{_describe_holder(self.store.path)}",
                hint="wait for it to finish (or stop it); one executor per database at a time",
                details={"path": str(self.store.path)},
            ) from None
        self._lock = lock
        with contextlib.suppress(OSError):  # informational only
            _info_path(self.store.path).write_text(
                json.dumps(
                    {
                        "run_id": self.run_id,
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "started": time.time(),
                    }
                )
            )
        self.started_at = self.clock()
        try:
            running = [t.id for t in self.store.tasks(status=Status.RUNNING)]
            stale = C.reset_stale(
                self.store,
                "the run that claimed it ended without finishing it",
                still_running=[i for i in running if self._held_elsewhere(i)],
            )
            self._recount()
        except BaseException:
            self._release()
            raise
        self._maybe_retry = True  # a dead run may have left retries waiting; checked once
        self.emit(EventKind.RUN_STARTED)
        for change in stale:
            if change.old is Status.RUNNING:
                self.reset += 1
                self.emit(EventKind.TASK_RESET, task=self.store.get(change.task_id))

    def end(self, *, stopped: bool, interrupted: bool = False) -> RunReport:
        """Release the lock and emit ``run_finished``.

        After an interruption (Ctrl-C, an error) attempts may still be in
        flight: their tasks are reset first, as after a crash.
        """
        try:
            if interrupted:
                C.reset_stale(self.store, "the run was interrupted")
            self._recount()
            waiting = (
                [t.id for t in self.store.ready(ids=self.scope) if t.action is None]
                if self.with_action
                else []
            )
            report = RunReport(
                run_id=self.run_id,
                counts={s.value: n for s, n in self.counts.items()},
                attempts=self.attempts,
                succeeded=self.succeeded,
                failed=self.failed,
                retried=self.retried,
                reset=self.reset,
                waiting=waiting,
                stopped=stopped,
                elapsed=max(0.0, self.clock() - self.started_at),
            )
            self.emit(EventKind.RUN_FINISHED)
            return report
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            _info_path(self.store.path).unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    # ------------------------------------------------------------ work
    def claim(self, limit: int) -> list[Attempt]:
        """Claim up to ``limit`` ready tasks (highest priority first) and take their task locks.

        A task whose lock another process holds (an attempt of a dead run
        still executing in a child) is given back and looked at again every
        :data:`HOLD_POLL` seconds; it starts once that process has ended.
        """
        if limit <= 0:
            return []
        tasks = C.claim(
            self.store, self.run_id, limit, with_action=self.with_action, ids=self.scope
        )
        attempts: list[Attempt] = []
        held: list[Task] = []
        for task in tasks:
            lock = try_lock(self.store.path, task.id)
            if lock is None:
                held.append(task)
            else:
                attempts.append(Attempt(task, lock))
        if held:
            C.defer(self.store, self.run_id, [t.id for t in held], self.clock() + HOLD_POLL)
            self._maybe_retry = True
            for task in held:
                if task.id not in self._held_seen:
                    self._held_seen.add(task.id)
                    self.emit(EventKind.TASK_HELD, task=task, error=self._HELD)
        for attempt in attempts:
            self._apply([Change(attempt.task.id, Status.READY, Status.RUNNING)])
            self.attempts += 1
            self.metrics.counter("todo.attempts").inc()
            self.emit(EventKind.TASK_STARTED, task=attempt.task)
        return attempts

    def _held_elsewhere(self, task_id: int) -> bool:
        lock = try_lock(self.store.path, task_id)
        if lock is None:
            return True
        lock.release()
        return False

    _HELD = (
        "an earlier attempt is still executing in another process, which holds the task's "
        "lock; waiting for it to end"
    )

    def timeout_of(self, task: Task) -> float | None:
        return task.timeout if task.timeout is not None else self.default_timeout

    def next_retry_at(self) -> float | None:
        """When the earliest retry in scope is due (``None``: no task waits for one)."""
        if not self._maybe_retry:  # fast path: no retry scheduled, skip the query
            return None
        at = C.next_retry_at(self.store, ids=self.scope, with_action=self.with_action)
        self._maybe_retry = at is not None
        return at

    def finish(self, outcomes: Sequence[Outcome]) -> None:
        """Record attempt outcomes in one transaction and emit their events."""
        if not outcomes:
            return
        now = self.clock()
        rows: list[tuple[int, bool, Any, float | None]] = []
        plans: dict[int, tuple[Outcome, str | None, float | None]] = {}
        for out in outcomes:
            if out.ok:
                rows.append((out.task.id, True, out.value, None))
                plans[out.task.id] = (out, None, None)
                continue
            error = _describe(out)
            permanent = isinstance(out.value, PERMANENT)
            retry_in = None
            if not permanent and out.task.attempts < out.task.max_attempts:
                retry_in = self.backoff.delay(out.task.attempts)
            rows.append((out.task.id, False, error, None if retry_in is None else now + retry_in))
            plans[out.task.id] = (out, error, retry_in)
        changes = C.finish(self.store, self.run_id, rows)
        # Each outcome's own change is counted just before its event, so the
        # counts in successive events grow one by one; cascades come last.
        own = {c.task_id: c for c in changes if c.old is Status.RUNNING and c.task_id in plans}
        for task_id, (out, error_text, retry_in) in plans.items():
            if task_id not in own:
                self.emit(EventKind.TASK_DISCARDED, task=out.task, duration=out.duration)
                continue
            self._apply([own[task_id]])
            if out.duration is not None:
                self.metrics.histogram("todo.attempt_ms").observe(out.duration * 1000)
            if out.ok:
                self.succeeded += 1
                self.metrics.counter("todo.tasks", outcome="done").inc()
                self.emit(EventKind.TASK_SUCCEEDED, task=out.task, duration=out.duration)
            elif retry_in is not None:
                self.retried += 1
                self._maybe_retry = True
                self.metrics.counter("todo.tasks", outcome="retried").inc()
                self.emit(
                    EventKind.TASK_RETRYING,
                    task=out.task,
                    error=error_text,
                    timed_out=out.timed_out,
                    retry_in=retry_in,
                    duration=out.duration,
                )
            else:
                self.failed += 1
                self.metrics.counter("todo.tasks", outcome="failed").inc()
                self.emit(
                    EventKind.TASK_FAILED,
                    task=out.task,
                    error=error_text,
                    timed_out=out.timed_out,
                    duration=out.duration,
                )
        self._apply(c for c in changes if own.get(c.task_id) is not c)

    # ------------------------------------------------------------ events
    def emit(self, kind: EventKind, **fields: Any) -> None:
        if not self.subscribers:
            return
        total = sum(self.counts.values())
        finished = sum(n for s, n in self.counts.items() if s in FINISHED)
        elapsed = max(0.0, self.clock() - self.started_at)
        eta = None
        if self.finished_in_run and total > finished:
            eta = elapsed / self.finished_in_run * (total - finished)
        elif total == finished:
            eta = 0.0
        event = ProgressEvent(
            kind=kind,
            run_id=self.run_id,
            counts={s.value: n for s, n in self.counts.items()},
            total=total,
            finished=finished,
            elapsed=elapsed,
            eta=eta,
            **fields,
        )
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception as exc:  # a broken display must not break the run
                log.warning("progress subscriber failed", error=repr(exc), kind=kind.value)

    def _recount(self) -> None:
        self.counts = self.store.counts(ids=self.scope)

    def _apply(self, changes: Iterable[Change]) -> None:
        """Keep the per-status counts current without re-reading the database.

        Tasks added by another process during the run were never counted: their
        first change only adds them (the counts are exact again at the end).
        """
        for change in changes:
            if self.scope is not None and change.task_id not in self.scope:
                continue
            if self.counts[change.old] > 0:
                self.counts[change.old] -= 1
            self.counts[change.new] += 1
            if change.new in FINISHED and change.old not in FINISHED:
                self.finished_in_run += 1


def _describe(out: Outcome) -> str:
    if out.timed_out:
        return f"timed out after {out.value:g}s" if isinstance(out.value, float) else "timed out"
    exc = out.value
    if isinstance(exc, OperationTimeoutError):
        return f"timeout: {exc}"
    if isinstance(exc, BaseException):
        message = str(exc)
        return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return str(exc)


def _describe_holder(db: Path) -> str:
    try:
        info = json.loads(_info_path(db).read_text())
    except (OSError, ValueError):
        return ""
    return f" (run {info.get('run_id')}, pid {info.get('pid')} on {info.get('host')})"
