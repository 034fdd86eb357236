"""magray settings: defaults < ``config.toml`` < ``MAGRAY_*`` env vars.

Example::

    from magray.common.settings import load_settings

    loaded = load_settings()              # reads $MAGRAY_HOME/config.toml if present
    loaded.settings.memory.backend        # "local"
    loaded.source_of("memory.backend")    # "default" | "file:..." | "env:MAGRAY_MEMORY__BACKEND"
"""

from magray.common.settings._ai import AISettings
from magray.common.settings._llm import LLMSettings
from magray.common.settings._loader import (
    ENV_PREFIX,
    LoadedSettings,
    Settings,
    flatten,
    load_settings,
    missing_config_error,
    read_config_file,
)
from magray.common.settings._logging import LoggingSettings
from magray.common.settings._memory import MemorySettings
from magray.common.settings._router import RouterSettings
from magray.common.settings._todo import TodoSettings
from magray.common.settings._tools import ToolsSettings

__all__ = [
    # loading
    "ENV_PREFIX",
    "LoadedSettings",
    "Settings",
    "flatten",
    "load_settings",
    "missing_config_error",
    "read_config_file",
    # sections
    "AISettings",
    "LLMSettings",
    "LoggingSettings",
    "MemorySettings",
    "RouterSettings",
    "TodoSettings",
    "ToolsSettings",
]
