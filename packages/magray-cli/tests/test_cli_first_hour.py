"""Issue 17's CLI items: a missing --config, private files, piped tables, "did you mean",
value completion and negative numbers as values. End to end through the installed script."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def magray_script() -> str:
    script = Path(sys.executable).parent / "magray"
    if not script.exists():
        pytest.skip("the magray console script is not installed")
    return str(script)


def run_with_umask(
    home: Path, *args: str, umask: int = 0o022, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The installed `magray` started the way a user's shell would (umask 022)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGRAY_")}
    env["MAGRAY_HOME"] = str(home)
    return subprocess.run(
        [magray_script(), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        umask=umask,
        stdin=subprocess.DEVNULL,
    )


def not_private(root: Path) -> list[str]:
    bad = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        if not path.is_symlink() and mode != want:
            bad.append(f"{mode:o} {path.relative_to(root)}")
    return bad


@pytest.mark.parametrize(
    "first",
    [("memory", "add", "hello private world"), ("todo", "add", "write tests"), ("health",)],
)
def test_every_file_is_private_whichever_command_runs_first(
    tmp_path: Path, first: tuple[str, ...]
) -> None:
    home = tmp_path / "home"  # created by magray itself
    proc = run_with_umask(home, *first)
    assert proc.returncode in (0, 1), proc.stderr  # health may report a degraded plugin
    for later in (("memory", "add", "second"), ("todo", "add", "t2"), ("health",)):
        run_with_umask(home, *later)
    data = home / "data"
    assert data.is_dir()
    created = {p.name for p in data.rglob("*")}
    assert {"memory.db", "todo.db"} <= created, created
    assert not_private(data) == []


def test_sqlite_side_files_are_private(tmp_path: Path) -> None:
    """-wal/-shm exist while a connection is open: hold one open and add a memory."""
    import sqlite3

    home = tmp_path / "home"
    assert run_with_umask(home, "memory", "add", "one").returncode == 0
    db = next((home / "data").rglob("memory.db"))
    with sqlite3.connect(db) as conn:  # this process's umask is 022, like an old magray
        conn.execute("pragma journal_mode=wal")
        conn.execute("select count(*) from sqlite_master").fetchall()
        assert run_with_umask(home, "memory", "add", "two").returncode == 0
        side = [p for p in db.parent.iterdir() if p.name.endswith(("-wal", "-shm"))]
        assert side, list(db.parent.iterdir())
        assert not_private(db.parent) == []


def test_chat_first_creates_only_private_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = run_with_umask(home, "chat", "what is magray?", timeout=180)
    assert proc.returncode == 0, proc.stderr  # no-LLM mode answers from memory
    assert (home / "data" / "memory" / "memory.db").exists()  # chat stored the exchange
    assert not_private(home) == []
    proc = run_with_umask(home, "smart", "--dry-run", "list the files in .", timeout=180)
    assert not_private(home) == []


def test_health_tightens_a_data_dir_an_old_version_left_open(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    os.chmod(home / "data", 0o755)
    proc = run_with_umask(home, "--json", "health", "--check", "common.data_dir")
    assert proc.returncode == 0, proc.stderr
    check = json.loads(proc.stdout)["checks"][0]
    assert check["status"] == "ok", check
    assert stat.S_IMODE((home / "data").stat().st_mode) == 0o700


@pytest.mark.parametrize("how", ["flag", "env"])
def test_missing_config_file_is_a_usage_error(tmp_path: Path, how: str) -> None:
    missing = tmp_path / "nonexistent.toml"
    env = dict(os.environ, MAGRAY_HOME=str(tmp_path / "home"))
    args = ["status"]
    if how == "flag":
        args = ["--config", str(missing), *args]
    else:
        env["MAGRAY_CONFIG"] = str(missing)
    proc = subprocess.run(
        [magray_script(), *args], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 2, proc.stdout
    first, hint = proc.stderr.strip().splitlines()
    assert first == f"error[config.missing]: config file {missing} does not exist"
    assert hint.startswith("hint: ")
    assert "config init" in hint
    assert proc.stdout == ""


def test_missing_config_file_can_be_created_with_config_commands(
    run_magray, tmp_path: Path
) -> None:
    target = tmp_path / "new.toml"
    proc = run_magray("--config", str(target), "config", "set", "memory.backend", "postgres")
    assert proc.returncode == 0, proc.stderr
    proc = run_magray("--config", str(target), "--json", "status")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["settings"]["memory.backend"] == "postgres"


def test_piped_table_keeps_32_char_ids_on_one_line(run_magray) -> None:
    long_text = "a memory whose text is far wider than an eighty column terminal " * 2
    ids = []
    for i in range(3):
        proc = run_magray("memory", "add", f"{long_text} {i}")
        assert proc.returncode == 0, proc.stderr
        ids.append(proc.stdout.strip().split()[-1])
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    proc = run_magray("memory", "list", env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for record_id in ids:
        assert any(record_id in line for line in lines), (record_id, proc.stdout)
    body = [line for line in lines if re.search(r"[0-9a-f]{32}", line)]
    assert len(body) == 3  # one line per row: nothing folded onto a second line


def test_print_table_folds_nothing_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from magray.cli._output import print_table

    rows = [("0123456789abcdef0123456789abcdef", "x" * 150)]
    print_table(["id", "text"], rows)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3  # header, rule, one row
    assert "0123456789abcdef0123456789abcdef" in out[2]
    assert "x" * 150 in out[2]


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["staus"], "Did you mean 'status'?"),
        (["memroy", "list"], "Did you mean 'memory'?"),
        (["memory", "serch", "x"], "Did you mean 'search'?"),
        (["todo", "lst"], "Did you mean 'list'?"),
        (["config", "sett", "a", "b"], "Did you mean one of: 'set', 'unset'?"),
        (["confg"], "Did you mean 'config'?"),
    ],
)
def test_mistyped_commands_suggest_the_right_one(
    run_magray, args: list[str], suggestion: str
) -> None:
    proc = run_magray(*args)
    assert proc.returncode == 2
    assert suggestion in proc.stderr, proc.stderr


def test_unrelated_command_gets_no_suggestion(run_magray) -> None:
    proc = run_magray("zzzzzz")
    assert proc.returncode == 2
    assert "No such command 'zzzzzz'." in proc.stderr
    assert "Did you mean" not in proc.stderr


def complete(run_magray, words: str) -> list[str]:
    proc = run_magray(
        env={
            "_MAGRAY_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
    )
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]


def test_completion_offers_config_keys(run_magray) -> None:
    assert complete(run_magray, "magray config get memory.hnsw_") == [
        "memory.hnsw_ef_construction",
        "memory.hnsw_ef_search",
        "memory.hnsw_m",
    ]
    assert "llm.model" in complete(run_magray, "magray config set llm.")


def test_completion_value_sources() -> None:
    from magray.cli import _complete

    assert {"file_read", "git_status", "shell_run"} <= set(_complete.tool_names())
    assert "default" in _complete.embedding_model_names()
    assert len(_complete.embedding_model_names()) > 1


def test_completion_offers_configured_llm_models(magray_home: Path) -> None:
    from magray.cli import _complete

    (magray_home / "config.toml").write_text(
        '[llm]\nmodel = "openai/gpt-4o-mini"\nfallbacks = ["ollama/llama3"]\n'
    )
    assert _complete.llm_model_names() == ["ollama/llama3", "openai/gpt-4o-mini"]
    items = _complete.complete_llm_models(None, None, "oll")
    assert [i.value for i in items] == ["ollama/llama3"]


def test_config_set_negative_number_is_a_value(run_magray, magray_home: Path) -> None:
    proc = run_magray("config", "set", "memory.hnsw_m", "-5")
    assert proc.returncode == 2
    assert "No such option" not in proc.stderr
    assert proc.stderr.startswith("error[config.invalid]: invalid setting memory.hnsw_m = -5")
    assert not (magray_home / "config.toml").exists()
    proc = run_magray("config", "set", "llm.temperature", "-0.5")
    assert proc.returncode == 2
    assert "llm.temperature = -0.5" in proc.stderr


def test_main_makes_files_private_and_gives_the_umask_back(magray_home: Path) -> None:
    from magray.cli import main

    old = os.umask(0o022)
    try:
        main(["todo", "add", "write the docs"])  # SQLite creates todo.db under the umask
        assert os.umask(0o022) == 0o022  # restored for an in-process caller
    finally:
        os.umask(old)
    assert not_private(magray_home / "data") == []
    assert (magray_home / "data" / "todo.db").exists()


def test_chat_and_smart_complete_configured_llm_models(run_magray, magray_home: Path) -> None:
    (magray_home / "config.toml").write_text(
        '[llm]\nmodel = "openai/gpt-4o-mini"\nfallbacks = ["ollama/llama3"]\n'
    )
    assert complete(run_magray, "magray chat --model oll") == ["ollama/llama3"]
    assert complete(run_magray, "magray smart --model open") == ["openai/gpt-4o-mini"]


def test_model_commands_complete_embedding_models(run_magray) -> None:
    for words in ("magray models info minilm", "magray embed --model minilm"):
        names = complete(run_magray, words)
        assert "minilm-l6" in names, (words, names)
        assert all(n.startswith("minilm") for n in names)


def test_tool_commands_complete_tool_names(run_magray) -> None:
    assert complete(run_magray, "magray tools run file_re") == ["file_read"]
    assert complete(run_magray, "magray tools describe shell") == ["shell_run"]


def test_llm_commands_complete_configured_models(run_magray, magray_home: Path) -> None:
    (magray_home / "config.toml").write_text('[llm]\nmodel = "openai/gpt-4o-mini"\n')
    assert complete(run_magray, "magray llm ask --model open") == ["openai/gpt-4o-mini"]
    assert complete(run_magray, "magray llm test open") == ["openai/gpt-4o-mini"]
