"""The package installs, imports and exports what it promises."""

from __future__ import annotations

import importlib.metadata

import magray.llm


def test_version_matches_distribution() -> None:
    assert magray.llm.__version__ == importlib.metadata.version("magray-llm")


def test_all_names_exist() -> None:
    for name in magray.llm.__all__:
        assert hasattr(magray.llm, name), name
