"""magray-ai.

offline ONNX embeddings, tokenization, model registry, CPU/GPU fallback, reranking and
quantization for magray.
"""

from __future__ import annotations

from importlib.metadata import version as _version

__version__ = _version("magray-ai")

__all__ = ["__version__"]
