"""Child process for test_resume.py: runs the DAG in a database.

Usage: python _resume_worker.py DB LOG LABEL CRASH_AFTER WORKERS

Every attempt appends "LABEL start ID" and "LABEL end ID" lines to LOG and
writes out/ID (an idempotent effect). With CRASH_AFTER > 0, once that many
attempts have ended, every further attempt prints "BLOCKED ID" on stdout and
hangs, so the parent can SIGKILL the process while tasks are in flight.
"Ended" counts task_succeeded events, which come after the database commit,
so at least CRASH_AFTER tasks are done in the database when the kill comes.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from magray.todo import EventKind, Executor, ProgressEvent, Task, TodoStore


def main() -> None:
    db, log, label, crash_after, workers = sys.argv[1:6]
    limit = int(crash_after)
    out_dir = Path(db).parent / "out"
    out_dir.mkdir(exist_ok=True)
    lock = threading.Lock()
    committed = 0
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def note(line: str) -> None:
        os.write(fd, f"{label} {line}\n".encode())

    def count(event: ProgressEvent) -> None:
        nonlocal committed
        if event.kind is EventKind.TASK_SUCCEEDED:
            with lock:
                committed += 1

    def runner(task: Task) -> int:
        with lock:
            hang = limit > 0 and committed >= limit
        note(f"start {task.id}")
        if hang:
            print(f"BLOCKED {task.id}", flush=True)
            threading.Event().wait()
        (out_dir / str(task.id)).write_text(task.title)
        note(f"end {task.id}")
        return task.id

    with TodoStore(db) as store:
        executor = Executor(store, runner, max_workers=int(workers))
        executor.subscribe(count)
        report = executor.run()
    print(json.dumps(report.to_dict()), flush=True)


if __name__ == "__main__":
    main()
