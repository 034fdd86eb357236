"""The package installs, imports and exports what it promises."""

from __future__ import annotations

import importlib.metadata

import magray.memory


def test_version_matches_distribution() -> None:
    assert magray.memory.__version__ == importlib.metadata.version("magray-memory")


def test_all_names_exist() -> None:
    for name in magray.memory.__all__:
        assert hasattr(magray.memory, name), name
