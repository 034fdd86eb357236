"""magray-ai: offline sentence embeddings and reranking with ONNX Runtime.

Models come from installed Python packages or user folders (never the network);
inference runs on the best execution provider with a CPU fallback guarded by a
circuit breaker.

Example::

    from magray.ai import Embedder

    embedder = Embedder()                      # the default built-in model
    vectors = embedder.embed(["a cat", "a kitten"])
    float(vectors[0] @ vectors[1])             # cosine similarity
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from magray.ai._cache import EmbeddingCache
    from magray.ai._embedder import Embedder
    from magray.ai._eval import load_eval_set, rank_metrics
    from magray.ai._fallback import BreakerState, CircuitBreaker, FallbackManager
    from magray.ai._gpu import benchmark_providers, gpu_info
    from magray.ai._importer import import_folder, import_onnx_folder
    from magray.ai._plugins import create_embedder, create_reranker
    from magray.ai._providers import (
        CPU,
        GPU_PROVIDERS,
        OrtBackend,
        SessionConfig,
        available_providers,
        select_providers,
    )
    from magray.ai._quantize import compare_models, quantize_model
    from magray.ai._registry import (
        BUILTIN_MODELS,
        DEFAULT_EMBEDDING_MODEL,
        ModelCard,
        ModelRegistry,
        ResolvedModel,
    )
    from magray.ai._reranker import Reranker
    from magray.ai._verify import verify_model

#: Where each public name lives. Names are imported on first access (PEP 562), so
#: ``import magray.ai`` costs nothing and ``from magray.ai import ModelRegistry``
#: does not import numpy or onnxruntime.
_EXPORTS = {
    "EmbeddingCache": "_cache",
    "Embedder": "_embedder",
    "load_eval_set": "_eval",
    "rank_metrics": "_eval",
    "BreakerState": "_fallback",
    "CircuitBreaker": "_fallback",
    "FallbackManager": "_fallback",
    "benchmark_providers": "_gpu",
    "gpu_info": "_gpu",
    "import_folder": "_importer",
    "import_onnx_folder": "_importer",
    "create_embedder": "_plugins",
    "create_reranker": "_plugins",
    "CPU": "_providers",
    "GPU_PROVIDERS": "_providers",
    "OrtBackend": "_providers",
    "SessionConfig": "_providers",
    "available_providers": "_providers",
    "select_providers": "_providers",
    "compare_models": "_quantize",
    "quantize_model": "_quantize",
    "BUILTIN_MODELS": "_registry",
    "DEFAULT_EMBEDDING_MODEL": "_registry",
    "ModelCard": "_registry",
    "ModelRegistry": "_registry",
    "ResolvedModel": "_registry",
    "Reranker": "_reranker",
    "verify_model": "_verify",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        value: Any = version("magray-ai")
    elif name in _EXPORTS:
        from importlib import import_module

        value = getattr(import_module(f"magray.ai.{_EXPORTS[name]}"), name)
    else:
        raise AttributeError(f"module 'magray.ai' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "__version__",
    # embedding and reranking
    "Embedder",
    "EmbeddingCache",
    "Reranker",
    "create_embedder",
    "create_reranker",
    # model registry
    "BUILTIN_MODELS",
    "DEFAULT_EMBEDDING_MODEL",
    "ModelCard",
    "ModelRegistry",
    "ResolvedModel",
    # execution providers and fallback
    "CPU",
    "GPU_PROVIDERS",
    "BreakerState",
    "CircuitBreaker",
    "FallbackManager",
    "OrtBackend",
    "SessionConfig",
    "available_providers",
    "select_providers",
    "gpu_info",
    "benchmark_providers",
    # model tools: verify, import, quantize, evaluate
    "verify_model",
    "import_folder",
    "import_onnx_folder",
    "quantize_model",
    "compare_models",
    "load_eval_set",
    "rank_metrics",
]
