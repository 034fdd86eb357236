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
    metrics = _all_metrics()
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
        "llm": _llm_models(s, metrics),
        "metrics": metrics,
        "metrics_file": str(paths.data_dir() / "metrics.json"),
    }


def _label_of(key: str, name: str) -> dict[str, str] | None:
    """The labels of metric ``key`` if it is metric ``name`` (``name{a=1,b=2}``)."""
    base, _, rest = key.partition("{")
    if base != name:
        return None
    return dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)


def _llm_models(settings: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    """The routing set-up and, per model/deployment, calls, errors, latency and cost."""
    from magray.llm import LLMClient

    client = LLMClient(settings=settings)
    configured = client.deployments() if client.models else []
    rows: dict[str, dict[str, Any]] = {
        d.label: {"model": d.label, "name": d.group, "calls": 0, "errors": 0} for d in configured
    }

    def row(label: str) -> dict[str, Any]:
        return rows.setdefault(label, {"model": label, "name": None, "calls": 0, "errors": 0})

    for key, value in metrics["counters"].items():
        if (labels := _label_of(key, "llm.calls")) and "model" in labels:
            entry = row(labels["model"])
            entry["calls"] += int(value)
            if labels.get("outcome") != "ok":
                entry["errors"] += int(value)
        elif (labels := _label_of(key, "llm.cost_usd")) and "model" in labels:
            row(labels["model"])["cost_usd"] = value
    for key, summary in metrics["histograms"].items():
        labels = _label_of(key, "llm.latency_ms")
        if labels and "model" in labels and summary.get("count"):
            entry = row(labels["model"])
            entry["p50_ms"], entry["p95_ms"] = summary["p50"], summary["p95"]
    for entry in rows.values():
        entry.setdefault("p50_ms", None)
        entry.setdefault("p95_ms", None)
        entry.setdefault("cost_usd", None)
    return {
        "chain": client.models,
        "router": len(configured) > 1,
        "routing_strategy": client.routing_strategy if len(configured) > 1 else None,
        "models": list(rows.values()),
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
    llm = data["llm"]
    if llm["models"]:
        how = (
            f"litellm Router, {llm['routing_strategy']}"
            if llm["router"]
            else "one model, called directly"
        )
        print_table(
            ["model", "name", "calls", "errors", "p50 ms", "p95 ms", "cost USD"],
            [
                (
                    m["model"],
                    m["name"] or "-",
                    m["calls"],
                    m["errors"],
                    "-" if m["p50_ms"] is None else f"{m['p50_ms']:.1f}",
                    "-" if m["p95_ms"] is None else f"{m['p95_ms']:.1f}",
                    "-" if m["cost_usd"] is None else f"{m['cost_usd']:.6f}",
                )
                for m in llm["models"]
            ],
            title=f"LLM models ({how})",
        )
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
