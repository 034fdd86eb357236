#!/usr/bin/env python3
"""Start-up time of `magray --help` beside `python -c pass`, in the same run.

Usage::

    .venv/bin/python scripts/bench/startup.py [--runs 30]

The target (issue #3): `magray --help` under 150 ms. The baseline row shows how
much of that is the interpreter itself on this machine.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def measure(cmd: list[str], runs: int) -> list[float]:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the page cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    magray = Path(sys.executable).parent / "magray"
    script = str(magray) if magray.exists() else shutil.which("magray")
    if not script:
        print("magray is not installed in this environment", file=sys.stderr)
        return 1
    rows = [
        ("python -c pass", measure([sys.executable, "-c", "pass"], args.runs)),
        ("python -c 'import click'", measure([sys.executable, "-c", "import click"], args.runs)),
        ("magray --help", measure([script, "--help"], args.runs)),
        ("magray --version", measure([script, "--version"], args.runs)),
    ]
    print(
        f"# start-up, {args.runs} runs each, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print("| command | p50 ms | mean ms | min ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, s in rows:
        print(
            f"| {name} | {statistics.median(s):.1f} | {statistics.fmean(s):.1f} | "
            f"{min(s):.1f} | {max(s):.1f} |"
        )
    help_p50 = statistics.median(rows[2][1])
    print(
        f"\nmagray --help p50 {help_p50:.1f} ms: target < 150 ms "
        f"{'MET' if help_p50 < 150 else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
