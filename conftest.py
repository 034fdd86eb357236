"""Root pytest configuration shared by every package's tests.

Every test runs with ``MAGRAY_HOME`` pointing at its own temp dir and no
``MAGRAY_*`` variables leaking in from the developer's shell, so no test reads
or writes a real home directory, and with an empty process-wide metrics registry, so
what one test measured never shows up in another's ``magray status``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def magray_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """An isolated MAGRAY_HOME for each test (and, after it, litellm's cached HTTP clients
    closed, so no keep-alive socket outlives the test's loopback server)."""
    for key in list(os.environ):
        if key.startswith("MAGRAY_"):
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("magray-home")
    monkeypatch.setenv("MAGRAY_HOME", str(home))
    from magray.common.metrics import default_registry

    default_registry().reset()
    yield home
    if "litellm" in sys.modules and "magray.llm._backend" in sys.modules:
        from magray.llm.testing import close_litellm_clients

        close_litellm_clients()
