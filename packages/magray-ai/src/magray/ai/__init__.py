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

from importlib.metadata import version as _version

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

__version__ = _version("magray-ai")

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
