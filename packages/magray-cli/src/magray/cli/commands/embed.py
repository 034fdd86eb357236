"""``magray embed TEXT...``."""

from __future__ import annotations

import sys

import click

from magray.cli._complete import complete_embedding_models
from magray.cli._context import AppContext, json_option, pass_app


@click.command()
@click.argument("texts", nargs=-1)
@click.option(
    "--model",
    default=None,
    shell_complete=complete_embedding_models,
    help="Registry name (default: ai.embedding_model).",
)
@click.option("--vectors", is_flag=True, help="Include the full vectors (JSON) or print them.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read one text per line from stdin.")
@json_option
@pass_app
def embed(
    app: AppContext, texts: tuple[str, ...], model: str | None, vectors: bool, from_stdin: bool
) -> None:
    """Embed texts with the local ONNX model and show shapes, norms and similarities.

    With two or more texts, the cosine similarity of each to the first is shown.
    """
    from magray.ai import Embedder
    from magray.cli._output import emit_json, print_table
    from magray.common.errors import InvalidInputError

    items = list(texts)
    if from_stdin:
        items += [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not items:
        raise InvalidInputError(
            "no text to embed", hint='pass texts as arguments: magray embed "some text"'
        )
    embedder = Embedder.from_settings(app.settings.ai, model=model)
    matrix = embedder.embed(items)
    norms = [float(x) for x in (matrix**2).sum(axis=1) ** 0.5]
    sims = [float(matrix[0] @ row) for row in matrix]
    tokens = embedder.token_counts(items)
    provider = next((n for n, s in embedder.manager.stats().items() if s["calls"]), None)
    if app.json:
        rows = []
        for i, text in enumerate(items):
            row = {
                "text": text,
                "tokens": tokens[i],
                "norm": round(norms[i], 6),
                "cosine_to_first": round(sims[i], 6),
            }
            if vectors:
                row["vector"] = [float(x) for x in matrix[i]]
            rows.append(row)
        emit_json(
            {
                "model_id": embedder.model_id,
                "dim": embedder.dim,
                "shape": list(matrix.shape),
                "provider": provider,
                "items": rows,
            }
        )
        return
    click.echo(f"model {embedder.model_id} on {provider}: shape {tuple(matrix.shape)}", err=True)
    print_table(
        ["#", "tokens", "norm", "cos to #0", "text"],
        [(i, tokens[i], f"{norms[i]:.4f}", f"{sims[i]:.4f}", t) for i, t in enumerate(items)],
    )
    if vectors:
        for row in matrix:
            click.echo(" ".join(f"{x:.6f}" for x in row))
