"""Model order: as configured, or by measured latency (multi-provider chains)."""

from __future__ import annotations

from magray.common.metrics import MetricsRegistry
from magray.common.settings import Settings
from magray.router import Router
from magray.router._wiring import model_stats, order_models


def _observe(metrics: MetricsRegistry, model: str, latency: float, ok: int, failed: int) -> None:
    for _ in range(ok):
        metrics.histogram("llm.latency_ms", model=model).observe(latency)
        metrics.counter("llm.calls", model=model, outcome="ok").inc()
    if failed:
        metrics.counter("llm.calls", model=model, outcome="llm.server").inc(failed)


def test_order_models_puts_fast_healthy_models_first() -> None:
    stats = {
        "slow": {"p50": 900.0, "calls": 5.0, "errors": 0.0},
        "fast": {"p50": 80.0, "calls": 5.0, "errors": 0.0},
        "broken": {"p50": 10.0, "calls": 6.0, "errors": 5.0},
    }
    chain = ["broken", "unknown", "slow", "fast"]
    assert order_models(chain, stats) == ["fast", "slow", "unknown", "broken"]
    assert order_models(chain, {}) == chain


def test_latency_order_builds_the_client_chain_from_metrics() -> None:
    metrics = MetricsRegistry()
    _observe(metrics, "openai/a", 700.0, ok=4, failed=0)
    _observe(metrics, "openai/b", 90.0, ok=4, failed=0)
    stats = model_stats(metrics)
    assert stats["openai/b"]["p50"] == 90.0
    assert stats["openai/a"]["calls"] == 4.0
    settings = Settings(
        llm={"model": "openai/a", "fallbacks": ["openai/b"]},
        router={"model_order": "latency"},
    )
    with Router(settings, use_memory=False, metrics=metrics) as router:
        assert router.llm.models == ["openai/b", "openai/a"]
    configured = Settings(llm={"model": "openai/a", "fallbacks": ["openai/b"]})
    with Router(configured, use_memory=False, metrics=metrics) as router:
        assert router.llm.models == ["openai/a", "openai/b"]


def test_latency_order_maps_to_the_routers_latency_strategy_and_groups() -> None:
    metrics = MetricsRegistry()
    # "fast" has two deployments; its best measured one beats the plain "openai/a"
    _observe(metrics, "openai/a", 400.0, ok=4, failed=0)
    _observe(metrics, "openai/x@127.0.0.1:1", 900.0, ok=3, failed=0)
    _observe(metrics, "openai/x@127.0.0.1:2", 50.0, ok=3, failed=0)
    llm = {
        "model": "openai/a",
        "fallbacks": ["fast"],
        "deployments": [
            {"name": "fast", "model": "openai/x", "api_base": "http://127.0.0.1:1/v1"},
            {"name": "fast", "model": "openai/x", "api_base": "http://127.0.0.1:2/v1"},
        ],
    }
    settings = Settings(llm=llm, router={"model_order": "latency"})
    with Router(settings, use_memory=False, metrics=metrics) as router:
        assert router.llm.models == ["fast", "openai/a"]
        assert router.llm.routing_strategy == "latency-based-routing"
    explicit = Settings(
        llm={**llm, "routing_strategy": "cost-based-routing"}, router={"model_order": "latency"}
    )
    with Router(explicit, use_memory=False, metrics=metrics) as router:
        assert router.llm.routing_strategy == "cost-based-routing"
    with Router(Settings(llm=llm), use_memory=False, metrics=metrics) as router:
        assert router.llm.models == ["openai/a", "fast"]
        assert router.llm.routing_strategy == "simple-shuffle"
