"""magray-ai's health checks, loaded through the ``magray.health`` entry point."""

from __future__ import annotations

from magray.common.health import HealthRegistry, Status
from magray.common.settings import Settings


def test_checks_register_and_pass() -> None:
    registry = HealthRegistry()
    errors = registry.load_entry_points(Settings())
    assert errors == []
    names = [n for n in registry.names() if n.startswith("ai.")]
    assert names == ["ai.embedding_model", "ai.providers", "ai.reranker"]
    report = registry.run(names)
    by_name = {c.name: c for c in report.checks}
    assert by_name["ai.embedding_model"].status is Status.OK
    assert by_name["ai.embedding_model"].details["sha256_pinned"] is True
    assert "CPUExecutionProvider" in by_name["ai.providers"].details["selected"]


def test_missing_configured_reranker_fails(monkeypatch) -> None:
    monkeypatch.setenv("MAGRAY_AI__RERANKER", "no-such-cross-encoder")
    from magray.common.settings import load_settings

    registry = HealthRegistry()
    registry.load_entry_points(load_settings().settings)
    (check,) = registry.run(["ai.reranker"]).checks
    assert check.status is Status.FAILED
    assert "no-such-cross-encoder" in check.message


def test_provider_check_degrades_after_fallbacks() -> None:
    from magray.ai import CPU, FallbackManager
    from magray.common.metrics import default_registry

    class Broken:
        name = "CUDAExecutionProvider"

        def run(self, feeds):
            raise RuntimeError("device lost")

    class Cpu:
        name = CPU

        def run(self, feeds):
            return ["ok"]

    default_registry().reset()
    try:
        FallbackManager([Broken(), Cpu()]).run({})
        registry = HealthRegistry()
        registry.load_entry_points(Settings())
        (check,) = registry.run(["ai.providers"]).checks
        assert check.status is Status.DEGRADED
        assert "fell back" in check.message
        assert check.details["stats"]["ai.provider.fallbacks{provider=CUDAExecutionProvider}"] == 1
    finally:
        default_registry().reset()
