"""The dependency edges of DESIGN.md §2 are enforced, not just written down.

The import-linter contracts live in the root pyproject.toml. This test copies
the source trees to a temp dir, plants a forbidden import
(magray.memory -> magray.cli) and shows `lint-imports` fails on it, then that
the untouched copy passes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        pytest.skip("import-linter is not installed")
    env = dict(os.environ, PYTHONPATH=str(src))
    return subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def _copy_sources(dest: Path) -> Path:
    src = dest / "src"
    for package in sorted((ROOT / "packages").glob("magray-*/src/magray")):
        shutil.copytree(package, src / "magray", dirs_exist_ok=True)
    return src


def test_planted_forbidden_import_fails_the_contract(tmp_path: Path) -> None:
    src = _copy_sources(tmp_path)
    clean = _lint(src, tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (src / "magray" / "memory" / "_planted.py").write_text("import magray.cli\n")
    broken = _lint(src, tmp_path)
    assert broken.returncode != 0
    assert "BROKEN" in broken.stdout
    assert "magray.memory._planted -> magray.cli" in broken.stdout


def test_libraries_may_not_import_click(tmp_path: Path) -> None:
    src = _copy_sources(tmp_path)
    (src / "magray" / "todo" / "_planted.py").write_text("import click\n")
    broken = _lint(src, tmp_path)
    assert broken.returncode != 0
    assert "magray.todo._planted -> click" in broken.stdout


def test_no_namespace_init_anywhere() -> None:
    assert not list((ROOT / "packages").glob("*/src/magray/__init__.py"))
    for package in (ROOT / "packages").glob("magray-*"):
        name = package.name.removeprefix("magray-")
        assert (package / "src" / "magray" / name / "py.typed").exists(), package
        assert (package / "README.md").exists(), package
        assert (package / "tests").is_dir(), package
