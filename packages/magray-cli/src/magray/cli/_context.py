"""The object every command receives: global options and lazily loaded settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from magray.common.settings import LoadedSettings, Settings

__all__ = ["AppContext", "json_option", "pass_app"]


@dataclass
class AppContext:
    """Global CLI state. Settings load (and logging is configured) on first use."""

    json: bool = False
    debug: bool = False
    log_format: str | None = None
    config_path: Path | None = None
    _loaded: LoadedSettings | None = field(default=None, repr=False)

    @property
    def loaded(self) -> LoadedSettings:
        """Settings with their sources; configures logging the first time."""
        if self._loaded is None:
            from magray.common.log import configure_logging
            from magray.common.settings import load_settings

            if self.config_path is not None:
                os.environ["MAGRAY_CONFIG"] = str(self.config_path)
            self._loaded = load_settings(self.config_path)
            log = self._loaded.settings.logging
            configure_logging(
                level="DEBUG" if self.debug else log.level,
                fmt=self.log_format or log.format,
                file=log.file,
                file_level=log.file_level,
            )
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    def reset(self) -> None:
        """Forget loaded settings (after ``config set``)."""
        self._loaded = None


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.ensure_object(AppContext).json = True
    return value


def json_option(func: Any) -> Any:
    """``--json`` on a command: same as the global ``magray --json``."""
    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_json,
        help="Print machine-readable JSON.",
    )(func)
