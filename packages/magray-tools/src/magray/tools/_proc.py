"""Run a child process safely: no shell, own process group, capped output, hard timeout.

This is the unconfined primitive; tools start children through
:func:`magray.tools._sandbox.run_confined`, which wraps the program for the OS
sandbox and hands the result of this function back.

The child starts in a new session (its own process group), so a timeout or a
cancel kills the whole group: grandchildren such as ``sh -c 'sleep 100 &'``
die too, unless they deliberately leave the group (``setsid``), which is
documented as a limit in docs/tools.md.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from magray.common import fs
from magray.tools._model import CancelToken
from magray.tools.errors import ShellError

__all__ = ["ProcessResult", "run_process"]

_CHUNK = 65536
_POLL = 0.02
_TERM_GRACE = 0.3  # seconds a child gets to clean up after SIGTERM before the group is killed


@dataclass(frozen=True)
class ProcessResult:
    """What a finished (or killed) child produced."""

    argv: tuple[str, ...]
    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool
    cancelled: bool
    output_limit_hit: bool
    duration_s: float
    sandbox: str = "none"
    mode: str = "full"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.cancelled)


class _Reader(threading.Thread):
    """Drains one pipe, keeping at most ``cap`` bytes."""

    def __init__(self, pipe: IO[bytes], cap: int, total: list[int], lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.pipe, self.cap, self.total, self.lock = pipe, cap, total, lock
        self.kept = bytearray()
        self.dropped = 0

    def run(self) -> None:
        fd = self.pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, _CHUNK)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.total[0] += len(chunk)
            room = self.cap - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
            self.dropped += max(0, len(chunk) - max(room, 0))


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    max_output_bytes: int,
    cancel: CancelToken | None = None,
    stdin: bytes | None = None,
    drain_factor: int = 16,
    pass_fds: Sequence[int] = (),
    preexec: Callable[[], None] | None = None,
) -> ProcessResult:
    """Run ``argv`` (no shell) and collect its output.

    Args:
        argv: Program and arguments.
        cwd: Working directory.
        env: The complete environment of the child (already allow-listed).
        timeout: Seconds before the process group is killed.
        max_output_bytes: Bytes kept per stream; more is counted and dropped.
        cancel: Killing the group when set.
        stdin: Bytes written to the child's stdin (else it reads /dev/null).
        drain_factor: The group is killed once it has written this many times
            ``max_output_bytes`` in total (endless output such as ``yes``).
        pass_fds: Descriptors the child inherits (a todo task's lock, so the lock
            is held as long as any process of the task lives).
        preexec: Called in the forked child before the exec (the Landlock
            supervisor); it must not take locks another thread may hold.

    Raises:
        ShellError: The program does not exist or cannot be started.
    """
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            pass_fds=tuple(pass_fds),
            # magray itself runs with a private umask (077); what a command creates in
            # the user's workspace gets the user's own umask, as if they ran it.
            umask=fs.user_umask(),
            # The one preexec_fn (Landlock's supervisor) imports nothing and loads no
            # library after the fork; os.fork re-initialises the interpreter's locks.
            preexec_fn=preexec,  # noqa: PLW1509
        )
    except FileNotFoundError:
        raise ShellError(
            f"program not found: {argv[0]!r}",
            hint="check the spelling or install it; PATH is searched as usual",
            code="tool.shell.not_found",
        ) from None
    except PermissionError as exc:
        raise ShellError(f"cannot execute {argv[0]!r}: {exc.strerror}") from None
    except OSError as exc:
        raise ShellError(f"cannot start {argv[0]!r}: {exc}") from None

    lock = threading.Lock()  # guards ``total`` across the two reader threads
    total = [0]
    assert proc.stdout is not None
    assert proc.stderr is not None
    readers = [
        _Reader(proc.stdout, max_output_bytes, total, lock),
        _Reader(proc.stderr, max_output_bytes, total, lock),
    ]
    for reader in readers:
        reader.start()
    if stdin is not None and proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.write(stdin)
        with contextlib.suppress(OSError):
            proc.stdin.close()

    try:
        timed_out, cancelled, limit_hit = _wait(
            proc, start + timeout, cancel, lambda: total[0] > max_output_bytes * drain_factor
        )
    except BaseException:  # Ctrl-C in the caller: never leave the group running
        _kill_group(proc)
        raise
    # Background children left in the group would outlive the call: end them too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    # Grandchildren that left the group may hold the pipes open: do not wait for them forever.
    for reader in readers:
        reader.join(timeout=2.0)
    for stream in (proc.stdout, proc.stderr):
        with contextlib.suppress(OSError):
            stream.close()
    exit_code = proc.poll()
    return ProcessResult(
        argv=tuple(argv),
        exit_code=exit_code,
        stdout=bytes(readers[0].kept).decode("utf-8", errors="replace"),
        stderr=bytes(readers[1].kept).decode("utf-8", errors="replace"),
        truncated=any(r.dropped for r in readers) or limit_hit,
        timed_out=timed_out,
        cancelled=cancelled,
        output_limit_hit=limit_hit,
        duration_s=time.monotonic() - start,
    )


def _wait(
    proc: subprocess.Popen[bytes],
    deadline: float,
    cancel: CancelToken | None,
    over_limit: Callable[[], bool],
) -> tuple[bool, bool, bool]:
    """Wait for the child; kill its group on timeout, cancel or runaway output."""
    with _ExitWatch(proc) as watch:
        while True:
            if watch.wait(max(0.0, min(_POLL, deadline - time.monotonic()))):
                return False, False, False
            timed_out = time.monotonic() > deadline
            cancelled = cancel is not None and cancel.cancelled
            limit_hit = over_limit()
            if timed_out or cancelled or limit_hit:
                _kill_group(proc)
                return timed_out, cancelled and not timed_out, limit_hit and not timed_out


class _ExitWatch:
    """Waits for a child's exit, waking the moment it happens.

    On Linux a pidfd becomes readable when the child exits, so ``poll`` on it
    returns at once. ``Popen.wait(timeout)`` instead sleeps in doubling steps
    (0.5, 1, 2, 4, 8 ms...): a child that ends after 4 ms was only noticed at
    7.5 ms, which is most of what a sandboxed ``true`` cost. Elsewhere (no
    ``pidfd_open``) that polling wait is the fallback.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.poller: select.poll | None = None
        self.fd = -1
        if hasattr(os, "pidfd_open") and hasattr(select, "poll"):
            try:
                self.fd = os.pidfd_open(proc.pid)
            except OSError:  # kernel < 5.3, or seccomp forbids it
                return
            self.poller = select.poll()
            self.poller.register(self.fd, select.POLLIN)

    def __enter__(self) -> _ExitWatch:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)

    def wait(self, seconds: float) -> bool:
        """True once the child has exited (and is reaped), after at most ``seconds``."""
        if self.poller is not None:
            events = self.poller.poll(max(1, math.ceil(seconds * 1000)))
            if self.proc.poll() is not None:
                return True
            if not events:
                return False
            # Readable yet not reapable (not expected): wait the polling way, never spin.
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child (a sandbox supervisor cleans up), then SIGKILL its group; reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_TERM_GRACE)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
