"""The package installs, imports and exports what it promises."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import magray.todo


def test_version_matches_distribution() -> None:
    assert magray.todo.__version__ == importlib.metadata.version("magray-todo")


def test_all_names_exist() -> None:
    for name in magray.todo.__all__:
        assert hasattr(magray.todo, name), name


def test_exported_members() -> None:
    assert {
        "TodoStore",
        "TaskGraph",
        "Executor",
        "AsyncExecutor",
        "Status",
        "Task",
        "Action",
        "CycleError",
        "InvalidTransitionError",
    } <= set(magray.todo.__all__)


def test_import_does_not_load_networkx() -> None:
    code = "import sys, magray.todo; print('networkx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
