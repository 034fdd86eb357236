#!/usr/bin/env python3
"""Prove each package installs alone, with only its declared dependencies.

For every package under packages/: build all wheels into a temp wheelhouse with
scripts/build_wheels.py (so sibling magray packages resolve from it, everything
else from the package index), create an empty venv, ``pip install`` the one
package, import it, and (with --tests) run its own tests there, from outside
the repository so nothing is imported from the source tree. Prints one line per
package; exits 1 if any package fails.

Usage::

    python3 scripts/check_isolated_install.py                       # every package
    python3 scripts/check_isolated_install.py magray-memory         # one
    python3 scripts/check_isolated_install.py --tests magray-common magray-todo
    python3 scripts/check_isolated_install.py magray-todo --tests   # its tests too
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tomllib
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_wheels import ROOT, build_all, package_dirs, uv_bin

TEST_TOOLS = ["pytest>=8.2", "pytest-timeout>=2.3", "hypothesis>=6.100"]


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)


def module_of(name: str) -> str:
    """``magray-memory`` -> ``magray.memory``, ``langchain-magray`` -> ``langchain_magray``."""
    if name.startswith("magray-"):
        return "magray." + name.removeprefix("magray-")
    return name.replace("-", "_")


def check_one(name: str, wheelhouse: Path, env_dir: Path, *, tests: bool) -> tuple[str, list[str]]:
    """Install ``name`` alone into a new venv, import it, maybe run its tests.

    With uv installed, uv makes the venv and installs into it (its cache links files
    instead of unpacking wheels: minutes become seconds); else venv and pip do.
    """
    py = str(env_dir / "bin" / "python")
    uv = uv_bin()
    if uv:
        run([uv, "venv", "-q", "--python", sys.executable, str(env_dir)]).check_returncode()
        install = [uv, "pip", "install", "-q", "--python", py, "--find-links", str(wheelhouse)]
    else:
        venv.EnvBuilder(with_pip=True).create(env_dir)
        install = [py, "-m", "pip", "install", "-q", "--find-links", str(wheelhouse)]
    module = module_of(name)
    steps = [
        [*install, name],
        [py, "-c", f"import {module}; print({module}.__version__)"],
    ]
    if tests:
        # The package's own `test` extra (if any) plus the runner and its plugins.
        extras = "[test]" if _declares_test_extra(name) else ""
        steps.append([*install, f"{name}{extras}", *TEST_TOOLS])
        steps.append(
            [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
             "-c", str(ROOT / "pyproject.toml"),
             # the root config names plugins' options (pytest-asyncio) a slim venv lacks
             "-W", "ignore::pytest.PytestConfigWarning",
             str(ROOT / "packages" / name / "tests")]
        )  # fmt: skip
    for step in steps:
        proc = run(step, cwd=env_dir)  # not the repo: imports must come from the venv
        if proc.returncode:
            return "FAILED", (proc.stdout + proc.stderr).strip().splitlines()[-5:]
    return "ok", []


def _declares_test_extra(name: str) -> bool:
    project = tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())["project"]
    return "test" in project.get("optional-dependencies", {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help="package names (default: all)")
    parser.add_argument(
        "--tests",
        nargs="*",
        metavar="PKG",
        default=None,
        help="also run these packages' own tests in their venv (no name: every package checked)",
    )
    parser.add_argument(
        "--wheelhouse", type=Path, default=None, help="use these built wheels (default: build now)"
    )
    args = parser.parse_args(argv)
    names = args.packages or [p.name for p in package_dirs()]
    with_tests = set(names if args.tests == [] else args.tests or [])

    total = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="magray-isolated-") as tmp:
        wheelhouse = args.wheelhouse
        if wheelhouse is None:
            wheelhouse = Path(tmp) / "wheels"
            build_all(wheelhouse, package_dirs(), sdist=False)  # every sibling must resolve
        failed = 0
        for name in names:
            start = time.monotonic()
            status, detail = check_one(name, wheelhouse, Path(tmp) / name, tests=name in with_tests)
            failed += status != "ok"
            what = "install+import+tests" if name in with_tests else "install+import"
            print(f"{name:18} {status:7} {time.monotonic() - start:6.1f}s  {what}", flush=True)
            for line in detail:
                print(f"    {line}", flush=True)
    print(
        f"\n{len(names) - failed}/{len(names)} packages install and import alone "
        f"({time.monotonic() - total:.0f}s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
