"""Shell classifier and the shell tool with real subprocesses."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from magray.tools import Action, CancelToken, Policy, ToolContext, ToolRegistry, run_process
from magray.tools.builtin import classify
from magray.tools.builtin._shlex import ShellSyntaxError, Word, tokenize

# ---------------------------------------------------------------------- tokenizer


def words(command: str) -> list[str]:
    return [t.text for t in tokenize(command) if isinstance(t, Word)]


def test_tokenizer_removes_quotes_like_a_shell() -> None:
    assert words("r\\m -rf '/'") == ["rm", "-rf", "/"]
    assert words("echo \"a b\" 'c d' e\\ f") == ["echo", "a b", "c d", "e f"]
    assert words("ls # comment") == ["ls"]
    tokens = tokenize("a && b | c; d 2>&1 > out")
    assert [getattr(t, "text", t) for t in tokens] == [
        "a", "&&", "b", "|", "c", ";", "d", ">&", "1", ">", "out",
    ]  # fmt: skip
    sub = tokenize('echo "$(rm -rf /)"')[1]
    assert isinstance(sub, Word)
    assert sub.substitutions == ["rm -rf /"]
    with pytest.raises(ShellSyntaxError):
        tokenize("echo 'unclosed")


# ---------------------------------------------------------------------- classifier
@pytest.mark.parametrize(
    "command",
    ["ls -la", "git status", "git log --oneline -5", "cat README.md", "grep -rn foo src",
     "wc -l a b", "find . -name '*.py'", "python3 --version", "git branch", "pwd",
     "sed -n '1,5p' a.txt", "nice -n 5 ls", "env"],
)  # fmt: skip
def test_read_only_commands_are_allowed(command: str, workspace: Path, policy: Policy) -> None:
    verdict = classify(command, policy=policy, cwd=workspace)
    assert verdict.action is Action.ALLOW, verdict.reason
    assert not verdict.needs_shell


@pytest.mark.parametrize(
    "command",
    ["rm build.log", "make", "pip install x", "git commit -m x", "git push --force",
     "python script.py", "node -e 'x'", "mv a b", "cat /etc/hostname", "cat ../x",
     "sed -i s/a/b/ f",
     "xargs rm", "find . -delete", "awk '{print}' f", "bash script.sh", "git -c x=y log"],
)  # fmt: skip
def test_unknown_or_mutating_commands_ask(command: str, workspace: Path, policy: Policy) -> None:
    verdict = classify(command, policy=policy, cwd=workspace)
    assert verdict.action is Action.ASK, verdict.reason


def test_compound_commands_take_the_strictest_part(workspace: Path, policy: Policy) -> None:
    verdict = classify("ls && git status; cat a | wc -l", policy=policy, cwd=workspace)
    assert verdict.action is Action.ALLOW
    assert verdict.needs_shell
    assert len(verdict.parts) == 4
    worse = classify("ls && make", policy=policy, cwd=workspace)
    assert worse.action is Action.ASK
    worst = classify("ls && make && rm -rf /", policy=policy, cwd=workspace)
    assert worst.action is Action.DENY
    assert "recursive delete of /" in worst.reason


def test_redirect_inside_workspace_is_allowed(workspace: Path, policy: Policy) -> None:
    assert classify("ls > out.txt", policy=policy, cwd=workspace).action is Action.ALLOW
    outside = classify("ls > /tmp/elsewhere.txt", policy=policy, cwd=workspace)
    assert outside.action is Action.ASK


# ---------------------------------------------------------------------- processes
def test_run_process_captures_and_reports(workspace: Path) -> None:
    result = run_process(
        [sys.executable, "-c",
         "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
        cwd=workspace, env=os.environ, timeout=20, max_output_bytes=1000,
    )  # fmt: skip
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.timed_out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_cancel_kills_the_whole_process_group(workspace: Path) -> None:
    pid_file = workspace / "grandchild.pid"
    (workspace / "parent.py").write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pid_file)!r} + '.tmp', 'w').write(str(child.pid))\n"
        f"import os; os.replace({str(pid_file)!r} + '.tmp', {str(pid_file)!r})\n"
        "time.sleep(120)\n"
    )
    token = CancelToken()

    def cancel_when_ready() -> None:  # cancel as soon as the grandchild exists
        while not pid_file.exists() and not token.wait(0.01):
            pass
        token.cancel()

    watcher = threading.Thread(target=cancel_when_ready, daemon=True)
    watcher.start()
    result = run_process(
        [sys.executable, "parent.py"], cwd=workspace, env=os.environ, timeout=60,
        max_output_bytes=1000, cancel=token,
    )  # fmt: skip
    watcher.join()
    assert result.cancelled, result.stderr
    assert not result.timed_out
    assert result.exit_code is not None
    assert result.exit_code < 0
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:  # wait for the kernel to reap it
        time.sleep(0.01)
    assert not _alive(grandchild)


def test_exit_watch_wakes_on_exit_through_a_pidfd(workspace: Path) -> None:
    import subprocess

    from magray.tools._proc import _ExitWatch

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    with _ExitWatch(proc) as watch:
        if sys.platform.startswith("linux"):
            assert watch.poller is not None  # no polling steps on Linux
            assert watch.fd >= 0
        assert not watch.wait(0.01)  # still running
        start = time.monotonic()
        assert watch.wait(30.0)
        assert time.monotonic() - start < 10
        assert proc.returncode == 0
        fd = watch.fd
    if fd >= 0:
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(fd)  # closed with the watch


def test_endless_output_is_capped_and_killed(workspace: Path) -> None:
    result = run_process(["yes"], cwd=workspace, env=os.environ, timeout=20, max_output_bytes=2048)
    assert result.output_limit_hit
    assert result.truncated
    assert len(result.stdout) == 2048
    assert result.duration_s < 10


def test_shell_tool_runs_direct_commands(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    (workspace / "hello.txt").write_text("hello\n")
    result = registry.call("shell_run", {"command": "cat 'hello.txt'"}, ctx)
    assert result.ok, result.content
    assert result.data["stdout"] == "hello\n"
    assert result.data["exit_code"] == 0
    assert result.data["mode"] == "workspace-write"
    assert result.data["sandbox"] in {"bwrap", "landlock"}
    assert "[exit 0" in result.content


def test_shell_tool_reports_failure_exit_code(
    registry: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    result = registry.call("shell_run", {"command": "ls no-such-file"}, ctx)
    assert not result.ok
    assert result.error["code"] == "tool.shell.exit_status"  # type: ignore[index]
    assert result.data["exit_code"] != 0
    assert "no-such-file" in result.data["stderr"]
    missing = registry.call("shell_run", {"command": "ls", "cwd": "nope"}, ctx)
    assert not missing.ok


def test_shell_syntax_needs_allow_shell(registry: ToolRegistry, workspace: Path) -> None:
    (workspace / "a.txt").write_text("one\ntwo\n")
    strict = ToolContext(policy=Policy.for_workspace(workspace))
    refused = registry.call("shell_run", {"command": "cat a.txt | wc -l"}, strict)
    assert refused.error["code"] == "permission.policy"  # type: ignore[index]
    assert "allow_shell" in refused.error["message"]  # type: ignore[index]
    shell = ToolContext(policy=Policy.for_workspace(workspace, allow_shell=True))
    ok = registry.call("shell_run", {"command": "cat a.txt | wc -l"}, shell)
    assert ok.ok, ok.content
    assert ok.data["stdout"].strip() == "2"


def test_shell_child_env_has_no_secrets(
    registry: ToolRegistry, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("HARMLESS_SETTING", "visible")
    monkeypatch.setenv("LISTED_SETTING", "listed")
    policy = Policy.for_workspace(workspace, assume_yes=True, env_passthrough=("LISTED_*",))
    result = registry.call("shell_run", {"command": "env"}, ToolContext(policy=policy))
    assert result.ok
    assert "LISTED_SETTING=listed" in result.data["stdout"]
    assert "HARMLESS_SETTING" not in result.data["stdout"]  # an allow-list, not a deny-list
    assert "sk-should-not-leak" not in result.data["stdout"]
    assert "MY_API_KEY" not in result.data["stdout"]


def test_shell_tool_timeout(registry: ToolRegistry, workspace: Path) -> None:
    ctx = ToolContext(policy=Policy.for_workspace(workspace, assume_yes=True))
    result = registry.call("shell_run", {"command": "sleep 30", "timeout": 0.3}, ctx)
    assert not result.ok
    assert result.error["code"] == "timeout.tool"  # type: ignore[index]
    assert result.data["timed_out"]
    assert result.duration_s < 10


def test_ask_commands_need_confirmation(registry: ToolRegistry, workspace: Path) -> None:
    (workspace / "junk.txt").write_text("x")
    ctx = ToolContext(policy=Policy.for_workspace(workspace))
    refused = registry.call("shell_run", {"command": "rm junk.txt"}, ctx)
    assert refused.error["code"] == "permission.unconfirmed"  # type: ignore[index]
    assert (workspace / "junk.txt").exists()
    approved = ToolContext(policy=Policy.for_workspace(workspace), confirm=lambda _req: True)
    assert registry.call("shell_run", {"command": "rm junk.txt"}, approved).ok
    assert not (workspace / "junk.txt").exists()
