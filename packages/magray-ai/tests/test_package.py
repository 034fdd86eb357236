"""The package installs, imports and exports what it promises."""

from __future__ import annotations

import importlib.metadata

import magray.ai


def test_version_matches_distribution() -> None:
    assert magray.ai.__version__ == importlib.metadata.version("magray-ai")


def test_all_names_exist() -> None:
    for name in magray.ai.__all__:
        assert hasattr(magray.ai, name), name
