"""A task claimed by a run that died is never executed twice at once.

A first process runs two tasks whose attempts start grandchildren that
inherit the task lock (``pass_fds=attempt.pass_fds``) and outlive their
parent; the parent is SIGKILLed. A second run must not start the idempotent
task while its grandchild still runs: it reports the task as held, waits,
and runs it once the grandchild has ended. The other task, not idempotent,
is failed with a message saying its process is still running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from magray.todo import Status, TodoStore

WORKER = Path(__file__).with_name("_orphan_worker.py")

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL") or sys.platform == "win32", reason="needs SIGKILL and flock"
)


def spawn(db: Path, log: Path, label: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(log), label, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_surviving_child_keeps_its_task_from_running_again(tmp_path: Path) -> None:
    db = tmp_path / "todo.db"
    log = tmp_path / "executions.log"
    with TodoStore(db) as store:
        again = store.add("idempotent", idempotent=True, priority=2).id
        once = store.add("not idempotent", priority=1).id
        after = store.add("after", idempotent=True, depends_on=[again]).id

    first = spawn(db, log, "1", "spawn")
    second: subprocess.Popen[str] | None = None
    try:
        assert first.stdout is not None
        grandchildren = []
        for _ in range(2):
            line = first.stdout.readline().split()
            assert line[:1] == ["SPAWNED"], (line, first.stderr.read() if first.stderr else "")
            grandchildren.append(int(line[2]))
        os.kill(first.pid, signal.SIGKILL)
        first.communicate()
        assert all(alive(pid) for pid in grandchildren)  # orphans, still working

        second = spawn(db, log, "2", "plain")
        assert second.stdout is not None
        held = second.stdout.readline().split()
        assert held[:2] == ["HELD", str(again)], (held, second.stderr)
        time.sleep(1.0)  # two looks at the lock: the task must still wait
        assert second.poll() is None
        assert f"2 start {again}" not in log.read_text()
        with TodoStore(db) as store:
            failed = store.get(once)
        assert failed.status is Status.FAILED
        assert "a process it started is still running" in (failed.error or "")

        (tmp_path / "release").touch()  # the grandchildren finish
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
    finally:
        (tmp_path / "release").touch()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    report = json.loads(out.strip().splitlines()[-1])
    assert report["reset"] == 2
    assert report["succeeded"] == 2
    lines = log.read_text().splitlines()
    assert lines.index(f"child end {again}") < lines.index(f"2 start {again}")
    assert lines.count(f"2 start {again}") == 1
    assert f"2 start {once}" not in lines
    with TodoStore(db) as store:
        assert [store.get(i).status for i in (again, once, after)] == [
            Status.DONE,
            Status.FAILED,
            Status.DONE,
        ]
        assert store.get(again).attempts == 1


def test_a_lock_held_by_another_process_defers_the_claim(tmp_path: Path) -> None:
    """The same check without a crash: a task re-opened while an old process still runs it."""
    from magray.todo import EventKind, Executor, ProgressEvent

    db = tmp_path / "todo.db"
    with TodoStore(db) as store:
        task = store.add("t").id
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time\n"
                "from pathlib import Path\n"
                "from magray.todo._lock import try_lock\n"
                "lock = try_lock(Path(sys.argv[1]), int(sys.argv[2]))\n"
                "print('locked' if lock else 'busy', flush=True)\n"
                "time.sleep(1.2)\n",
                str(db),
                str(task),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        events: list[ProgressEvent] = []
        ran_at: list[float] = []
        executor = Executor(store, lambda t: ran_at.append(time.monotonic()))
        executor.subscribe(events.append)
        start = time.monotonic()
        report = executor.run()
        holder.communicate(timeout=30)
    assert report.succeeded == 1
    assert [e.task.id for e in events if e.kind is EventKind.TASK_HELD and e.task] == [task]
    assert ran_at[0] - start >= 0.9  # waited for the holder to exit
    assert store.get(task).attempts == 1  # the deferred claim was not counted
