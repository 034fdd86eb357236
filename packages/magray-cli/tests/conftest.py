"""Helpers for CLI tests: run `magray` in-process (CliRunner) or as the installed script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def magray_script() -> str:
    """Path of the installed console script next to this interpreter."""
    candidate = Path(sys.executable).parent / "magray"
    found = str(candidate) if candidate.exists() else shutil.which("magray")
    if not found:
        pytest.skip("the magray console script is not installed")
    return found


@pytest.fixture
def run_magray():
    """Run the installed `magray` in a subprocess with the test's MAGRAY_HOME."""

    def run(
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, **(env or {}))
        return subprocess.run(
            [magray_script(), *args],
            capture_output=True,
            text=True,
            input=input,
            env=full_env,
            timeout=timeout,
            check=False,
        )

    return run
