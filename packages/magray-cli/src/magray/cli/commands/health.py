"""``magray health``."""

from __future__ import annotations

import click

from magray.cli._context import AppContext, json_option, pass_app


@click.command()
@click.option("--check", "names", multiple=True, help="Run only these checks (repeatable).")
@json_option
@pass_app
def health(app: AppContext, names: tuple[str, ...]) -> None:
    """Run all health checks; exit 1 if any failed.

    Every installed magray package contributes checks (entry-point group
    magray.health). Degraded checks are reported but do not fail the command.
    """
    from magray.cli._output import console, emit_json
    from magray.common.errors import ConfigError, NotFoundError
    from magray.common.health import HealthRegistry, Status

    registry = HealthRegistry()
    try:
        settings = app.settings
    except ConfigError:
        settings = None  # the common.config check reports it
    registry.load_entry_points(settings)
    unknown = [n for n in names if n not in registry.names()]
    if unknown:
        raise NotFoundError(
            f"no health check named {', '.join(unknown)}",
            hint=f"known checks: {', '.join(registry.names())}",
        )
    report = registry.run(list(names) if names else None)
    if app.json:
        emit_json(report.to_dict())
    else:
        out = console()
        marks = {
            Status.OK: "[green]ok[/]",
            Status.DEGRADED: "[yellow]degraded[/]",
            Status.FAILED: "[red]FAILED[/]",
        }
        for check in report.checks:
            out.print(f"{marks[check.status]:>22}  {check.name}: {check.message}")
        out.print(f"overall: {marks[report.status]}")
    if report.status is Status.FAILED:
        raise SystemExit(1)
