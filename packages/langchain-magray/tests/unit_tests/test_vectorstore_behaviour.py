"""MagrayVectorStore beyond the standard suite: constructors, scores, filters, MMR, pinning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_magray import MagrayRetriever, MagrayVectorStore
from magray.common.errors import InvalidInputError
from magray.memory import Layer, MemoryStore, ModelMismatchError


def _docs() -> list[Document]:
    return [
        Document(page_content=f"doc {i}", metadata={"n": i, "even": i % 2 == 0}, id=f"d{i}")
        for i in range(8)
    ]


def test_constructor_needs_exactly_one_location(tmp_path: Path) -> None:
    emb = DeterministicFakeEmbedding(size=8)
    with pytest.raises(InvalidInputError, match="exactly one"):
        MagrayVectorStore(embedding=emb)
    with pytest.raises(InvalidInputError, match="exactly one"):
        MagrayVectorStore(embedding=emb, path=tmp_path, dsn="postgresql://x/y")


def test_scores_filters_and_layers(tmp_path: Path) -> None:
    with MagrayVectorStore(embedding=DeterministicFakeEmbedding(size=8), path=tmp_path) as vs:
        vs.add_documents(_docs())
        top = vs.similarity_search_with_score("doc 3", k=3)
        assert top[0][0].id == "d3"
        assert top[0][1] == pytest.approx(1.0, abs=1e-5)
        assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
        rel = vs.similarity_search_with_relevance_scores("doc 3", k=1)
        assert rel[0][1] == pytest.approx(1.0, abs=1e-5)
        even = vs.similarity_search("doc 3", k=8, filter={"even": True})
        assert sorted(d.id or "" for d in even) == ["d0", "d2", "d4", "d6"]
        big = vs.similarity_search("doc 3", k=8, filter={"n": {"$gte": 5}})
        assert {d.metadata["n"] for d in big} == {5, 6, 7}
        assert vs.store.get("d1").layer == Layer.ASSETS  # never expires by default


def test_mmr_returns_diverse_existing_documents(tmp_path: Path) -> None:
    with MagrayVectorStore(embedding=DeterministicFakeEmbedding(size=8), path=tmp_path) as vs:
        vs.add_documents(_docs())
        picked = vs.max_marginal_relevance_search("doc 1", k=3, fetch_k=8)
        assert len(picked) == 3
        assert picked[0].id == "d1"
        assert len({d.id for d in picked}) == 3


def test_existing_store_and_model_pinning(tmp_path: Path) -> None:
    with MemoryStore.open(tmp_path, None, dim=8) as store:
        vs = MagrayVectorStore(store=store, embedding=DeterministicFakeEmbedding(size=8))
        ids = vs.add_texts(["one", "two"])
        assert [d.page_content for d in vs.get_by_ids(ids)] == ["one", "two"]
        vs.close()  # does not close a store it was given
        assert store.count() == 2
    other = tmp_path / "other"
    MagrayVectorStore(embedding=DeterministicFakeEmbedding(size=8), path=other).close()
    vs = MagrayVectorStore(embedding=DeterministicFakeEmbedding(size=16), path=other)
    with pytest.raises((ModelMismatchError, InvalidInputError)):
        vs.add_texts(["wrong dim"])
    vs.close()


def test_upsert_keeps_one_record_and_retriever_filters(tmp_path: Path) -> None:
    with MagrayVectorStore(embedding=DeterministicFakeEmbedding(size=8), path=tmp_path) as vs:
        vs.add_texts(["a", "b"], metadatas=[{"v": 1}, {"v": 1}], ids=["x", "y"])
        vs.add_texts(["a2"], metadatas=[{"v": 2}], ids=["x"])
        assert vs.store.count() == 2
        assert vs.get_by_ids(["x"])[0] == Document(id="x", page_content="a2", metadata={"v": 2})
        got = vs.store.get("x", with_vector=True).vector
        assert got is not None
        want = np.asarray(vs.embedding.embed_query("a2"), dtype=np.float32)
        assert np.allclose(got, want / np.linalg.norm(want), atol=1e-6)
        retriever = MagrayRetriever(vectorstore=vs, k=5, filter={"v": 1})
        assert [d.id for d in retriever.invoke("b")] == ["y"]
        assert vs.as_retriever(search_kwargs={"k": 1}).invoke("b")[0].id == "y"


def test_metadata_must_be_json(tmp_path: Path) -> None:
    with (
        MagrayVectorStore(embedding=DeterministicFakeEmbedding(size=8), path=tmp_path) as vs,
        pytest.raises(InvalidInputError, match="JSON"),
    ):
        vs.add_texts(["x"], metadatas=[{"when": object()}])
