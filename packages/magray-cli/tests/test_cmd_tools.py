"""`magray tools list|describe|run`, in-process and through the installed script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from magray.cli import cli


def invoke(*args: str, input: str | None = None) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.output, result.exception


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("first\nsecond\n")
    monkeypatch.chdir(root)
    return root


def test_list_json_has_builtins(ws: Path) -> None:
    code, out, _ = invoke("tools", "list", "--json")
    assert code == 0
    data = json.loads(out)
    names = {t["name"] for t in data["tools"]}
    assert {"file_read", "shell_run", "git_status", "web_fetch"} <= names
    assert data["load_errors"] == []
    read = next(t for t in data["tools"] if t["name"] == "file_read")
    assert read["risk"] == "read"
    assert read["origin"] == "magray-tools:file_read"


def test_list_table_and_disabled(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGRAY_TOOLS__DISABLED", '["shell_run"]')
    code, out, _ = invoke("tools", "list")
    assert code == 0
    assert "file_read" in out
    assert "shell_run" not in out
    code, out, _ = invoke("tools", "list", "--all")
    assert "shell_run (disabled)" in out


def test_describe(ws: Path) -> None:
    code, out, _ = invoke("tools", "describe", "file_grep")
    assert code == 0
    assert "risk: read" in out
    assert "pattern" in out
    assert "magray tools run file_grep --args" in out
    code, out, _ = invoke("tools", "describe", "file_grep", "--json")
    data = json.loads(out)
    assert data["schema"]["function"]["name"] == "file_grep"
    assert "pattern" in data["parameters"]["required"]


def test_describe_unknown_tool_suggests(ws: Path) -> None:
    code, _, exc = invoke("tools", "describe", "file_reed")
    assert code != 0
    assert exc is not None
    assert "file_read" in (getattr(exc, "hint", "") or "")


def test_run_json_ok(ws: Path) -> None:
    code, out, _ = invoke(
        "tools", "run", "file_read", "--args", '{"path": "notes.txt", "start_line": 2}', "--json"
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["ok"] is True
    assert data["content"] == "second\n"
    assert data["data"]["start_line"] == 2


def test_run_args_from_stdin_and_file(ws: Path) -> None:
    code, out, _ = invoke("tools", "run", "file_read", "--args", "-", input='{"path": "notes.txt"}')
    assert code == 0
    assert "first" in out
    (ws / "args.json").write_text('{"pattern": "sec"}')
    code, out, _ = invoke("tools", "run", "file_grep", "--args", "@args.json")
    assert "notes.txt:2:second" in out


def test_run_json_denied_exit_code(ws: Path) -> None:
    code, out, _ = invoke(
        "tools", "run", "file_read", "--args", '{"path": "/etc/passwd"}', "--json"
    )
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    assert data["error"]["code"] == "permission.policy"


def test_run_bad_args_exit_2(ws: Path) -> None:
    code, out, _ = invoke("tools", "run", "file_read", "--args", '{"nope": 1}', "--json")
    assert code == 2
    assert json.loads(out)["error"]["code"] == "validation.tool_args"


def test_run_ask_needs_yes(ws: Path) -> None:
    args = json.dumps({"command": "rm notes.txt"})
    code, out, _ = invoke("tools", "run", "shell_run", "--args", args, "--json")
    assert code == 1
    assert json.loads(out)["error"]["code"] == "permission.unconfirmed"
    assert (ws / "notes.txt").exists()
    code, out, _ = invoke("tools", "run", "shell_run", "--args", args, "--yes", "--json")
    assert code == 0, out
    assert not (ws / "notes.txt").exists()


def test_run_workspace_option(ws: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "o.txt").write_text("other root\n")
    code, out, _ = invoke(
        "tools", "run", "file_read", "-w", str(other), "--args", '{"path": "o.txt"}', "--json"
    )
    assert code == 0, out
    assert json.loads(out)["content"] == "other root\n"


def test_end_to_end_through_the_console_script(ws: Path, run_magray) -> None:  # type: ignore[no-untyped-def]
    write = run_magray(
        "tools", "run", "file_write", "--json",
        "--args", json.dumps({"path": "out/new.txt", "content": "made by magray\n"}),
    )  # fmt: skip
    assert write.returncode == 0, write.stderr
    assert json.loads(write.stdout)["ok"] is True
    assert (ws / "out" / "new.txt").read_text() == "made by magray\n"

    denied = run_magray("tools", "run", "file_read", "--args", '{"path": "../x"}')
    assert denied.returncode == 1
    assert denied.stderr.startswith("error[permission.policy]:")
    assert "hint:" in denied.stderr
    assert "Traceback" not in denied.stderr

    unknown = run_magray("tools", "run", "no_such_tool")
    assert unknown.returncode == 3
    assert unknown.stderr.startswith("error[not_found.tool]")


def test_end_to_end_git(ws: Path, run_magray) -> None:  # type: ignore[no-untyped-def]
    env = {
        "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.org",
        "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@example.org",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(ws.parent / "gitconfig"),
    }  # fmt: skip
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=ws, check=True)
    add = run_magray("tools", "run", "git_add", "--args", '{"paths": ["notes.txt"]}', env=env)
    assert add.returncode == 0, add.stderr
    args = '{"message": "add notes"}'
    asked = run_magray("tools", "run", "git_commit", "--args", args, env=env)
    assert asked.returncode == 1  # committing asks by default; no terminal here
    assert "tools.allow_commit" in asked.stderr
    commit = run_magray("tools", "run", "git_commit", "--json", "--yes", "--args", args, env=env)
    assert commit.returncode == 0, commit.stderr
    log = run_magray("--json", "tools", "run", "git_log", env=env)
    assert json.loads(log.stdout)["data"]["commits"][0]["subject"] == "add notes"


def test_dry_run_shows_the_decision_without_running(ws: Path) -> None:
    args = json.dumps({"command": "rm notes.txt"})
    code, out, _ = invoke("tools", "run", "shell_run", "--dry-run", "--args", args, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["action"] == "ask"
    assert "deletes files" in data["reason"]
    assert (ws / "notes.txt").exists()
    code, out, _ = invoke(
        "tools", "run", "shell_run", "--dry-run", "--args", '{"command": "sudo ls"}'
    )
    assert out.startswith("deny: runs as another user")


def test_policy_shows_rules_from_file(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy_file = ws / "policy.toml"
    policy_file.write_text(
        '[[rules]]\ntool = "shell_run"\naction = "allow"\nargs = { command = "make*" }\n'
    )
    monkeypatch.setenv("MAGRAY_TOOLS__POLICY_FILE", str(policy_file))
    code, out, _ = invoke("tools", "policy", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["write_roots"] == [str(ws.resolve())]
    assert data["rules"] == [
        {"tool": "shell_run", "action": "allow", "args": {"command": "make*"}, "reason": None,
         "source": str(policy_file)}
    ]  # fmt: skip
    code, out, _ = invoke("tools", "run", "shell_run", "--dry-run", "--args", '{"command": "make"}')
    assert out.startswith("allow:")
    code, out, _ = invoke("tools", "policy")
    assert "the last match wins" in out


def test_failed_command_prints_its_output_and_a_one_line_error(ws: Path, run_magray) -> None:  # type: ignore[no-untyped-def]
    failed = run_magray("tools", "run", "shell_run", "--args", '{"command": "ls no-such-file"}')
    assert failed.returncode == 1
    assert "no-such-file" in failed.stdout  # the command's stderr is part of the result
    assert "error[" not in failed.stdout
    assert failed.stderr.startswith("error[tool.shell.exit_status]: command exited with status")


def test_policy_prints_the_mechanism_and_true_defaults(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = invoke("tools", "policy", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["sandbox"] == "workspace-write"
    assert data["sandbox_mechanism"] in {"bwrap", "landlock"}  # this machine and CI
    assert data["allow_overwrite"] is False
    assert data["allow_commit"] is False
    code, out, _ = invoke("tools", "policy")
    assert "file_write overwrite asks; git_commit asks" in out
    monkeypatch.setenv("MAGRAY_TOOLS__SANDBOX_MECHANISM", "none")
    monkeypatch.setenv("MAGRAY_TOOLS__ALLOW_COMMIT", "true")
    code, out, _ = invoke("tools", "policy")
    assert "sandbox_mechanism        none" in out
    assert "others ask: no OS sandbox confines them" in out
    assert "git_commit runs" in out
