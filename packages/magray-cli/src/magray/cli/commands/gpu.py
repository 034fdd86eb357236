"""``magray gpu info|benchmark``."""

from __future__ import annotations

import click

from magray.cli._complete import complete_embedding_models
from magray.cli._context import AppContext, json_option, pass_app


@click.group()
def gpu() -> None:
    """GPU execution providers: what ONNX Runtime offers and how fast it is."""


@gpu.command("info")
@json_option
@pass_app
def gpu_info(app: AppContext) -> None:
    """Show ONNX Runtime's providers and which ones magray would use."""
    from magray.ai import gpu_info as collect
    from magray.cli._output import emit_json

    ai = app.settings.ai
    info = collect(force_cpu=ai.force_cpu, preferred=list(ai.providers))
    if app.json:
        emit_json(info)
        return
    click.echo(f"onnxruntime {info['onnxruntime']} (build device: {info['build_device']})")
    click.echo(f"available providers: {', '.join(info['available_providers'])}")
    click.echo(f"magray will use: {' -> '.join(info['selected'])}")
    for device in info["devices"]:
        click.echo(f"device: {device['type']} {device['vendor']} via {device['provider']}")
    if not info["gpu_available"]:
        click.echo(
            "no GPU provider available: install onnxruntime-gpu (CUDA) or a DirectML/CoreML build "
            "to use one; magray runs on the CPU"
        )


@gpu.command("benchmark")
@click.option(
    "--model",
    default="default",
    show_default=True,
    shell_complete=complete_embedding_models,
    help="Embedding model to time.",
)
@click.option("--sentences", default=256, show_default=True, type=click.IntRange(8, 100_000))
@json_option
@pass_app
def gpu_benchmark(app: AppContext, model: str, sentences: int) -> None:
    """Compare CPU and GPU embedding throughput (CPU only, said plainly, without a GPU)."""
    from magray.ai import benchmark_providers
    from magray.cli._output import emit_json, print_table

    result = benchmark_providers(model=model, sentences=sentences)
    if app.json:
        emit_json(result)
        return
    print_table(
        ["provider", "sentences/s", "answered by"],
        [
            (
                name,
                run.get("sentences_per_s", run.get("error")),
                ", ".join(run.get("answered_by", [])),
            )
            for name, run in result["runs"].items()
        ],
        title=f"{result['model']}, {result['sentences']} sentences",
    )
    if not result["gpu_available"]:
        click.echo("no GPU provider available: only the CPU was measured", err=True)
