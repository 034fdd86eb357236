"""Shared pieces of the end-to-end tests.

The loopback OpenAI-compatible server and the e2e helpers live in
packages/magray-router/tests (the router's own tests use them too). They are
loaded here once, under stable module names, so each test module can simply
``import magray_router_loopback as loopback`` / ``import magray_router_e2ekit as kit``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

_KIT = Path(__file__).resolve().parents[1] / "packages" / "magray-router" / "tests"


def _load(name: str, file: str) -> Any:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _KIT / file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_load("magray_router_loopback", "loopback.py")
_load("magray_router_e2ekit", "e2ekit.py")
