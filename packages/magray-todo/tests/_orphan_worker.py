"""Child process for test_task_locks.py: a run whose attempts start processes.

Usage: python _orphan_worker.py DB LOG LABEL MODE

MODE ``spawn``: every attempt starts a grandchild (in its own session, so it
survives this process) that inherits the task lock through ``pass_fds``,
logs "child start ID", waits for the file ``<db dir>/release``, logs "child
end ID" and exits; the attempt prints "SPAWNED ID PID" and hangs until the
parent SIGKILLs this process. MODE ``plain``: attempts log "LABEL start ID"
and "LABEL end ID"; ``task_held`` events are printed as "HELD ID"; the run
report is printed as JSON at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from magray.todo import EventKind, Executor, ProgressEvent, Task, TodoStore, current_attempt

GRANDCHILD = """
import os, sys, time
log, task, release = sys.argv[1], sys.argv[2], sys.argv[3]
def note(line):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (line + "\\n").encode())
    os.close(fd)
note(f"child start {task}")
deadline = time.monotonic() + 120  # a safety net if the test never releases it
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.02)
note(f"child end {task}")
"""


def main() -> None:
    db, log, label, mode = sys.argv[1:5]
    release = Path(db).parent / "release"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    printing = threading.Lock()

    def note(line: str) -> None:
        os.write(fd, f"{line}\n".encode())

    def say(line: str) -> None:
        with printing:  # two runner threads print; keep each line whole
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def spawn(task: Task) -> None:
        attempt = current_attempt()
        assert attempt is not None
        assert attempt.pass_fds
        child = subprocess.Popen(
            [sys.executable, "-c", GRANDCHILD, log, str(task.id), str(release)],
            pass_fds=attempt.pass_fds,
            start_new_session=True,
            stdout=subprocess.DEVNULL,  # not this process's pipes: the test reads them to EOF
            stderr=subprocess.DEVNULL,
        )
        say(f"SPAWNED {task.id} {child.pid}")
        threading.Event().wait()

    def plain(task: Task) -> int:
        note(f"{label} start {task.id}")
        note(f"{label} end {task.id}")
        return task.id

    def held(event: ProgressEvent) -> None:
        if event.kind is EventKind.TASK_HELD and event.task is not None:
            say(f"HELD {event.task.id} {event.error}")

    with TodoStore(db) as store:
        executor = Executor(store, spawn if mode == "spawn" else plain, max_workers=2)
        executor.subscribe(held)
        report = executor.run()
    say(json.dumps(report.to_dict()))


if __name__ == "__main__":
    main()
