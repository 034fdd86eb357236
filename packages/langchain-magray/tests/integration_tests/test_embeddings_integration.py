"""LangChain's standard Embeddings integration suite on magray-ai's real local model."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_magray import MagrayEmbeddings

pytest.importorskip("magray.ai", reason="MagrayEmbeddings needs magray-ai (langchain-magray[ai])")


class TestMagrayEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[MagrayEmbeddings]:
        return MagrayEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, str]:
        return {"model": "default"}
