"""The package installs, imports and exports what it promises."""

from __future__ import annotations

import importlib.metadata

import magray.router


def test_version_matches_distribution() -> None:
    assert magray.router.__version__ == importlib.metadata.version("magray-router")


def test_all_names_exist() -> None:
    for name in magray.router.__all__:
        assert hasattr(magray.router, name), name
