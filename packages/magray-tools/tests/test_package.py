"""The package installs, imports and exports what it promises."""

from __future__ import annotations

import importlib.metadata

import magray.tools


def test_version_matches_distribution() -> None:
    assert magray.tools.__version__ == importlib.metadata.version("magray-tools")


def test_all_names_exist() -> None:
    for name in magray.tools.__all__:
        assert hasattr(magray.tools, name), name
