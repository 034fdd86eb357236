"""Provider selection, circuit breaker and GPU→CPU fallback (injected clock, failing provider)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from magray.ai import (
    CPU,
    BreakerState,
    CircuitBreaker,
    Embedder,
    FallbackManager,
    ModelRegistry,
    select_providers,
)
from magray.ai._embedder import build_backends
from magray.ai._providers import SessionConfig
from magray.ai.errors import InferenceError
from magray.common.metrics import MetricsRegistry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FailingGPU:
    """Stands in for a GPU provider that errors (CI has no GPU)."""

    name = "CUDAExecutionProvider"

    def __init__(self) -> None:
        self.calls = 0
        self.fail = True

    def run(self, feeds):
        self.calls += 1
        if self.fail:
            raise RuntimeError("CUDA error: out of memory")
        raise AssertionError("healthy fake GPU is never asked to compute here")


class Echo:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def run(self, feeds):
        self.calls += 1
        return [self.name]


def test_breaker_transitions_with_injected_clock() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=30, clock=clock)
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_success()  # resets the consecutive count
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 29.9
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one probe at a time
    breaker.record_failure()  # probe failed: open again, cooldown restarts
    assert breaker.state is BreakerState.OPEN
    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.transitions == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


def test_manager_falls_back_and_stops_calling_open_provider() -> None:
    clock = FakeClock()
    gpu, cpu = FailingGPU(), Echo(CPU)
    metrics = MetricsRegistry()
    manager = FallbackManager(
        [gpu, cpu], failure_threshold=2, cooldown_s=10, clock=clock, metrics=metrics
    )
    for _ in range(5):
        assert manager.run({}) == ([CPU], CPU)
    assert gpu.calls == 2  # the circuit opened after two failures
    stats = manager.stats()
    assert stats["CUDAExecutionProvider"]["failures"] == 2
    assert stats["CUDAExecutionProvider"]["fallbacks"] == 2
    assert stats["CUDAExecutionProvider"]["skipped_open_circuit"] == 3
    assert stats["CUDAExecutionProvider"]["circuit"] == "open"
    assert stats[CPU]["calls"] == 5
    snapshot = metrics.snapshot()["counters"]
    assert snapshot["ai.provider.fallbacks{provider=CUDAExecutionProvider}"] == 2
    clock.now += 10  # half-open: one probe reaches the GPU again
    manager.run({})
    assert gpu.calls == 3


def test_manager_recovers_after_successful_probe() -> None:
    clock = FakeClock()
    flaky = Echo("CUDAExecutionProvider")
    original = flaky.run
    broken = {"on": True}

    def run(feeds):
        if broken["on"]:
            raise RuntimeError("device lost")
        return original(feeds)

    flaky.run = run  # type: ignore[method-assign]
    manager = FallbackManager([flaky, Echo(CPU)], failure_threshold=1, cooldown_s=5, clock=clock)
    assert manager.run({})[1] == CPU
    broken["on"] = False
    assert manager.run({})[1] == CPU  # still open
    clock.now += 5
    assert manager.run({})[1] == "CUDAExecutionProvider"  # probe succeeded
    assert manager.breakers["CUDAExecutionProvider"].state is BreakerState.CLOSED


def test_timeout_counts_as_failure_and_falls_back() -> None:
    release = threading.Event()

    class Hanging:
        name = "TensorrtExecutionProvider"

        def run(self, feeds):
            release.wait(5)
            return ["late"]

    manager = FallbackManager([Hanging(), Echo(CPU)], timeout_s=0.01)
    try:
        assert manager.run({}) == ([CPU], CPU)
        assert manager.stats()["TensorrtExecutionProvider"]["timeouts"] == 1
    finally:
        release.set()
        manager.close()


def test_all_failing_raises_inference_error() -> None:
    manager = FallbackManager([FailingGPU()])
    with pytest.raises(InferenceError) as info:
        manager.run({})
    assert info.value.hint


def test_real_model_forced_gpu_failure_falls_back_to_real_cpu(tmp_path) -> None:
    registry = ModelRegistry(models_dir=tmp_path)
    resolved = registry.resolve("minilm-l3")
    gpu = FailingGPU()
    cpu_backends = build_backends(resolved, providers=[CPU], config=SessionConfig())
    clock = FakeClock()
    embedder = Embedder(
        resolved, backends=[gpu, *cpu_backends], failure_threshold=2, clock=clock, cache_entries=0
    )
    reference = Embedder(resolved, force_cpu=True, cache_entries=0)
    texts = ["fallback keeps working", "the GPU is broken"]
    for _ in range(3):
        np.testing.assert_allclose(embedder.embed(texts), reference.embed(texts), atol=1e-6)
    assert gpu.calls == 2
    assert embedder.stats()["providers"]["CUDAExecutionProvider"]["circuit"] == "open"


def test_select_providers() -> None:
    offered = ["AzureExecutionProvider", "CUDAExecutionProvider", CPU]
    assert select_providers(available=offered) == ["CUDAExecutionProvider", CPU]
    assert select_providers(available=offered, force_cpu=True) == [CPU]
    assert select_providers(available=[CPU]) == [CPU]
    assert select_providers(available=offered, preferred=["DmlExecutionProvider"]) == [CPU]


def test_select_providers_does_not_read_the_environment(monkeypatch) -> None:
    """force_cpu comes from AISettings only; the library never reads MAGRAY_AI__FORCE_CPU."""
    monkeypatch.setenv("MAGRAY_AI__FORCE_CPU", "1")
    offered = ["CUDAExecutionProvider", CPU]
    assert select_providers(available=offered) == ["CUDAExecutionProvider", CPU]
    assert select_providers(available=offered, force_cpu=True) == [CPU]


def test_settings_without_force_cpu_degrade_to_cpu(tmp_path, offer_cuda) -> None:
    """Settings → providers → a CUDA session onnxruntime cannot create → the real CPU."""
    import warnings

    from magray.common.settings import AISettings

    embedder = Embedder.from_settings(AISettings(models_dir=tmp_path), model="minilm-l3")
    assert embedder.manager.provider_names == ["CUDAExecutionProvider", CPU]
    reference = Embedder.from_settings(
        AISettings(models_dir=tmp_path, force_cpu=True), model="minilm-l3"
    )
    assert reference.manager.provider_names == [CPU]
    texts = ["the GPU path degrades", "to the CPU"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # onnxruntime's "not available" notice
        vectors = embedder.embed(texts)
    np.testing.assert_allclose(vectors, reference.embed(texts), atol=1e-6)
    stats = embedder.stats()["providers"]
    assert stats["CUDAExecutionProvider"]["failures"] == 1
    assert stats[CPU]["calls"] == 1


def test_provider_onnxruntime_cannot_initialise_falls_back(tmp_path) -> None:
    """A provider ORT silently drops is a failure, not CPU work labelled as GPU."""
    import warnings

    resolved = ModelRegistry(models_dir=tmp_path).resolve("minilm-l3")
    backends = build_backends(
        resolved, providers=["CUDAExecutionProvider", CPU], config=SessionConfig()
    )
    embedder = Embedder(resolved, backends=backends, cache_entries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # onnxruntime's "not available" notice
        vectors = embedder.embed(["still works on the CPU"])
    assert vectors.shape == (1, 384)
    stats = embedder.stats()["providers"]
    assert stats["CUDAExecutionProvider"]["failures"] == 1
    assert stats[CPU]["calls"] == 1
