"""The root group, global options, error rendering and the foundation commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from magray.cli import cli


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_help_lists_commands_without_importing_them() -> None:
    code = (
        "import sys\n"
        "from magray.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pydantic', 'structlog', 'rich', 'numpy', 'litellm', 'faiss',"
        " 'onnxruntime', 'sqlmodel', 'networkx', 'magray.cli.commands.config')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "config" in out.stdout
    assert "HEAVY []" in out.stdout


def test_version_option_and_command() -> None:
    code, out = invoke("--version")
    assert code == 0
    assert out.startswith("magray ")
    code, out = invoke("--json", "version")
    data = json.loads(out)
    assert data["packages"]["magray-common"]
    code, out = invoke("version")
    assert "magray-cli" in out


def test_config_roundtrip(magray_home: Path) -> None:
    assert invoke("config", "path")[1].strip() == str(magray_home / "config.toml")
    code, out = invoke("config", "set", "memory.hnsw_m", "48")
    assert code == 0
    assert (magray_home / "config.toml").read_text().strip() == "[memory]\nhnsw_m = 48"
    code, out = invoke("config", "get", "memory.hnsw_m", "--json")
    assert json.loads(out) == {
        "key": "memory.hnsw_m",
        "value": 48,
        "source": f"file:{magray_home / 'config.toml'}",
    }
    code, out = invoke("--json", "config", "show", "--section", "memory")
    data = json.loads(out)
    assert data["memory.hnsw_m"]["value"] == 48
    assert data["memory.backend"] == {"value": "local", "source": "default"}
    code, out = invoke("config", "unset", "memory.hnsw_m")
    assert "removed" in out
    assert json.loads(invoke("config", "get", "memory.hnsw_m", "--json")[1])["value"] == 32


def test_config_set_parses_toml_values(magray_home: Path) -> None:
    invoke("config", "set", "llm.fallbacks", '["a/b", "c/d"]')
    invoke("config", "set", "llm.model", "openai/gpt-4o-mini")
    out = json.loads(invoke("--json", "config", "show", "--section", "llm")[1])
    assert out["llm.fallbacks"]["value"] == ["a/b", "c/d"]
    assert out["llm.model"]["value"] == "openai/gpt-4o-mini"


def test_config_init_writes_a_valid_commented_template(magray_home: Path) -> None:
    import tomllib

    assert invoke("config", "init")[0] == 0
    text = (magray_home / "config.toml").read_text()
    assert "# hnsw_m = 32" in text
    assert tomllib.loads(text).keys() == {
        "logging", "ai", "memory", "llm", "tools", "todo", "router",
    }  # fmt: skip
    # uncommenting every assignment still gives a valid config
    assignment = re.compile(r"^# [a-z_]+ = ")
    uncommented = "\n".join(
        line[2:] if assignment.match(line) else line for line in text.splitlines()
    )
    from magray.common.settings import Settings

    Settings.model_validate(tomllib.loads(uncommented))


def test_health_and_status(magray_home: Path) -> None:
    code, out = invoke("--json", "health")
    assert code == 0
    report = json.loads(out)
    assert report["status"] == "ok"
    assert {"common.config", "common.data_dir", "common.python"} <= {
        c["name"] for c in report["checks"]
    }
    code, out = invoke("status", "--json")
    data = json.loads(out)
    assert data["paths"]["data_dir"] == str(magray_home / "data")
    assert data["settings"]["llm.mode"].startswith("no-llm")
    assert set(data["metrics"]) == {"counters", "gauges", "histograms"}


def test_unknown_health_check_is_not_found(run_magray) -> None:
    proc = run_magray("health", "--check", "nope")
    assert proc.returncode == 3
    assert proc.stderr.startswith("error[not_found]: no health check named nope")


def test_bad_config_is_one_line_exit_2_no_traceback(run_magray, magray_home: Path) -> None:
    cases = [
        ('[memory]\nhnsw_m = "x"\n', "memory.hnsw_m"),
        ('[memory]\nbackend = "redis"\n', "unknown backend 'redis'"),
        ("[memory\n", "not valid TOML"),
    ]
    for text, expected in cases:
        (magray_home / "config.toml").write_text(text)
        proc = run_magray("status")
        assert proc.returncode == 2, proc.stderr
        first, hint = proc.stderr.strip().splitlines()
        assert first.startswith("error[config."), first
        assert expected in first
        assert hint.startswith("hint: ")
        assert "Traceback" not in proc.stderr
        assert str(magray_home / "config.toml") in first


def test_bad_env_var_names_the_variable(run_magray) -> None:
    proc = run_magray("status", env={"MAGRAY_TODO__MAX_WORKERS": "lots"})
    assert proc.returncode == 2
    assert "env:MAGRAY_TODO__MAX_WORKERS" in proc.stderr


def test_health_fails_with_bad_config(run_magray, magray_home: Path) -> None:
    (magray_home / "config.toml").write_text("[memory\n")
    proc = run_magray("--json", "health")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    config = next(c for c in report["checks"] if c["name"] == "common.config")
    assert config["status"] == "failed"


def test_set_invalid_value_writes_nothing(run_magray, magray_home: Path) -> None:
    proc = run_magray("config", "set", "memory.backend", "redis")
    assert proc.returncode == 2
    assert not (magray_home / "config.toml").exists()
    proc = run_magray("config", "set", "memory.nope", "1")
    assert proc.returncode == 3
    assert "unknown setting 'memory.nope'" in proc.stderr


def test_debug_shows_traceback_and_json_errors(run_magray, magray_home: Path) -> None:
    (magray_home / "config.toml").write_text("[memory\n")
    proc = run_magray("--debug", "status")
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    proc = run_magray("--json", "status")
    assert json.loads(proc.stderr)["error"]["code"] == "config.unreadable"


def test_usage_error_exit_2(run_magray) -> None:
    proc = run_magray("no-such-command")
    assert proc.returncode == 2
    assert "No such command" in proc.stderr


def test_config_flag_points_elsewhere(run_magray, tmp_path: Path) -> None:
    cfg = tmp_path / "alt.toml"
    cfg.write_text("[todo]\nmax_workers = 9\n")
    proc = run_magray("--config", str(cfg), "--json", "config", "get", "todo.max_workers")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["value"] == 9


def test_metrics_persist_across_runs_and_show_in_status(magray_home: Path) -> None:
    from magray.cli import main
    from magray.common.metrics import default_registry

    for _ in range(2):
        default_registry().counter("llm.calls", model="m1").inc()
        default_registry().histogram("llm.latency_ms", model="m1").observe(12.5)
        main(["version"])  # returns normally on success
    assert (magray_home / "data" / "metrics.json").exists()
    data = json.loads(invoke("--json", "status")[1])
    assert data["metrics"]["counters"]["llm.calls{model=m1}"] == 2
    assert data["metrics"]["histograms"]["llm.latency_ms{model=m1}"]["count"] == 2
    data = json.loads(invoke("--json", "status", "--reset-metrics")[1])
    assert data["metrics"]["counters"] == {}


def test_completion_scripts_complete_commands(run_magray) -> None:
    markers = {"bash": "complete -o", "zsh": "compdef", "fish": "--command magray"}
    for shell, marker in markers.items():
        proc = run_magray("completion", shell)
        assert proc.returncode == 0, proc.stderr
        assert marker in proc.stdout
    proc = run_magray(
        env={"_MAGRAY_COMPLETE": "bash_complete", "COMP_WORDS": "magray con", "COMP_CWORD": "1"}
    )
    assert "config" in proc.stdout
