"""``magray status``."""

from __future__ import annotations

from typing import Any

import click

from magray.cli._context import AppContext, json_option, pass_app


def collect_status(app: AppContext) -> dict[str, Any]:
    """Versions, paths, a settings summary and the metrics snapshot."""
    from magray.cli.commands.version import installed_versions
    from magray.common import paths
    from magray.common.metrics import default_registry

    loaded = app.loaded
    s = loaded.settings
    return {
        "versions": installed_versions(),
        "paths": {
            "home": str(paths.home()) if paths.home() else None,
            "config_file": str(loaded.config_path),
            "config_file_exists": loaded.config_path.exists(),
            "data_dir": str(paths.data_dir()),
            "cache_dir": str(paths.cache_dir()),
        },
        "settings": {
            "memory.backend": s.memory.backend,
            "memory.embedder": s.memory.embedder,
            "ai.embedding_model": s.ai.embedding_model,
            "ai.force_cpu": s.ai.force_cpu,
            "llm.model": s.llm.model,
            "llm.mode": "llm" if s.llm.model else "no-llm (rules and memory only)",
            "tools.workspace": [str(p) for p in s.tools.workspace] or ["(current directory)"],
        },
        "metrics": default_registry().snapshot(),
    }


@click.command()
@json_option
@pass_app
def status(app: AppContext) -> None:
    """Show versions, paths, a settings summary and metrics of this process."""
    from magray.cli._output import emit_json, print_table

    data = collect_status(app)
    if app.json:
        emit_json(data)
        return
    versions = ", ".join(
        f"{k.removeprefix('magray-')} {v}" for k, v in data["versions"].items() if v
    )
    click.echo(f"magray packages: {versions}")
    print_table(["path", "value"], data["paths"].items(), title="paths")
    print_table(["setting", "value"], data["settings"].items(), title="settings")
    m = data["metrics"]
    rows = [(k, v) for k, v in m["counters"].items()] + [(k, v) for k, v in m["gauges"].items()]
    rows += [
        (k, f"n={h['count']} p50={h['p50']:.2f} p95={h['p95']:.2f} p99={h['p99']:.2f}")
        for k, h in m["histograms"].items()
        if h["count"]
    ]
    if rows:
        print_table(["metric", "value"], rows, title="metrics")
    else:
        click.echo("metrics: none recorded in this process yet")
