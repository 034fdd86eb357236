"""The root :class:`Settings` and how it is loaded from defaults, TOML and env.

Precedence, lowest first: defaults < ``config.toml`` < ``MAGRAY_*`` env vars.
Nested keys use ``__`` in env vars: ``MAGRAY_MEMORY__BACKEND=postgres`` sets
``memory.backend``. :func:`load_settings` remembers where each value came
from, so ``magray config show`` can say so and errors can name the source.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from magray.common import paths
from magray.common.errors import ConfigError
from magray.common.settings._ai import AISettings
from magray.common.settings._llm import LLMSettings
from magray.common.settings._logging import LoggingSettings
from magray.common.settings._memory import MemorySettings
from magray.common.settings._router import RouterSettings
from magray.common.settings._todo import TodoSettings
from magray.common.settings._tools import ToolsSettings

__all__ = [
    "ENV_PREFIX",
    "LoadedSettings",
    "Settings",
    "load_settings",
    "missing_config_error",
    "read_config_file",
]

ENV_PREFIX = "MAGRAY_"
# Env vars with the prefix that configure paths, not settings fields.
_NON_FIELD_ENV = {"MAGRAY_HOME", "MAGRAY_CONFIG"}


class Settings(BaseSettings):
    """All magray settings, one section per package.

    Build it with :func:`load_settings` (which reads ``config.toml``); calling
    ``Settings()`` directly gives defaults overridden by env vars only.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    ai: AISettings = Field(default_factory=AISettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    todo: TodoSettings = Field(default_factory=TodoSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # First wins: env vars override the config file, which arrives as init kwargs.
        return (env_settings, init_settings)


class LoadedSettings:
    """Settings plus where every value came from.

    Attributes:
        settings: The validated settings.
        config_path: The config file that was considered (it may not exist).
        file_data: The raw TOML table that was read (empty if no file).
    """

    def __init__(
        self,
        settings: Settings,
        config_path: Path,
        file_data: dict[str, Any],
        env_keys: dict[str, str],
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.file_data = file_data
        self._env_keys = env_keys

    def source_of(self, key: str) -> str:
        """``"env:MAGRAY_X__Y"``, ``"file:/path/config.toml"`` or ``"default"`` for a dotted key."""
        return _source_of(key, self.file_data, self._env_keys, self.config_path)

    def flat(self) -> dict[str, Any]:
        """Every setting as ``{"section.key": value}`` (secrets masked)."""
        return flatten(self.settings)


def read_config_file(path: Path, *, required: bool = False) -> dict[str, Any]:
    """Parse a TOML config file; a missing file is an empty config unless ``required``.

    Raises:
        ConfigError: The file exists but cannot be read or is not valid TOML
            (``config.unreadable``), or it is ``required`` and does not exist
            (``config.missing``).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise missing_config_error(path) from None
        return {}
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror or exc}",
            hint="check the file's permissions, or point MAGRAY_CONFIG / --config elsewhere",
            code="config.unreadable",
            details={"path": str(path)},
        ) from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"config file {path} is not valid TOML: {exc}",
            hint="fix the syntax, or run `magray config init --force` to start over",
            code="config.unreadable",
            details={"path": str(path)},
        ) from exc


def missing_config_error(path: Path) -> ConfigError:
    """The error for a config file named by ``--config``/``MAGRAY_CONFIG`` that does not exist."""
    return ConfigError(
        f"config file {path} does not exist",
        hint=f"check the path given with --config or MAGRAY_CONFIG, or create it with "
        f"`magray --config {path} config init`",
        code="config.missing",
        details={"path": str(path)},
    )


def load_settings(config_path: Path | None = None) -> LoadedSettings:
    """Load settings: defaults < TOML file < ``MAGRAY_*`` env vars.

    Args:
        config_path: The TOML file. Without it, ``MAGRAY_CONFIG`` or the
            default ``config.toml`` (:func:`magray.common.paths.config_file`).
            A file named explicitly (here or by ``MAGRAY_CONFIG``) must exist;
            the default file is optional.

    Raises:
        ConfigError: The file is missing although named explicitly, unreadable,
            or a value is invalid. The message names the key, the offending
            value and where it came from.
    """
    explicit = config_path is not None or paths.config_file_is_explicit()
    path = Path(config_path) if config_path is not None else paths.config_file()
    file_data = read_config_file(path, required=explicit)
    env_keys = _env_keys(os.environ)
    try:
        settings = Settings(**file_data)
    except PydanticValidationError as exc:
        raise _config_error(exc, file_data, env_keys, path) from None
    return LoadedSettings(settings, path, file_data, env_keys)


def _env_keys(environ: Mapping[str, str]) -> dict[str, str]:
    """Map dotted setting keys to the env var that sets them."""
    out: dict[str, str] = {}
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in _NON_FIELD_ENV:
            continue
        dotted = upper[len(ENV_PREFIX) :].lower().replace("__", ".")
        out[dotted] = name
    return out


def _source_of(key: str, file_data: dict[str, Any], env_keys: dict[str, str], path: Path) -> str:
    parts = key.split(".")
    for i in range(len(parts), 0, -1):  # MAGRAY_MEMORY='{"backend": ...}' sets a whole section
        env = env_keys.get(".".join(parts[:i]))
        if env is not None:
            return f"env:{env}"
    node: Any = file_data
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return "default"
        node = node[part]
    return f"file:{path}"


def _config_error(
    exc: PydanticValidationError,
    file_data: dict[str, Any],
    env_keys: dict[str, str],
    path: Path,
) -> ConfigError:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        source = _source_of(key, file_data, env_keys, path)
        value = err.get("input")
        shown = "(missing)" if err["type"] == "missing" else repr(value)
        if err["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown setting (from {source})")
        else:
            problems.append(f"{key} = {shown} (from {source}): {err['msg']}")
    first = problems[0]
    more = f" (+{len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
    return ConfigError(
        f"invalid setting {first}{more}",
        hint="fix it with `magray config set KEY VALUE`, in the file, or unset the env var; "
        "`magray config show` lists every key",
        code="config.invalid",
        details={"problems": problems, "config_file": str(path)},
    )


def flatten(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Flatten a settings model to ``{"a.b": value}`` with secrets shown as ``"***"``."""
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            out.update(flatten(value, f"{key}."))
        elif isinstance(value, SecretStr):
            out[key] = "***" if value.get_secret_value() else ""
        elif isinstance(value, Path):
            out[key] = str(value)
        elif isinstance(value, list):
            out[key] = [str(v) if isinstance(v, Path) else v for v in value]
        else:
            out[key] = value
    return out
