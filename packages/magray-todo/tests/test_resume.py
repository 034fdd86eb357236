"""Crash-resume: a run SIGKILLed mid-way is completed by the next run.

A child process runs a random DAG of idempotent tasks with 3 workers and is
killed with SIGKILL while attempts are in flight. A second child runs the
same database again. Every task ends done with exactly one counted attempt;
no task that was done before the kill runs again; only tasks that were in
flight at the kill may have executed twice (that is what idempotent allows).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from magray.todo import Status, TaskSpec, TodoStore

WORKER = Path(__file__).with_name("_resume_worker.py")


def spawn(db: Path, log: Path, label: str, crash_after: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(log), label, str(crash_after), "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_log(log: Path) -> list[tuple[str, str, int]]:
    out = []
    for line in log.read_text().splitlines():
        label, kind, task_id = line.split()
        out.append((label, kind, int(task_id)))
    return out


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_run_resumes_and_finishes_each_task_once(tmp_path: Path) -> None:
    rng = random.Random(8)
    n = 40
    edges = [(i, j) for i in range(1, n) for j in rng.sample(range(i), k=min(i, rng.randint(0, 2)))]
    db = tmp_path / "todo.db"
    log = tmp_path / "executions.log"
    with TodoStore(db) as store:
        store.add_many([TaskSpec(f"t{i}", idempotent=True) for i in range(n)], edges=edges)

    child = spawn(db, log, "1", crash_after=12)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("BLOCKED"), (line, child.stderr.read() if child.stderr else "")
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()  # reap it and close its pipes
    assert child.returncode == -signal.SIGKILL

    with TodoStore(db) as store:
        before = {t.id: t.status for t in store.tasks()}
    done_before = {i for i, s in before.items() if s is Status.DONE}
    running_at_kill = {i for i, s in before.items() if s is Status.RUNNING}
    assert len(done_before) >= 12, before
    assert running_at_kill, before
    assert len(done_before) < n

    rerun = spawn(db, log, "2", crash_after=0)
    stdout, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["reset"] == len(running_at_kill)
    assert report["ok"]
    assert report["complete"]

    with TodoStore(db) as store:
        tasks = {t.id: t for t in store.tasks()}
        edges_db = store.edges()
    assert all(t.status is Status.DONE for t in tasks.values())
    assert all(t.attempts == 1 for t in tasks.values())  # each done exactly once

    entries = read_log(log)
    second_starts = Counter(i for label, kind, i in entries if label == "2" and kind == "start")
    assert not (set(second_starts) & done_before)  # done work is never repeated
    assert set(second_starts) == set(tasks) - done_before
    assert all(count == 1 for count in second_starts.values())
    ends = Counter(i for _, kind, i in entries if kind == "end")
    assert set(ends) == set(tasks)
    assert {i for i, c in ends.items() if c > 1} <= running_at_kill
    position = {(label, kind, i): k for k, (label, kind, i) in enumerate(entries)}
    for task_id, dep in edges_db:
        if ("2", "start", task_id) in position and ("2", "end", dep) in position:
            assert position[("2", "end", dep)] < position[("2", "start", task_id)]
    assert sorted(int(p.name) for p in (tmp_path / "out").iterdir()) == sorted(tasks)
