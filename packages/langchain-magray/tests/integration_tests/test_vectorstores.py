"""LangChain's standard VectorStore suite, on both magray backends (no test overridden)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from langchain_magray import MagrayVectorStore


class TestMagrayVectorStoreLocal(VectorStoreIntegrationTests):
    """Local backend: SQLite + faiss in a temp directory."""

    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:
        store = MagrayVectorStore(embedding=self.get_embeddings(), path=tmp_path / "store")
        yield store
        store.close()


@pytest.mark.postgres
class TestMagrayVectorStorePostgres(VectorStoreIntegrationTests):
    """postgres backend: PostgreSQL 16 + pgvector started from pgserver."""

    @pytest.fixture
    def vectorstore(self, pg_dsn: str) -> Iterator[VectorStore]:
        store = MagrayVectorStore(embedding=self.get_embeddings(), dsn=pg_dsn)
        yield store
        store.close()
