"""LangChain's standard Embeddings unit suite."""

from __future__ import annotations

from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_magray import MagrayEmbeddings


class TestMagrayEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[MagrayEmbeddings]:
        return MagrayEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, str]:
        return {"model": "default"}
