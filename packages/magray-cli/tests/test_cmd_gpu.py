"""``magray gpu`` (CI has no GPU: the honest CPU-only answers are what is tested)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from magray.cli import cli


def test_gpu_info_json() -> None:
    result = CliRunner().invoke(cli, ["gpu", "info", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert "CPUExecutionProvider" in info["available_providers"]
    assert info["selected"][-1] == "CPUExecutionProvider"
    assert info["gpu_available"] == bool(info["gpu_providers"])


def test_gpu_info_force_cpu(monkeypatch) -> None:
    """MAGRAY_AI__FORCE_CPU reaches magray-ai through the settings the CLI loads."""
    import onnxruntime

    # An onnxruntime-gpu build reports CUDA even on a machine without a GPU.
    offered = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(offered))
    result = CliRunner().invoke(cli, ["gpu", "info", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["selected"] == offered
    monkeypatch.setenv("MAGRAY_AI__FORCE_CPU", "1")
    result = CliRunner().invoke(cli, ["gpu", "info", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["selected"] == ["CPUExecutionProvider"]


def test_gpu_benchmark_measures_cpu() -> None:
    result = CliRunner().invoke(
        cli, ["gpu", "benchmark", "--json", "--model", "minilm-l3", "--sentences", "16"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    cpu = data["runs"]["CPUExecutionProvider"]
    assert cpu["sentences_per_s"] > 0
    assert cpu["answered_by"] == ["CPUExecutionProvider"]
    if not data["gpu_available"]:
        assert list(data["runs"]) == ["CPUExecutionProvider"]
