#!/usr/bin/env python3
"""magray-todo on a random DAG: insert, ready-set query, graph queries, no-op execution.

Usage::

    .venv/bin/python scripts/bench/todo.py [--tasks 10000] [--max-deps 3] [--workers 4]
                                           [--chain 20000] [--seed 8] [--json]

The DAG: task i depends on up to --max-deps tasks drawn from the 200 tasks
before it (so chains are long, like real plans, and the ready set starts
small). Every figure is one fresh database in a temp dir; query timings are
the median of --repeat runs. "no-op execution" runs every task with a runner
that returns None, so it measures the executor's own cost per task (wall
time, and the CPU time of this process, which is less sensitive to a busy
machine):
claiming, recording outcomes and promoting dependents, in SQLite
transactions.

"chain" builds a --chain-task chain (each task depends on the one before),
fails its first task (blocking the rest), retries it (re-opening the rest),
cancels and retries it again. Meanwhile a second process takes and releases
the write lock (``BEGIN IMMEDIATE``) every few milliseconds and reports the
longest it had to wait: how long a cascade keeps every other writer (such as
another process's ``todo add``) out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    return statistics.median(timed(fn)[0] for _ in range(repeat)) * 1000


def random_dag(n: int, max_deps: int, window: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    edges = []
    for i in range(1, n):
        lo = max(0, i - window)
        k = rng.randint(0, min(max_deps, i - lo))
        edges.extend((i, j) for j in rng.sample(range(lo, i), k))
    return edges


def build(path: Path, n: int, edges: list[tuple[int, int]]) -> tuple[float, Any]:
    from magray.todo import TaskSpec, TodoStore

    store = TodoStore(path)
    specs = [TaskSpec(f"task {i}", priority=i % 5) for i in range(n)]
    seconds, _ = timed(lambda: store.add_many(specs, edges=edges))
    return seconds, store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--max-deps", type=int, default=3)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--chain", type=int, default=20_000, help="0 skips the chain steps")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    from magray.todo import AsyncExecutor, Executor, TaskSpec

    n = args.tasks
    edges = random_dag(n, args.max_deps, args.window, args.seed)
    rows: list[tuple[str, str, str]] = []
    results: dict[str, Any] = {"tasks": n, "edges": len(edges), "workers": args.workers}

    with tempfile.TemporaryDirectory() as tmp:
        # 1. bulk insert: tasks + edges in one transaction
        insert_s, store = build(Path(tmp) / "a.db", n, edges)
        results["insert_s"] = insert_s
        rows.append(
            (
                "insert (add_many, 1 transaction)",
                f"{insert_s:.2f} s",
                f"{n / insert_s:,.0f} tasks/s",
            )
        )

        # 2. single adds and edge checks on the full database
        base = store.tasks(limit=1)[0].id
        single = [timed(lambda: store.add("one more", depends_on=[base]))[0] for _ in range(50)]
        results["add_one_ms"] = statistics.median(single) * 1000
        rows.append(("add() one task, 1 dep", f"{results['add_one_ms']:.2f} ms", "median of 50"))
        last = store.tasks(limit=1, status="pending")
        tail = store.add("tail").id
        dep_s, _ = timed(lambda: store.add_dependency(tail, last[0].id))
        results["add_dependency_ms"] = dep_s * 1000
        rows.append(("add_dependency() with cycle check", f"{dep_s * 1000:.2f} ms", ""))

        # 3. ready-set query (SQL) and graph queries (networkx)
        ready = store.ready()
        results["ready_count"] = len(ready)
        results["ready_ms"] = median_ms(store.ready, args.repeat)
        rows.append(("ready() query", f"{results['ready_ms']:.2f} ms", f"{len(ready)} ready tasks"))
        results["ready_top10_ms"] = median_ms(lambda: store.ready(limit=10), args.repeat)
        rows.append(("ready(limit=10)", f"{results['ready_top10_ms']:.2f} ms", ""))
        graph_s, graph = timed(store.graph)
        results["graph_build_ms"] = graph_s * 1000
        rows.append(("graph() load into networkx", f"{graph_s * 1000:.0f} ms", ""))
        results["topo_ms"] = median_ms(graph.topological_order, args.repeat)
        rows.append(("topological_order()", f"{results['topo_ms']:.0f} ms", ""))
        crit_s, crit = timed(graph.critical_path)
        results["critical_path_ms"] = crit_s * 1000
        results["critical_path_len"] = len(crit.tasks)
        rows.append(("critical_path()", f"{crit_s * 1000:.0f} ms", f"{len(crit.tasks)} tasks long"))
        export_s, text = timed(lambda: graph.export("mermaid"))
        rows.append(("export mermaid", f"{export_s * 1000:.0f} ms", f"{len(text) // 1024} KiB"))
        store.close()

        # 4. full no-op execution, threads and asyncio, each on a fresh database
        for name, make in (
            ("threads", lambda s: Executor(s, lambda t: None, max_workers=args.workers)),
            ("asyncio", lambda s: AsyncExecutor(s, _anoop, max_workers=args.workers)),
        ):
            _, fresh = build(Path(tmp) / f"{name}.db", n, edges)
            executor = make(fresh)
            events = 0

            def count(_event: Any) -> None:
                nonlocal events
                events += 1

            executor.subscribe(count)
            cpu = time.process_time()
            if name == "threads":
                run_s, report = timed(executor.run)
            else:
                run_s, report = timed(lambda ex=executor: asyncio.run(ex.run()))
            cpu = time.process_time() - cpu
            assert report.counts["done"] == n, report.counts
            results[f"run_{name}_s"] = run_s
            results[f"run_{name}_events"] = events
            results[f"run_{name}_cpu_s"] = cpu
            rows.append(
                (
                    f"no-op run, {name}, {args.workers} workers",
                    f"{run_s:.2f} s",
                    f"{n / run_s:,.0f} tasks/s, {cpu:.2f} s CPU, {events:,} progress events",
                )
            )
            fresh.close()

        # 5. cascades over a long chain, with another process waiting for the write lock
        if args.chain:
            chain_rows, chain_results = chain_cascades(Path(tmp) / "chain.db", args.chain)
            rows += chain_rows
            results.update(chain_results)

    results["python"] = platform.python_version()
    results["machine"] = platform.machine()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"magray-todo, {n:,} tasks, {len(edges):,} edges (seed {args.seed})")
    print("| step | time | note |")
    print("|---|---:|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    _ = TaskSpec  # imported above so a broken install fails before the long work
    return 0


PROBE = """
import os, sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=120, isolation_level=None)
print("ready", flush=True)
longest, rounds = 0.0, 0
while not os.path.exists(sys.argv[2]):
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("COMMIT")
    longest = max(longest, time.perf_counter() - start)
    rounds += 1
    time.sleep(0.002)
print(longest, rounds, flush=True)
"""


class LockProbe:
    """A second process that takes the write lock over and over, timing each wait."""

    def __init__(self, db: Path) -> None:
        import subprocess

        self.stop = db.with_name(db.name + ".probe-stop")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PROBE, str(db), str(self.stop)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        self.rounds = 0

    def close(self) -> float:
        self.stop.touch()
        out, _ = self.proc.communicate(timeout=300)
        longest, rounds = out.split()
        self.rounds = int(rounds)
        return float(longest)


def chain_cascades(path: Path, n: int) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    from magray.todo import TaskSpec, TodoStore

    rows: list[tuple[str, str, str]] = []
    results: dict[str, Any] = {"chain": n}
    with TodoStore(path) as store:
        specs = [TaskSpec(f"step {i}") for i in range(n)]
        first = store.add_many(specs, edges=[(i, i - 1) for i in range(1, n)])[0].id
        holds = hold_timer(store)
        probe = LockProbe(path)
        for step, call in (
            ("fail", lambda: store.fail(first)),
            ("retry", lambda: store.retry(first)),
            ("cancel", lambda: store.cancel(first)),
            ("retry_after_cancel", lambda: store.retry(first)),
        ):
            time.sleep(0.3)  # let the probe in between steps, so it times one step's hold
            holds.clear()
            seconds, changes = timed(call)
            assert len(changes) == n, (step, len(changes))
            results[f"chain_{step}_s"] = seconds
            results[f"chain_{step}_hold_s"] = max(holds)
            rows.append(
                (
                    f"chain of {n:,}: {step.replace('_', ' ')}",
                    f"{seconds:.2f} s",
                    f"{n:,} changes; write lock held {max(holds) * 1000:.0f} ms",
                )
            )
        time.sleep(0.3)
        longest = probe.close()
        assert store.counts()["pending"] == n - 1
    results["chain_longest_lock_wait_s"] = longest
    results["chain_probe_rounds"] = probe.rounds
    rows.append(
        (
            "longest wait of another writer",
            f"{longest * 1000:.0f} ms",
            f"BEGIN IMMEDIATE from a second process, {probe.rounds:,} times during the steps",
        )
    )
    return rows, results


def hold_timer(store: Any) -> list[float]:
    """Record how long each write transaction of ``store`` holds the lock (BEGIN to commit)."""
    import contextlib

    holds: list[float] = []
    write = store._write

    @contextlib.contextmanager
    def timed_write() -> Any:
        with write() as conn:  # BEGIN IMMEDIATE has run: the lock is held
            start = time.perf_counter()
            yield conn
        holds.append(time.perf_counter() - start)  # committed

    store._write = timed_write
    return holds


async def _anoop(_task: Any) -> None:
    return None


if __name__ == "__main__":
    sys.exit(main())
