"""Errors raised by magray-ai.

All are subclasses of the shared tree in :mod:`magray.common.errors`::

    MagrayError
    ├── NotFoundError
    │   └── ModelNotFoundError          a model name is unknown or its files are missing
    ├── ModelError
    │   ├── ModelVerificationError      hash mismatch, bad output shape, failed sanity check
    │   ├── InferenceError              ONNX Runtime failed on every provider
    │   ├── ProviderUnavailableError    an execution provider could not be initialised
    │   └── ConversionError             a safetensors folder could not be imported
    └── ConflictError
        └── ModelExistsError            a user model of that name already exists
"""

from __future__ import annotations

from magray.common.errors import ConflictError, ModelError, NotFoundError

__all__ = [
    "ConversionError",
    "InferenceError",
    "ModelExistsError",
    "ModelNotFoundError",
    "ModelVerificationError",
    "ProviderUnavailableError",
]


class ModelNotFoundError(NotFoundError):
    """A model is not in the registry, or its files are not installed."""

    code = "model.not_found"


class ModelVerificationError(ModelError):
    """A model's files or outputs failed verification."""

    code = "model.verification"


class InferenceError(ModelError):
    """Running a model failed on every available execution provider."""

    code = "model.inference"
    default_retriable = True


class ProviderUnavailableError(ModelError):
    """An execution provider is listed but could not be initialised."""

    code = "model.provider_unavailable"


class ConversionError(ModelError):
    """A model folder could not be converted to ONNX."""

    code = "model.conversion"


class ModelExistsError(ConflictError):
    """A user model with that name is already registered."""

    code = "model.exists"
