"""Entry-point embedders and rerankers, and the real default embedder end to end."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import structlog

from magray.common.errors import DependencyMissingError
from magray.memory import MemoryStore, split_passages
from memtestkit import Clock, HashingEmbedder


class WordOverlapReranker:
    """Scores by the share of query words found in the text (a real, tiny reranker)."""

    def rerank(self, query: str, texts: Sequence[str]) -> np.ndarray:
        words = set(query.lower().split())
        return np.array([len(words & set(t.lower().split())) / max(1, len(words)) for t in texts])


def _patch_group(monkeypatch: pytest.MonkeyPatch, group: str, eps: list[object]) -> None:
    real = importlib.metadata.entry_points

    def fake(**kwargs: object) -> object:
        if kwargs.get("group") == group:
            name = kwargs.get("name")
            return importlib.metadata.EntryPoints(
                [ep for ep in eps if name is None or ep.name == name]  # type: ignore[attr-defined]
            )
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


class _EP:
    def __init__(self, name: str, factory: object) -> None:
        self.name = name
        self.value = f"tests:{name}"
        self._factory = factory

    def load(self) -> object:
        return self._factory


def test_named_embedder_from_entry_point(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _patch_group(monkeypatch, "magray.embedders", [_EP("hashing", HashingEmbedder)])
    with MemoryStore.open(tmp_path / "s", "hashing") as store:
        assert store.model_id == "test-hashing-64"
        store.add(["entry point embedder"])
        with pytest.raises(DependencyMissingError, match="no embedder named 'other'"):
            MemoryStore.open(tmp_path / "t", "other")


def test_rerank_reorders_candidates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _patch_group(monkeypatch, "magray.rerankers", [_EP("default", WordOverlapReranker)])
    with MemoryStore.open(tmp_path / "s", HashingEmbedder(), clock=Clock()) as store:
        store.add(["apples and pears", "pears", "bananas only", "apples pears plums"])
        hits = store.search("apples pears plums", k=2, rerank=True)
        assert hits[0].text == "apples pears plums"
        assert hits[0].score == 1.0
        assert len(hits) == 2


def test_rerank_without_reranker_warns_and_returns_plain_hits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _patch_group(monkeypatch, "magray.rerankers", [])
    with MemoryStore.open(tmp_path / "s", HashingEmbedder(), clock=Clock()) as store:
        store.add(["one", "two", "three"])
        plain = store.search("two", k=2)
        with structlog.testing.capture_logs() as logs:
            reranked = store.search("two", k=2, rerank=True)
        assert [h.id for h in reranked] == [h.id for h in plain]
        assert any(e["log_level"] == "warning" and "rerank skipped" in e["event"] for e in logs)


def test_split_passages() -> None:
    text = "First paragraph.\n\nSecond one is here. It has two sentences.\n\n" + "x" * 250
    parts = split_passages(text, max_chars=100)
    assert parts[0].startswith("First paragraph.\n\nSecond one")
    assert all(len(p) <= 100 for p in parts)
    assert "".join(p for p in parts if p.startswith("x")) == "x" * 250
    assert split_passages("   \n\n  ") == []


def _default_installed() -> bool:
    return any(
        True for _ in importlib.metadata.entry_points(group="magray.embedders", name="default")
    )


@pytest.mark.skipif(
    not _default_installed(),
    reason="magray-ai's 'default' embedder entry point is not installed "
    '(pip install "magray-memory[ai]")',
)
def test_real_default_embedder_end_to_end(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path / "s", "default", clock=Clock()) as store:
        assert store.dim > 0
        store.add(
            [
                "The cat sleeps on the warm windowsill.",
                "Quarterly revenue grew by eight percent.",
                "Use asyncio.gather to run coroutines concurrently.",
            ],
            [{"k": "pets"}, {"k": "finance"}, {"k": "code"}],
        )
        hits = store.search("how do I run several coroutines at once in python", k=1)
        assert hits[0].metadata == {"k": "code"}
        hits = store.search("kitten napping", k=1)
        assert hits[0].metadata == {"k": "pets"}
    with MemoryStore.open(tmp_path / "s", "default", clock=Clock()) as store:
        assert store.model_matches
        assert store.count() == 3


def test_rerank_with_the_installed_reranker_entry_point(tmp_path: Path) -> None:
    """Whatever magray-ai's `default` reranker does (rerank, or report that no model is
    installed), search(rerank=True) returns k hits and never crashes."""
    with MemoryStore.open(tmp_path / "s", HashingEmbedder(), clock=Clock()) as store:
        store.add(["alpha beta", "beta gamma", "gamma delta", "delta epsilon"])
        with structlog.testing.capture_logs() as logs:
            hits = store.search("beta gamma", k=2, rerank=True)
        assert len(hits) == 2
        reranked = not any("rerank skipped" in e["event"] for e in logs)
        if not reranked:
            assert hits[0].text == "beta gamma"  # similarity order kept
