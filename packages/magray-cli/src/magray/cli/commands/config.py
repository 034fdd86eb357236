"""``magray config show|get|set|unset|path|init``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from magray.cli._complete import complete_config_keys
from magray.cli._context import AppContext, json_option, pass_app

if TYPE_CHECKING:
    from magray.common.settings import LoadedSettings


@click.group()
def config() -> None:
    """Show, get and set settings (defaults < config.toml < MAGRAY_* env)."""


def _config_path(app: AppContext) -> Path:
    from magray.common import paths

    return app.config_path or paths.config_file()


@config.command("path")
@json_option
@pass_app
def config_path(app: AppContext) -> None:
    """Print the config file's path."""
    path = _config_path(app)
    if app.json:
        from magray.cli._output import emit_json

        emit_json({"path": str(path), "exists": path.exists()})
    else:
        click.echo(str(path))


@config.command("show")
@click.option("--section", default=None, help="Only this section (e.g. memory).")
@json_option
@pass_app
def config_show(app: AppContext, section: str | None) -> None:
    """Show every setting with the source it came from."""
    from magray.cli._output import emit_json, print_table

    loaded = app.loaded
    rows = [
        (key, value, loaded.source_of(key))
        for key, value in loaded.flat().items()
        if section is None or key.startswith(f"{section}.")
    ]
    if section is not None and not rows:
        from magray.common.errors import NotFoundError

        raise NotFoundError(f"no settings section {section!r}", hint=_sections_hint(loaded))
    if app.json:
        emit_json({key: {"value": value, "source": source} for key, value, source in rows})
        return
    print_table(["key", "value", "source"], [(k, _show(v), s) for k, v, s in rows])


@config.command("get")
@click.argument("key", shell_complete=complete_config_keys)
@json_option
@pass_app
def config_get(app: AppContext, key: str) -> None:
    """Print one setting's value and where it came from."""
    loaded = app.loaded
    flat = loaded.flat()
    _require_key(key, flat)
    value, source = flat[key], loaded.source_of(key)
    if app.json:
        from magray.cli._output import emit_json

        emit_json({"key": key, "value": value, "source": source})
    else:
        click.echo(f"{key} = {_show(value)}  ({source})")


# ignore_unknown_options: `config set memory.hnsw_m -5` is a value, not an option.
@config.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key", shell_complete=complete_config_keys)
@click.argument("value")
@json_option
@pass_app
def config_set(app: AppContext, key: str, value: str) -> None:
    """Set KEY to VALUE in the config file (validated, written atomically).

    VALUE is read as TOML when it parses (42, -5, true, ["a", "b"]), else as a
    string; a VALUE starting with "-" is a value, not an option.
    """
    from magray.common.errors import ConfigError
    from magray.common.settings import read_config_file

    path = _config_path(app)
    data = read_config_file(path)
    section, _, name = key.partition(".")
    _require_key(key, _defaults_flat())
    parsed = _parse_value(value)
    data.setdefault(section, {})
    if not isinstance(data[section], dict):
        raise ConfigError(f"[{section}] in {path} is not a table", code="config.invalid")
    data[section][name] = parsed
    _validate_and_write(app, path, data)
    if app.json:
        from magray.cli._output import emit_json

        emit_json({"key": key, "value": parsed, "path": str(path)})
    else:
        click.echo(f"{key} = {_show(parsed)}  (written to {path})")
        env = f"MAGRAY_{section.upper()}__{name.upper()}"
        import os

        if env in os.environ:
            click.echo(f"note: {env} is set and overrides the file", err=True)


@config.command("unset")
@click.argument("key", shell_complete=complete_config_keys)
@json_option
@pass_app
def config_unset(app: AppContext, key: str) -> None:
    """Remove KEY from the config file (it falls back to its default)."""
    from magray.common.settings import read_config_file

    path = _config_path(app)
    data = read_config_file(path)
    section, _, name = key.partition(".")
    _require_key(key, _defaults_flat())
    removed = isinstance(data.get(section), dict) and data[section].pop(name, None) is not None
    if removed:
        if not data[section]:
            del data[section]
        _validate_and_write(app, path, data)
    if app.json:
        from magray.cli._output import emit_json

        emit_json({"key": key, "removed": removed, "path": str(path)})
    else:
        click.echo(f"{key} removed from {path}" if removed else f"{key} was not set in {path}")


@config.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@json_option
@pass_app
def config_init(app: AppContext, force: bool) -> None:
    """Write a config file listing every setting (commented out) with its default."""
    from magray.common.errors import ConflictError
    from magray.common.fs import atomic_write_text

    path = _config_path(app)
    if path.exists() and not force:
        raise ConflictError(
            f"{path} already exists", hint="use --force to overwrite it", code="config.exists"
        )
    atomic_write_text(path, render_template())
    if app.json:
        from magray.cli._output import emit_json

        emit_json({"path": str(path), "written": True})
    else:
        click.echo(f"wrote {path}")


def render_template() -> str:
    """A TOML file with every setting commented out, with its description."""
    import tomli_w

    from magray.common.settings import Settings

    lines = [
        "# magray configuration. Uncomment and edit what you need.",
        "# Precedence: defaults < this file < MAGRAY_* env vars (MAGRAY_SECTION__KEY).",
        "",
    ]
    defaults = Settings.model_construct()
    for section in Settings.model_fields:
        model = getattr(defaults, section)
        lines.append(f"[{section}]")
        for name, info in type(model).model_fields.items():
            if info.description:
                lines.append(f"# {info.description}")
            value = getattr(model, name)
            if value is None:
                lines.append(f"# {name} =")
            else:
                dumped = tomli_w.dumps({name: _plain(value)}).strip()
                lines.append(f"# {dumped}")
        lines.append("")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _defaults_flat() -> dict[str, Any]:
    from magray.common.settings import Settings, flatten

    return flatten(Settings.model_construct())


def _sections_hint(loaded: LoadedSettings) -> str:
    sections = sorted({k.split(".")[0] for k in loaded.flat()})
    return f"sections: {', '.join(sections)}"


def _require_key(key: str, flat: dict[str, Any]) -> None:
    if key not in flat:
        from difflib import get_close_matches

        from magray.common.errors import NotFoundError

        close = get_close_matches(key, list(flat), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "`magray config show` lists keys"
        raise NotFoundError(f"unknown setting {key!r}", hint=hint, code="config.unknown_key")


def _parse_value(raw: str) -> Any:
    import tomllib

    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _validate_and_write(app: AppContext, path: Path, data: dict[str, Any]) -> None:
    """Validate the whole new file before replacing the old one."""
    import tomli_w
    from pydantic import ValidationError

    from magray.common.errors import ConfigError
    from magray.common.fs import atomic_write_text
    from magray.common.settings import Settings

    try:
        Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"invalid setting {key} = {err.get('input')!r}: {err['msg']}",
            hint="nothing was written; `magray config show` lists keys and current values",
            code="config.invalid",
        ) from None
    atomic_write_text(path, tomli_w.dumps(data))
    app.reset()


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return repr(value)
    return str(value)
