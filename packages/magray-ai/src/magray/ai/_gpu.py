"""``magray gpu``: which execution providers exist, and CPU vs GPU throughput when one does."""

from __future__ import annotations

import time
from typing import Any

from magray.ai._providers import CPU, GPU_PROVIDERS, available_providers, select_providers

__all__ = ["benchmark_providers", "gpu_info"]


def gpu_info(*, force_cpu: bool = False, preferred: list[str] | None = None) -> dict[str, Any]:
    """ONNX Runtime build, available providers, what magray would use, device details.

    Args:
        force_cpu: Select only the CPU (pass ``AISettings.force_cpu``).
        preferred: Preferred providers, best first (``AISettings.providers``).
    """
    import onnxruntime as ort

    available = available_providers()
    gpu = [p for p in available if p in GPU_PROVIDERS]
    info: dict[str, Any] = {
        "onnxruntime": ort.__version__,
        "build_device": ort.get_device(),
        "available_providers": available,
        "gpu_providers": gpu,
        "selected": select_providers(force_cpu=force_cpu, preferred=preferred or []),
        "gpu_available": bool(gpu),
    }
    info["devices"] = _devices()
    return info


def _devices() -> list[dict[str, Any]]:
    import onnxruntime as ort

    getter = getattr(ort, "get_ep_devices", None)
    if getter is None:
        return []
    devices = []
    try:
        for dev in getter():
            hw = dev.device
            devices.append(
                {
                    "provider": dev.ep_name,
                    "type": str(getattr(hw, "type", "")).rsplit(".", 1)[-1],
                    "vendor": getattr(hw, "vendor", ""),
                }
            )
    except Exception:  # device enumeration is informational only
        return []
    return devices


def benchmark_providers(
    *, model: str = "default", sentences: int = 256, batch_size: int = 32
) -> dict[str, Any]:
    """Throughput (sentences/s) of the CPU and of every available GPU provider.

    Returns ``{"gpu_available": False, ...}`` with only the CPU figure when no
    GPU provider exists; nothing is simulated.
    """
    from magray.ai._embedder import Embedder
    from magray.ai._registry import ModelRegistry

    resolved = ModelRegistry().resolve(model)
    texts = [
        f"benchmark sentence {i}: the quick brown fox jumps over {i % 17} lazy dogs"
        for i in range(sentences)
    ]
    gpu = [p for p in available_providers() if p in GPU_PROVIDERS]
    results: dict[str, Any] = {"model": resolved.card.name, "sentences": sentences, "runs": {}}
    for provider in [CPU, *gpu]:
        try:
            embedder = Embedder(
                resolved, providers=[provider], batch_size=batch_size, cache_entries=0
            )
            embedder.embed(texts[:batch_size])  # warm-up (session creation, arena)
            start = time.perf_counter()
            embedder.embed(texts)
            seconds = time.perf_counter() - start
            used = [n for n, s in embedder.manager.stats().items() if s["calls"]]
            results["runs"][provider] = {
                "sentences_per_s": round(sentences / seconds, 1),
                "answered_by": used,
            }
        except Exception as exc:
            results["runs"][provider] = {"error": f"{type(exc).__name__}: {exc}"}
    results["gpu_available"] = bool(gpu)
    return results
