#!/usr/bin/env python3
"""First-token time of `magray chat` against a local stub LLM server (127.0.0.1).

Usage::

    .venv/bin/python scripts/bench/chat.py [--runs 5]

Two figures, side by side in one run:

- **cold CLI**: from spawning `magray chat --no-memory "..."` to the first byte of
  the streamed answer on its stdout (interpreter, imports including litellm,
  settings, routing, the HTTP request, the first SSE chunk);
- **import litellm**: a bare interpreter importing litellm, for scale;
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


def cold_cli(api_base: str, runs: int) -> list[float]:
    script = str(Path(sys.executable).parent / "magray")
    samples = []
    with tempfile.TemporaryDirectory() as home:
        env = _env(api_base, home)
        for _ in range(runs + 1):  # the first run warms the page cache and is dropped
            start = time.perf_counter()
            proc = subprocess.Popen(
                [script, "chat", "--no-memory", "--plain", "hello"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                env=env,
            )
            assert proc.stdout is not None
            select.select([proc.stdout], [], [], 120)
            first = time.perf_counter()
            proc.stdout.read()
            proc.wait()
            samples.append((first - start) * 1000)
    return samples[1:]


def litellm_import(runs: int) -> list[float]:
    """The share of the cold path that is `import litellm` alone (local cost map)."""
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import litellm"], env=env, check=True, capture_output=True
        )
        samples.append((time.perf_counter() - start) * 1000)
    return samples


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
        cold = cold_cli(server.api_base, args.runs)
        imports = litellm_import(args.runs)
        warm = warm_router(server.api_base, args.runs)
    load = os.getloadavg()[0]
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load:.1f}, "
        f"Python {platform.python_version()}, {args.runs} runs each"
    )
    print("| path | p50 ms | mean ms | min ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    print(row("cold CLI: spawn → first answer byte", cold))
    print(row("of which: python -c 'import litellm'", imports))
    print(row("warm router: ask() → first token (memory on)", warm))
    print(json.dumps({"cold_ms": cold, "warm_ms": warm}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
