#!/usr/bin/env python3
"""Prove each package installs alone, with only its declared dependencies.

For every package under packages/: build all wheels into a temp wheelhouse
(so sibling magray packages resolve without PyPI), create an empty venv,
``pip install`` the one package, import it, and (with --tests) run its own
tests there. Prints a table; exits 1 if any package fails.

Usage::

    python3 scripts/check_isolated_install.py [--tests] [magray-memory ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help="distribution names (default: all)")
    parser.add_argument("--tests", action="store_true", help="also run the package's own tests")
    args = parser.parse_args()
    names = args.packages or sorted(p.name for p in (ROOT / "packages").iterdir() if p.is_dir())

    with tempfile.TemporaryDirectory(prefix="magray-isolated-") as tmp:
        wheelhouse = Path(tmp) / "wheels"
        build = run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "-w",
                str(wheelhouse),
                *[str(p) for p in sorted((ROOT / "packages").iterdir()) if p.is_dir()],
            ]
        )
        if build.returncode:
            print(build.stdout, build.stderr)
            return 1
        results = []
        for name in names:
            start = time.monotonic()
            env_dir = Path(tmp) / name
            venv.EnvBuilder(with_pip=True).create(env_dir)
            py = str(env_dir / "bin" / "python")
            module = (
                "magray." + name.removeprefix("magray-")
                if name.startswith("magray-")
                else name.replace("-", "_")
            )
            steps = [
                [py, "-m", "pip", "install", "-q", "--find-links", str(wheelhouse), name],
                [py, "-c", f"import {module}; print({module}.__version__)"],
            ]
            if args.tests:
                test_deps = ["pytest", "pytest-timeout", "hypothesis"]
                steps.append([py, "-m", "pip", "install", "-q", *test_deps])
                steps.append(
                    [
                        py,
                        "-m",
                        "pytest",
                        "-q",
                        "-p",
                        "no:cacheprovider",
                        "--rootdir",
                        str(ROOT),
                        "-c",
                        str(ROOT / "pyproject.toml"),
                        str(ROOT / "packages" / name / "tests"),
                    ]
                )
            status, detail = "ok", ""
            for step in steps:
                proc = run(step)
                if proc.returncode:
                    status, detail = "FAILED", (proc.stdout + proc.stderr).strip().splitlines()[-3:]
                    break
            results.append((name, status, time.monotonic() - start, detail))
            print(
                f"{name:16} {status:7} {time.monotonic() - start:6.1f}s {detail or ''}", flush=True
            )
    failed = [r for r in results if r[1] != "ok"]
    print(f"\n{len(results) - len(failed)}/{len(results)} packages install and import alone")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
