#!/usr/bin/env python3
"""Run every quality gate: ruff lint, ruff format check, mypy, import contracts, tests.

Usage::

    .venv/bin/python scripts/check.py            # all gates, default test selection
    .venv/bin/python scripts/check.py -- -k foo  # extra arguments go to pytest

Exits non-zero if any gate fails; all gates run even after a failure so that
one run shows everything that is wrong.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def main(argv: list[str]) -> int:
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    gates: list[tuple[str, list[str]]] = [
        ("ruff lint", [str(BIN / "ruff"), "check", "."]),
        ("ruff format", [str(BIN / "ruff"), "format", "--check", "."]),
        ("mypy", [str(BIN / "mypy"), *sorted(str(p) for p in ROOT.glob("packages/*/src"))]),
        ("import contracts", [str(BIN / "lint-imports")]),
        (
            "pytest",
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "--cov",
                "--cov-report=term",
                *pytest_args,
            ],
        ),
    ]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    failed: list[str] = []
    for name, cmd in gates:
        print(
            f"\n=== {name}: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}",
            flush=True,
        )
        start = time.monotonic()
        code = subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode
        took = time.monotonic() - start
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"=== {name}: {status} in {took:.1f}s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed gates: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("\nall gates passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
