"""The public surface of magray.common."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import magray.common


def test_all_names_resolve() -> None:
    for name in magray.common.__all__:
        assert getattr(magray.common, name) is not None, name
    assert magray.common.__version__ == importlib.metadata.version("magray-common")


def test_importing_errors_is_light() -> None:
    code = (
        "import sys, magray.common.errors; "
        "print(any(m.startswith(('pydantic', 'structlog')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
