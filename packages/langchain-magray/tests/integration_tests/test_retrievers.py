"""LangChain's standard retriever suite over a local magray store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_magray import MagrayRetriever, MagrayVectorStore


class TestMagrayRetriever(RetrieversIntegrationTests):
    _store: MagrayVectorStore

    @pytest.fixture(autouse=True)
    def _corpus(self, tmp_path: Path) -> Any:
        store = MagrayVectorStore(embedding=DeterministicFakeEmbedding(size=16), path=tmp_path)
        store.add_texts([f"note number {i} about magray memory" for i in range(6)])
        self._store = store
        yield
        store.close()

    @property
    def retriever_constructor(self) -> type[MagrayRetriever]:
        return MagrayRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"vectorstore": self._store}

    @property
    def retriever_query_example(self) -> str:
        return "what is magray memory"
