#!/usr/bin/env python3
"""First-token time of `magray chat` against a local stub LLM server (127.0.0.1).

Usage::

    .venv/bin/python scripts/bench/chat.py [--runs 5]

Figures, side by side in one run (the cold ones interleaved run by run, so the load
of a shared machine hits every variant alike):

- **python -c pass**: the interpreter's own start-up, the floor of any cold command;
- **cold CLI, direct transport**: from spawning `magray chat --plain "..."` to the
  first byte of the streamed answer on its stdout (interpreter, imports, settings,
  routing, the HTTP request over httpx, the first SSE chunk), as shipped: an
  ``openai/...`` model is served by the direct transport and litellm is never imported;
- **cold CLI, litellm transport**: the same with ``MAGRAY_LLM__TRANSPORT=litellm``
  (litellm's import and its first-call set-up on the path);
- each cold figure with memory off (``--no-memory``) and on (a store holding three
  records: open it, embed the question with the default embedder, search);
- **import litellm**: a bare interpreter importing litellm (the floor of the litellm path);
- **warm router**: an in-process :class:`magray.router.Router` that has already
  answered once, from ``ask()`` to its first ``token`` event (memory on).

The stub (:mod:`magray.llm.testing`) answers at once, so the numbers are magray's own
overhead, not a model's.

Every process runs with bytecode caching on, in a temporary ``PYTHONPYCACHEPREFIX``
(``PYTHONDONTWRITEBYTECODE`` is dropped), written by the uncounted first run: an
installed package has its ``.pyc`` files, and without them an editable checkout
spends ~0.3 s compiling sources on every cold start.

``--importtime N`` also prints the N largest top-level imports of one cold direct
``--no-memory`` run (``python -X importtime``, cumulative ms) and the sum of all
modules' own import times. ``--phases N`` splits the cold direct path into its steps,
each timed inside N fresh interpreters (min and p50 per step): importing the CLI,
settings and logging, importing the router, the tool registry, the tool schemas,
rule routing, the LLM client, and the request up to its first token.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _env(api_base: str, home: str, transport: str = "auto") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGRAY_")}
    env.update(
        {
            "MAGRAY_HOME": home,
            "MAGRAY_LLM__MODEL": "openai/bench-model",
            "MAGRAY_LLM__API_BASE": api_base,
            "OPENAI_API_KEY": "sk-bench",
            "MAGRAY_LLM__TRANSPORT": transport,
        }
    )
    return env


_FACTS = [
    "The bench fixture: magray answers from a loopback stub.",
    "The staging database is called orca and runs PostgreSQL 16.",
    "Release notes are written on the Friday before a release.",
]


def _first_byte(cmd: list[str], env: dict[str, str]) -> float:
    """Milliseconds from spawning ``cmd`` to the first byte on its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env
    )
    assert proc.stdout is not None
    select.select([proc.stdout], [], [], 120)
    first = time.perf_counter()
    proc.stdout.read()
    proc.wait()
    return (first - start) * 1000


TRANSPORTS = ("auto", "litellm")


def cold_cli(api_base: str, runs: int, *, memory: bool) -> dict[str, list[float]]:
    """Cold one-shot runs per transport, and `python -c pass`, interleaved run by run."""
    script = str(Path(sys.executable).parent / "magray")
    samples: dict[str, list[float]] = {"pass": [], **{t: [] for t in TRANSPORTS}}
    with tempfile.TemporaryDirectory() as home:
        if memory:
            for fact in _FACTS:
                subprocess.run(
                    [script, "memory", "add", fact],
                    env=_env(api_base, home),
                    check=True,
                    capture_output=True,
                )
        args = ["chat", "--plain", "what is the staging database?"]
        if not memory:
            args.insert(1, "--no-memory")
        for transport in TRANSPORTS:  # warms the page cache; not counted
            _first_byte([script, *args], _env(api_base, home, transport))
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)  # spawn to exit
            samples["pass"].append((time.perf_counter() - started) * 1000)
            for transport in TRANSPORTS:
                env = _env(api_base, home, transport)
                samples[transport].append(_first_byte([script, *args], env))
    return samples


def import_summary(api_base: str, top: int) -> list[str]:
    """The ``top`` largest top-level imports of one cold direct ``--no-memory`` run."""
    script = str(Path(sys.executable).parent / "magray")
    with tempfile.TemporaryDirectory() as home:
        cmd = [sys.executable, "-X", "importtime", script, "chat", "--no-memory", "--plain", "hi"]
        proc = subprocess.run(
            cmd, env=_env(api_base, home), capture_output=True, text=True, check=True
        )
    rows = re.findall(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$", proc.stderr, re.M)
    own = sum(int(r[0]) for r in rows) / 1000
    outer = sorted(((int(r[1]) / 1000, r[3]) for r in rows if not r[2]), reverse=True)
    lines = [f"imports of a cold direct --no-memory run: {len(rows)} modules, {own:.0f} ms in all"]
    lines += [f"  {ms:7.1f} ms  {name}" for ms, name in outer[:top]]
    return lines


_PHASES = """
import json, sys, time
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import magray.cli; mark("import magray.cli")
from magray.cli._context import AppContext
settings = AppContext().settings; mark("settings and logging (magray.common)")
from magray.router import EventKind, Router; mark("import magray.router")
router = Router(settings, use_memory=False)
router.registry; mark("tool registry (entry points, tool modules)")
tools = router.tool_schemas(); mark("tool schemas of the enabled tools")
router.decide("what is the staging database?"); mark("rule routing")
router.llm.check_keys(); mark("LLM client (import magray.llm)")
def sink(event):
    if event.kind is EventKind.TOKEN and marks[-1][0] != "first":
        mark("first")
router.ask("what is the staging database?", route="answer", on_event=sink)
marks[-1] = ("request to its first token (httpx, SSE)", marks[-1][1])
print(json.dumps([(n, 1000 * (t - marks[i][1])) for i, (n, t) in enumerate(marks[1:])]))
"""


def phases(api_base: str, runs: int) -> list[str]:
    """The steps of the cold direct path, each timed in ``runs`` fresh interpreters."""
    steps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as home:
        for _ in range(runs):
            proc = subprocess.run(
                [sys.executable, "-c", _PHASES],
                env=_env(api_base, home),
                capture_output=True,
                text=True,
                check=True,
            )
            for name, ms in json.loads(proc.stdout.splitlines()[-1]):
                steps.setdefault(name, []).append(ms)
    lines = [f"steps of the cold direct path (in-process, {runs} fresh interpreters):"]
    lines += [
        f"  min {min(v):6.1f} ms  p50 {statistics.median(v):6.1f} ms  {name}"
        for name, v in steps.items()
    ]
    total = sum(min(v) for v in steps.values())
    return [*lines, f"  sum of the minimums: {total:.0f} ms"]


def litellm_import(runs: int) -> list[float]:
    """Spawn → first stdout byte of `python -c "import litellm; print()"` (local cost map).

    Measured like the CLI (to the first byte, not to the exit: litellm's interpreter
    shutdown takes a further second that no user waits for).
    """
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    cmd = [sys.executable, "-c", "import litellm; print('ok', flush=True)"]
    _first_byte(cmd, env)  # warms the page cache; not counted
    return [_first_byte(cmd, env) for _ in range(runs)]


def warm_router(api_base: str, runs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as home:
        os.environ.update(_env(api_base, home))
        from magray.common.settings import load_settings
        from magray.router import EventKind, Router

        samples = []
        with Router(load_settings().settings) as router:
            router.remember("The bench fixture: magray answers from a loopback stub.")
            router.ask("warm up")
            for i in range(runs):
                marks: list[float] = []

                def sink(event: Any, marks: list[float] = marks) -> None:
                    if event.kind is EventKind.TOKEN and not marks:
                        marks.append(time.perf_counter())

                start = time.perf_counter()
                router.ask(f"question number {i} about the stub", on_event=sink)
                samples.append((marks[0] - start) * 1000)
    return samples


def row(name: str, samples: list[float]) -> str:
    return (
        f"| {name} | {statistics.median(samples):.0f} | {statistics.fmean(samples):.0f} | "
        f"{min(samples):.0f} | {max(samples):.0f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--importtime", type=int, default=0, metavar="N")
    parser.add_argument("--phases", type=int, default=0, metavar="N")
    args = parser.parse_args()
    from magray.llm.testing import LoopbackLLM, text

    pycache = tempfile.TemporaryDirectory()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = pycache.name
    with LoopbackLLM() as server:
        server.responder = lambda body: text("Hello from the stub, streamed in chunks.")
        cold = cold_cli(server.api_base, args.runs, memory=False)
        cold_mem = cold_cli(server.api_base, args.runs, memory=True)
        imports = litellm_import(args.runs)
        warm = warm_router(server.api_base, args.runs)
        summary = import_summary(server.api_base, args.importtime) if args.importtime else []
        if args.phases:
            summary += phases(server.api_base, args.phases)
    load = os.getloadavg()[0]
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load:.1f}, "
        f"Python {platform.python_version()}, {args.runs} runs each"
    )
    print("| path | p50 ms | mean ms | min ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    print(row("python -c pass (interpreter start-up)", cold["pass"] + cold_mem["pass"]))
    print(row("cold CLI, --no-memory, direct transport (as shipped)", cold["auto"]))
    print(row("cold CLI, --no-memory, litellm transport", cold["litellm"]))
    print(row("cold CLI, memory on, direct transport (as shipped)", cold_mem["auto"]))
    print(row("cold CLI, memory on, litellm transport", cold_mem["litellm"]))
    print(row("floor of the litellm path: python -c 'import litellm; print()'", imports))
    print(row("warm router: ask() → first token (memory on)", warm))
    bare = statistics.median(cold["pass"] + cold_mem["pass"])
    gap = statistics.median(cold["auto"]) - bare
    print(f"direct transport, --no-memory: first token {gap:.0f} ms after python -c pass (p50)")
    print(
        json.dumps(
            {"cold_ms": cold, "cold_memory_ms": cold_mem, "import_ms": imports, "warm_ms": warm}
        )
    )
    print("\n".join(summary))
    pycache.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
