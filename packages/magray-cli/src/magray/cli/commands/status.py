"""``magray status``."""

from __future__ import annotations

from typing import Any

import click

from magray.cli._context import AppContext, json_option, pass_app


def collect_status(app: AppContext) -> dict[str, Any]:
    """Versions, paths, a settings summary and the metrics snapshot."""
    from magray.cli.commands.version import installed_versions
    from magray.common import paths

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
        "metrics": _all_metrics(),
        "metrics_file": str(paths.data_dir() / "metrics.json"),
    }


def _all_metrics() -> dict[str, Any]:
    """Metrics persisted by earlier runs merged with this process's own."""
    from magray.common import paths
    from magray.common.metrics import MetricsRegistry, default_registry, load_state

    merged = MetricsRegistry()
    merged.merge_state(load_state(paths.data_dir() / "metrics.json"))
    merged.merge_state(default_registry().state())
    snapshot: dict[str, Any] = merged.snapshot()
    return snapshot


@click.command()
@click.option("--reset-metrics", is_flag=True, help="Forget metrics recorded by earlier runs.")
@json_option
@pass_app
def status(app: AppContext, reset_metrics: bool) -> None:
    """Show versions, paths, a settings summary and metrics of all runs.

    Every magray run folds its metrics (LLM latency and errors per model,
    search latency, cache hit rates, ...) into <data>/metrics.json.
    """
    from magray.cli._output import emit_json, print_table

    if reset_metrics:
        from magray.common import paths

        (paths.data_dir() / "metrics.json").unlink(missing_ok=True)

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
        click.echo("metrics: none recorded yet")
