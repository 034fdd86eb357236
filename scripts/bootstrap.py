#!/usr/bin/env python3
"""Create ``.venv`` and install every magray package into it, editable.

Usage::

    python3 scripts/bootstrap.py          # the packages (what `magray` needs)
    python3 scripts/bootstrap.py --dev    # plus the dev tools from [dependency-groups].dev

It uses only the standard library and plain ``pip``, so it works on a fresh
machine with Python 3.11+ and whatever package index pip is configured for.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
        venv.EnvBuilder(with_pip=True, upgrade_deps=False).create(env_dir)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    # A recent pip understands PEP 660 editables and namespace packages well.
    subprocess.run([*pip, "install", "-q", "--upgrade", "pip>=24"], check=True)

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    workspace = config["tool"]["magray"]["workspace"]
    members = workspace["members"]
    cmd = [*pip, "install", "-q"]
    for member in members:
        extras = _extras(ROOT / member, workspace.get("dev-extras", {}).get(member, []))
        cmd += ["-e", f"{ROOT / member}{extras if args.dev else ''}"]
    if args.dev:
        for example in workspace.get("examples", []):
            cmd += ["-e", str(ROOT / example)]
        cmd += config["dependency-groups"]["dev"]
    print("installing", ", ".join(Path(m).name for m in members), "+ dev tools" if args.dev else "")
    subprocess.run(cmd, check=True)
    print(f"done: {env_dir / 'bin' / 'magray'}")
    return 0


def _extras(member: Path, wanted: list[str]) -> str:
    """``[a,b]``: the member's ``test`` extra if it declares one, plus ``wanted``."""
    project = tomllib.loads((member / "pyproject.toml").read_text()).get("project", {})
    declared = project.get("optional-dependencies", {})
    extras = [e for e in ("test", *wanted) if e in declared]
    return f"[{','.join(extras)}]" if extras else ""


if __name__ == "__main__":
    raise SystemExit(main())
