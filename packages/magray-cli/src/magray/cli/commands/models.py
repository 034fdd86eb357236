"""``magray models list|info|verify|remove|import|quantize|bench``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from magray.cli._complete import complete_embedding_models
from magray.cli._context import AppContext, json_option, pass_app

if TYPE_CHECKING:
    from magray.ai import ModelRegistry


@click.group()
def models() -> None:
    """Embedding and reranking models: built-in packages and user folders (never downloaded)."""


def _registry(app: AppContext) -> ModelRegistry:
    from magray.ai import ModelRegistry

    return ModelRegistry(models_dir=app.settings.ai.models_dir)


def _row(registry: ModelRegistry, card: Any, default: str) -> dict[str, Any]:
    from magray.common.errors import MagrayError

    try:
        location = registry.resolve(card.name).location
        installed = True
    except MagrayError as exc:
        location, installed = exc.hint or exc.message, False
    return {
        "name": card.name,
        "task": card.task,
        "dim": card.dim,
        "variant": card.variant,
        "pooling": card.pooling,
        "max_tokens": card.max_tokens,
        "installed": installed,
        "default": card.name == default,
        "builtin": card.builtin,
        "licence": card.licence,
        "location": location,
        "description": card.description,
    }


@models.command("list")
@click.option("--task", type=click.Choice(["embed", "rerank"]), default=None, help="Only one task.")
@json_option
@pass_app
def models_list(app: AppContext, task: str | None) -> None:
    """List built-in and user models, whether they are installed, and which is the default."""
    from magray.cli._output import emit_json, print_table

    registry = _registry(app)
    default = registry.card(app.settings.ai.embedding_model).name
    rows = [_row(registry, card, default) for card in registry.cards(task=task)]  # type: ignore[arg-type]
    if app.json:
        emit_json(rows)
        return
    print_table(
        ["name", "task", "dim", "variant", "installed", "default", "description"],
        [
            (
                r["name"],
                r["task"],
                r["dim"],
                r["variant"],
                "yes" if r["installed"] else "no: " + r["location"],
                "*" if r["default"] else "",
                r["description"],
            )
            for r in rows
        ],
    )
    if not registry.names(task="rerank"):
        click.echo(
            "no reranker installed: import a cross-encoder with "
            "`magray models import PATH --task rerank`",
            err=True,
        )


@models.command("info")
@click.argument("name", default="default", shell_complete=complete_embedding_models)
@json_option
@pass_app
def models_info(app: AppContext, name: str) -> None:
    """Show a model's card and where its files are."""
    from magray.cli._output import emit_json, print_table

    registry = _registry(app)
    card = registry.card(name)
    resolved = registry.resolve(card.name)
    data = {
        **card.to_dict(),
        "model_id": card.model_id,
        "model_path": str(resolved.model_path),
        "tokenizer_path": str(resolved.tokenizer_path),
        "size_bytes": resolved.model_path.stat().st_size,
        "location": resolved.location,
    }
    if app.json:
        emit_json(data)
        return
    print_table(["field", "value"], sorted(data.items()), title=card.name)


@models.command("verify")
@click.argument("names", nargs=-1, shell_complete=complete_embedding_models)
@json_option
@pass_app
def models_verify(app: AppContext, names: tuple[str, ...]) -> None:
    """Check hashes, run a smoke inference and a similarity sanity check (all models by default).

    Exits 1 when a check fails.
    """
    from magray.ai import verify_model
    from magray.cli._output import console, emit_json

    registry = _registry(app)
    selected = list(names) or registry.names()
    reports = [
        verify_model(registry, name, force_cpu=app.settings.ai.force_cpu) for name in selected
    ]
    if app.json:
        emit_json([r.to_dict() for r in reports])
    else:
        out = console()
        for report in reports:
            mark = "[green]ok[/]" if report.ok else "[red]FAILED[/]"
            out.print(f"{mark} {report.name} ({report.model_id or 'not loaded'})")
            for check in report.checks:
                sub = "[green]✓[/]" if check["ok"] else "[red]✗[/]"
                out.print(f"   {sub} {check['check']}: {check['detail']}")
    if not all(r.ok for r in reports):
        raise SystemExit(1)


@models.command("remove")
@click.argument("name", shell_complete=complete_embedding_models)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
def models_remove(app: AppContext, name: str, yes: bool) -> None:
    """Delete a user model's folder (built-in models cannot be removed)."""
    from magray.cli._output import emit_json

    registry = _registry(app)
    card = registry.card(name)
    if not yes and not card.builtin and not app.json:
        click.confirm(f"delete model {card.name!r} from {registry.models_dir}?", abort=True)
    removed = registry.remove(name)
    if app.json:
        emit_json({"removed": removed.name})
    else:
        click.echo(f"removed {removed.name}")


@models.command("import")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Registry name for the new model.")
@click.option(
    "--task",
    type=click.Choice(["embed", "rerank"]),
    default=None,
    help="Default: rerank for a ...ForSequenceClassification config, else embed.",
)
@click.option("--pooling", type=click.Choice(["mean", "cls", "last"]), default=None)
@click.option("--max-tokens", type=click.IntRange(8, 8192), default=None)
@click.option("--licence", default="unknown", show_default=True, help="Licence of the weights.")
@click.option("--output", default=None, help="ONNX folders: the graph output to read.")
@json_option
@pass_app
def models_import(
    app: AppContext,
    *,
    path: Path,
    name: str,
    task: str | None,
    pooling: str | None,
    max_tokens: int | None,
    licence: str,
    output: str | None,
) -> None:
    """Register a model folder: safetensors (converted to ONNX, no PyTorch) or ONNX.

    PATH holds config.json + model.safetensors + tokenizer.json (or vocab.txt) of
    a BERT-family sentence-transformers model or cross-encoder, or a ready
    model.onnx + tokenizer.json. The new model is verified right away.
    """
    from magray.ai import import_folder, import_onnx_folder, verify_model
    from magray.cli._output import emit_json

    registry = _registry(app)
    if (path / "model.safetensors").is_file():
        click.echo(f"converting {path} ...", err=True)
        card = import_folder(
            registry,
            path,
            name=name,
            task=task,  # type: ignore[arg-type]
            pooling=pooling,
            max_tokens=max_tokens,
            licence=licence,
        )
    else:
        card = import_onnx_folder(
            registry,
            path,
            name=name,
            task=task or "embed",  # type: ignore[arg-type]
            pooling=pooling,
            max_tokens=max_tokens,
            output=output,
            licence=licence,
        )
    report = verify_model(registry, card.name)
    if app.json:
        emit_json({"card": card.to_dict(), "model_id": card.model_id, "verify": report.to_dict()})
    else:
        click.echo(f"imported {card.name} ({card.task}, {card.dim}-d, {card.pooling} pooling)")
        for check in report.checks:
            click.echo(f"  {'ok ' if check['ok'] else 'BAD'} {check['check']}: {check['detail']}")
    if not report.ok:
        raise SystemExit(1)


@models.command("quantize")
@click.argument("name", shell_complete=complete_embedding_models)
@click.option("--int8", "mode", flag_value="int8", default=True, help="INT8 dynamic (default).")
@click.option("--fp16", "mode", flag_value="fp16", help="FP16 weights, for GPU providers.")
@click.option("--as", "new_name", default=None, help="Name of the variant (default NAME-q8/-f16).")
@click.option(
    "--per-channel/--per-tensor", default=True, show_default=True, help="INT8 weight scales."
)
@click.option(
    "--all-matmul",
    is_flag=True,
    help="Also quantise the feed-forward projections (smaller, less accurate).",
)
@json_option
@pass_app
def models_quantize(
    app: AppContext,
    *,
    name: str,
    mode: str,
    new_name: str | None,
    per_channel: bool,
    all_matmul: bool,
) -> None:
    """Register an INT8 (or FP16) variant and report its size, speed and cosine agreement."""
    from magray.ai import compare_models, load_eval_set, quantize_model
    from magray.cli._output import emit_json, print_table

    registry = _registry(app)
    click.echo(f"converting {name} to {mode} ...", err=True)
    card = quantize_model(
        registry,
        name,
        new_name=new_name,
        per_channel=per_channel,
        keep_ffn=not all_matmul,
        fp16=mode == "fp16",
    )
    data = load_eval_set()
    report = compare_models(
        registry, registry.card(name).name, card.name, data.docs + data.questions
    )
    if app.json:
        emit_json({"card": card.to_dict(), "comparison": report.to_dict()})
        return
    print_table(
        ["", registry.card(name).name, card.name],
        [
            (
                "size MB",
                f"{report.reference_bytes / 1e6:.1f}",
                f"{report.candidate_bytes / 1e6:.1f}",
            ),
            (
                "ms/sentence (CPU, batch 32)",
                f"{report.reference_ms_per_sentence:.2f}",
                f"{report.candidate_ms_per_sentence:.2f}",
            ),
            (
                "cosine vs original (mean/min)",
                "1",
                f"{report.cosine_mean:.4f}/{report.cosine_min:.4f}",
            ),
        ],
        title=f"{card.name}: {report.sentences} sentences of the labelled set",
    )
    if report.cosine_min < 0.99:
        click.echo(
            f"warning: minimum cosine {report.cosine_min:.4f} < 0.99; "
            "compare retrieval quality with `magray models bench` before using it",
            err=True,
        )


@models.command("bench")
@click.argument("names", nargs=-1, shell_complete=complete_embedding_models)
@json_option
@pass_app
def models_bench(app: AppContext, names: tuple[str, ...]) -> None:
    """Retrieval quality (recall@5, MRR@10) and speed of embedding models on the labelled set."""
    import time

    from magray.ai import Embedder, load_eval_set, rank_metrics
    from magray.cli._output import emit_json, print_table

    registry = _registry(app)
    data = load_eval_set()
    rows = []
    for name in list(names) or registry.names(task="embed"):
        embedder = Embedder(name, registry=registry, force_cpu=True, cache_entries=0)
        embedder.embed(data.questions[:8])  # warm-up
        start = time.perf_counter()
        docs = embedder.embed(data.docs)
        questions = embedder.embed(data.questions)
        seconds = time.perf_counter() - start
        metrics = rank_metrics(questions @ docs.T, data.answer_index)
        rows.append(
            {
                "model": embedder.card.name,
                "model_id": embedder.model_id,
                **{k: round(v, 4) for k, v in metrics.items()},
                "ms_per_sentence": round(
                    seconds * 1000 / (len(data.docs) + len(data.questions)), 3
                ),
            }
        )
    if app.json:
        emit_json({"passages": len(data.docs), "questions": len(data.questions), "models": rows})
        return
    print_table(
        ["model", "recall@1", "recall@5", "MRR@10", "ms/sentence"],
        [
            (
                r["model"],
                f"{r['recall@1']:.1%}",
                f"{r['recall@5']:.1%}",
                f"{r['mrr@10']:.3f}",
                r["ms_per_sentence"],
            )
            for r in rows
        ],
        title=f"{len(data.questions)} questions over {len(data.docs)} passages",
    )
