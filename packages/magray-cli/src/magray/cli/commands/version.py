"""``magray version``."""

from __future__ import annotations

import click

from magray.cli._context import AppContext, json_option, pass_app

PACKAGES = (
    "magray-common",
    "magray-ai",
    "magray-memory",
    "magray-llm",
    "magray-tools",
    "magray-todo",
    "magray-router",
    "magray-cli",
)


def installed_versions() -> dict[str, str | None]:
    """Version of every magray distribution (None when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


@click.command()
@json_option
@pass_app
def version(app: AppContext) -> None:
    """Show versions of magray, its packages and Python."""
    import platform

    from magray.cli._output import emit_json, print_table

    packages = installed_versions()
    data: dict[str, object] = {
        "packages": packages,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if app.json:
        emit_json(data)
        return
    rows = [(k, v or "not installed") for k, v in packages.items()]
    rows += [("python", platform.python_version()), ("platform", platform.platform())]
    print_table(["component", "version"], rows)
