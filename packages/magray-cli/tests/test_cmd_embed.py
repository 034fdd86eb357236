"""``magray embed``."""

from __future__ import annotations

import json

from click.testing import CliRunner

from magray.cli import cli


def test_embed_json_shapes_norms_similarities() -> None:
    result = CliRunner().invoke(
        cli, ["embed", "--json", "a cat on a mat", "a kitten on a rug", "interest rates rose"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["shape"] == [3, 384]
    assert data["provider"] == "CPUExecutionProvider"
    items = data["items"]
    assert all(abs(i["norm"] - 1) < 1e-4 for i in items)
    assert items[1]["cosine_to_first"] > items[2]["cosine_to_first"] + 0.3
    assert "vector" not in items[0]


def test_embed_vectors_and_model_option() -> None:
    result = CliRunner().invoke(cli, ["embed", "--json", "--vectors", "--model", "minilm-l3", "hi"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model_id"].startswith("minilm-l3:")
    assert len(data["items"][0]["vector"]) == 384


def test_embed_stdin() -> None:
    result = CliRunner().invoke(cli, ["embed", "--json", "--stdin"], input="one\n\ntwo\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["shape"] == [2, 384]


def test_embed_errors(run_magray) -> None:
    proc = run_magray("embed")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error[validation]: no text to embed")
    proc = run_magray("embed", "  ")
    assert proc.returncode == 2
    assert "empty or whitespace" in proc.stderr
