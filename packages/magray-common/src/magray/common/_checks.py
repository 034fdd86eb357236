"""magray-common's own health checks (registered through ``magray.health``)."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from magray.common import paths
from magray.common.health import HealthRegistry, HealthResult

__all__ = ["register"]


def register(registry: HealthRegistry, settings: Any) -> None:
    """Add the config, data-directory and Python checks."""
    registry.register("common.python", _python)
    registry.register("common.config", _config)
    registry.register("common.data_dir", _data_dir)


def _python() -> HealthResult:
    version = ".".join(map(str, sys.version_info[:3]))
    return HealthResult.ok(f"Python {version}", executable=sys.executable)


def _config() -> HealthResult:
    from magray.common.errors import ConfigError
    from magray.common.settings import load_settings

    path = paths.config_file()
    try:
        load_settings()  # MAGRAY_CONFIG, when set, must name an existing file
    except ConfigError as exc:
        return HealthResult.failed(exc.message, path=str(path))
    if not path.exists():
        return HealthResult.ok("no config file; using defaults", path=str(path))
    return HealthResult.ok("config file valid", path=str(path))


def _data_dir() -> HealthResult:
    directory = paths.data_dir()
    try:
        paths.ensure_dir(directory)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".health-"):
            pass
    except OSError as exc:
        return HealthResult.failed(f"data directory not writable: {exc}", path=str(directory))
    mode = os.stat(directory).st_mode & 0o777
    if mode & 0o077:
        return HealthResult.degraded(
            f"data directory is readable by others (mode {mode:o}); run chmod 700",
            path=str(directory),
        )
    return HealthResult.ok("writable", path=str(directory))
