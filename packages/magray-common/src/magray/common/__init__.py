"""magray-common: the foundation every magray package builds on.

Light modules (errors, paths, fs, health, metrics) are imported here; the
pydantic-backed settings and structlog-backed logging load on first access, so
``import magray.common.errors`` stays cheap for the CLI's start-up.
"""

from __future__ import annotations

from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

from magray.common import fs, paths
from magray.common.errors import (
    ConfigError,
    ConflictError,
    DependencyMissingError,
    InvalidInputError,
    LLMError,
    MagrayError,
    ModelError,
    NotFoundError,
    OperationTimeoutError,
    PermissionDeniedError,
    StorageError,
    ToolError,
)
from magray.common.health import HealthRegistry, HealthReport, HealthResult, Status
from magray.common.metrics import MetricsRegistry, default_registry

if TYPE_CHECKING:
    from magray.common.log import configure_logging, get_logger, operation
    from magray.common.settings import LoadedSettings, Settings, load_settings

__version__ = _version("magray-common")

__all__ = [
    "__version__",
    # errors
    "ConfigError",
    "ConflictError",
    "DependencyMissingError",
    "InvalidInputError",
    "LLMError",
    "MagrayError",
    "ModelError",
    "NotFoundError",
    "OperationTimeoutError",
    "PermissionDeniedError",
    "StorageError",
    "ToolError",
    # settings (lazy)
    "LoadedSettings",
    "Settings",
    "load_settings",
    # logging (lazy)
    "configure_logging",
    "get_logger",
    "operation",
    # health and metrics
    "HealthRegistry",
    "HealthReport",
    "HealthResult",
    "MetricsRegistry",
    "Status",
    "default_registry",
    # modules
    "fs",
    "paths",
]

_LAZY = {
    "LoadedSettings": "magray.common.settings",
    "Settings": "magray.common.settings",
    "load_settings": "magray.common.settings",
    "configure_logging": "magray.common.log",
    "get_logger": "magray.common.log",
    "operation": "magray.common.log",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'magray.common' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
