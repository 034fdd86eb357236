#!/usr/bin/env python3
"""Build a wheel and an sdist of every magray package into one folder (a wheelhouse).

Usage::

    python3 scripts/build_wheels.py DIR                     # every package under packages/
    python3 scripts/build_wheels.py DIR magray-memory ...   # only these
    python3 scripts/build_wheels.py DIR --wheel-only        # skip the sdists (faster)

Each package is built with ``python -m build`` (PyPA's build frontend) and its own
hatchling backend, so what lands in DIR is what PyPI would get. Then, in any venv::

    pip install --find-links DIR magray-memory

installs that package and its magray dependencies from DIR, everything else from the
package index. If the running Python has no ``build`` module, a throwaway venv with
``build`` from the package index is made for the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"


def package_dirs(names: list[str] | None = None) -> list[Path]:
    """The package folders (each has a pyproject.toml), all or the ``names`` given."""
    found = sorted(p for p in PACKAGES.iterdir() if (p / "pyproject.toml").is_file())
    if not names:
        return found
    by_name = {p.name: p for p in found}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown package(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[n] for n in names]


def build_all(
    outdir: Path, packages: list[Path], *, sdist: bool = True, python: str | None = None
) -> list[Path]:
    """Build ``packages`` into ``outdir`` and return the files written.

    Raises:
        subprocess.CalledProcessError: A package failed to build (its output was printed).
    """
    outdir.mkdir(parents=True, exist_ok=True)
    before = set(outdir.iterdir())
    with tempfile.TemporaryDirectory(prefix="magray-build-") as tmp:
        python = python or _python_with_build(Path(tmp))
        kinds = ["--sdist", "--wheel"] if sdist else ["--wheel"]
        # uv makes build's isolated environments (hatchling) in milliseconds instead of seconds.
        uv = uv_bin()
        installer = ["--installer", "uv"] if uv else []
        env = dict(os.environ)
        if uv:  # build looks for uv on PATH when its own venv has no `uv` module
            env["PATH"] = os.pathsep.join([str(Path(uv).parent), env.get("PATH", "")])
        for package in packages:
            start = time.monotonic()
            cmd = [python, "-m", "build", *kinds, *installer, "--outdir", str(outdir), str(package)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            if proc.returncode:
                print(proc.stdout[-4000:], proc.stderr[-4000:], file=sys.stderr)
                proc.check_returncode()
            print(f"built {package.name:18} {time.monotonic() - start:5.1f}s", flush=True)
    return sorted(set(outdir.iterdir()) - before)


def uv_bin() -> str | None:
    """The ``uv`` executable if installed (the dev tools include it), else ``None``."""
    import shutil

    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _python_with_build(tmp: Path) -> str:
    """This interpreter if it can ``import build``, else a temp venv's with build installed."""
    if importlib.util.find_spec("build") is not None:
        return sys.executable
    env_dir = tmp / "build-env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "build>=1.2"], check=True)
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder for the wheels and sdists")
    parser.add_argument("packages", nargs="*", help="package folder names (default: all)")
    parser.add_argument("--wheel-only", action="store_true", help="build no sdists")
    args = parser.parse_args(argv)
    start = time.monotonic()
    written = build_all(
        args.outdir.resolve(), package_dirs(args.packages), sdist=not args.wheel_only
    )
    print(f"{len(written)} files in {args.outdir} ({time.monotonic() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
