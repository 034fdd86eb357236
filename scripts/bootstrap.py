#!/usr/bin/env python3
"""Create ``.venv`` and install every magray package into it, editable: the zero-install path.

Usage::

    python3 scripts/bootstrap.py          # the packages (what `magray` needs)
    python3 scripts/bootstrap.py --dev    # plus test extras, the example plugin and the dev tools

It needs only Python 3.11+ and pip, and reads what to install from the root
pyproject.toml: the members of hatch's default environment
(``[tool.hatch.envs.default] workspace.members``) and the ``dev`` dependency group.
With hatch installed, ``hatch shell`` / ``hatch run check`` build the same
environment from the same list; this script is the way without hatch.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def requirements(*, dev: bool) -> list[str]:
    """pip arguments: ``-e member[features]`` per workspace member (+ ``--group dev``)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members = config["tool"]["hatch"]["envs"]["default"]["workspace"]["members"]
    args: list[str] = []
    for member in members:
        path, features = (member, []) if isinstance(member, str) else (
            member["path"], member.get("features", [])
        )  # fmt: skip
        if not dev and not path.startswith("packages/"):
            continue  # examples are for the test suite
        extras = f"[{','.join(features)}]" if dev and features else ""
        args += ["-e", f"{ROOT / path}{extras}"]
    if dev:
        args += ["--group", f"{ROOT / 'pyproject.toml'}:dev"]
    return args


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="also install the dev tools")
    parser.add_argument("--venv", default=str(ROOT / ".venv"), help="where to create the venv")
    args = parser.parse_args()

    if sys.version_info < (3, 11):  # noqa: UP036  (run by any python3 on PATH)
        print("magray needs Python 3.11 or newer", file=sys.stderr)
        return 2

    env_dir = Path(args.venv)
    python = env_dir / "bin" / "python"
    if not python.exists():
        print(f"creating {env_dir}")
        venv.EnvBuilder(with_pip=True).create(env_dir)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    # pip 25.1 reads dependency groups (--group); PEP 660 editables of namespace packages.
    subprocess.run([*pip, "install", "-q", "--upgrade", "pip>=25.1"], check=True)
    print("installing the magray packages", "+ dev tools" if args.dev else "", flush=True)
    subprocess.run([*pip, "install", "-q", *requirements(dev=args.dev)], check=True)
    print(f"done: {env_dir / 'bin' / 'magray'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
