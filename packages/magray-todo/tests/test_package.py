"""The package installs, imports and exports what it promises."""

from __future__ import annotations

import importlib.metadata

import magray.todo


def test_version_matches_distribution() -> None:
    assert magray.todo.__version__ == importlib.metadata.version("magray-todo")


def test_all_names_exist() -> None:
    for name in magray.todo.__all__:
        assert hasattr(magray.todo, name), name
