"""The package installs, imports and exports what it promises."""

from __future__ import annotations

import importlib.metadata

import magray.ai


def test_version_matches_distribution() -> None:
    assert magray.ai.__version__ == importlib.metadata.version("magray-ai")


def test_all_names_exist() -> None:
    for name in magray.ai.__all__:
        assert hasattr(magray.ai, name), name


def test_lazy_exports_cover_all() -> None:
    """Every public name has a home in the lazy table, and every home exports its name."""
    assert set(magray.ai._EXPORTS) | {"__version__"} == set(magray.ai.__all__)
    assert set(dir(magray.ai)) >= set(magray.ai.__all__)
