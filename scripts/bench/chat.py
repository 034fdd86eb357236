#!/usr/bin/env python3
"""First-token time of `magray chat` against a local stub LLM server (127.0.0.1).

Usage::

    .venv/bin/python scripts/bench/chat.py [--runs 5]

Figures, side by side in one run:

- **cold CLI, memory off**: from spawning `magray chat --no-memory "..."` to the
  first byte of the streamed answer on its stdout (interpreter, imports including
  litellm, settings, routing, the HTTP request, the first SSE chunk);
- **cold CLI, memory on**: the same with memory as context (a store holding a few
  records: open it, embed the question with the default embedder, search), the
  path a user gets by default;
- each cold figure twice, interleaved run by run: as shipped (sequential: litellm
  is imported at the first LLM call) and overlapped (the same CLI with
  ``Router.warm_up()`` called as the router opens, so litellm imports in a
  background thread during routing and memory retrieval), so the gain of the
  overlap is measured under the same machine load;
- **import litellm**: a bare interpreter importing litellm: the floor a cold
  one-shot cannot go below while it needs litellm;
- **warm router**: an in-process :class:`magray.router.Router` that has already
  answered once, from ``ask()`` to its first ``token`` event (routing plus one
  streamed request), with memory context on (a real embedder and store).

The stub is the loopback server of the router's tests; it answers at once, so
the numbers are magray's own overhead, not a model's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _loopback() -> Any:
    path = ROOT / "packages" / "magray-router" / "tests" / "loopback.py"
    spec = importlib.util.spec_from_file_location("magray_router_loopback", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _env(api_base: str, home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGRAY_")}
    env.update(
        {
            "MAGRAY_HOME": home,
            "MAGRAY_LLM__MODEL": "openai/bench-model",
            "MAGRAY_LLM__API_BASE": api_base,
            "OPENAI_API_KEY": "sk-bench",
        }
    )
    return env


_FACTS = [
    "The bench fixture: magray answers from a loopback stub.",
    "The staging database is called orca and runs PostgreSQL 16.",
    "Release notes are written on the Friday before a release.",
]


_OVERLAP = (
    "import sys; from magray.router import Router\n"
    "def enter(self):\n    self.warm_up()\n    return self\n"
    "Router.__enter__ = enter\n"
    "from magray.cli import main; sys.argv[0] = 'magray'; sys.exit(main())"
)


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


def cold_cli(api_base: str, runs: int, *, memory: bool) -> dict[str, list[float]]:
    """Cold one-shot runs as shipped (sequential) and with the overlap, interleaved so
    that the load of a shared machine hits both alike."""
    script = str(Path(sys.executable).parent / "magray")
    samples: dict[str, list[float]] = {"overlap": [], "sequential": []}
    with tempfile.TemporaryDirectory() as home:
        env = _env(api_base, home)
        if memory:
            for fact in _FACTS:
                subprocess.run(
                    [script, "memory", "add", fact], env=env, check=True, capture_output=True
                )
        args = ["chat", "--plain", "what is the staging database?"]
        if not memory:
            args.insert(1, "--no-memory")
        _first_byte([script, *args], env)  # warms the page cache; not counted
        for _ in range(runs):
            samples["sequential"].append(_first_byte([script, *args], env))
            samples["overlap"].append(_first_byte([sys.executable, "-c", _OVERLAP, *args], env))
    return samples


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
    args = parser.parse_args()
    loopback = _loopback()
    with loopback.LoopbackLLM() as server:
        server.responder = lambda body: loopback.text("Hello from the stub, streamed in chunks.")
        cold = cold_cli(server.api_base, args.runs, memory=False)
        cold_mem = cold_cli(server.api_base, args.runs, memory=True)
        imports = litellm_import(args.runs)
        warm = warm_router(server.api_base, args.runs)
    load = os.getloadavg()[0]
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load:.1f}, "
        f"Python {platform.python_version()}, {args.runs} runs each"
    )
    print("| path | p50 ms | mean ms | min ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    print(row("cold CLI, memory on, sequential (as shipped)", cold_mem["sequential"]))
    print(row("cold CLI, memory on, litellm import overlapped", cold_mem["overlap"]))
    print(row("cold CLI, --no-memory, sequential (as shipped)", cold["sequential"]))
    print(row("cold CLI, --no-memory, overlapped", cold["overlap"]))
    print(row("floor: python -c 'import litellm; print()'", imports))
    print(row("warm router: ask() → first token (memory on)", warm))
    print(
        json.dumps(
            {"cold_ms": cold, "cold_memory_ms": cold_mem, "import_ms": imports, "warm_ms": warm}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
