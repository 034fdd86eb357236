"""The OS sandbox: real bubblewrap and Landlock children, the env allow-list, lifetime."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from magray.tools import (
    Confinement,
    Policy,
    ToolContext,
    ToolRegistry,
    bwrap_argv,
    detect_mechanism,
    run_confined,
    seatbelt_profile,
)

from .conftest import Server, git

MECHANISMS = ("bwrap", "landlock")


def need(mechanism: str) -> None:
    found = detect_mechanism(mechanism)
    if found.name != mechanism:
        pytest.skip(f"{mechanism} is not usable here: {found.detail}")


def ctx_for(workspace: Path, mechanism: str, **options: object) -> ToolContext:
    need(mechanism)
    policy = Policy.for_workspace(
        workspace, sandbox_mechanism=mechanism, allow_shell=True, assume_yes=True, **options
    )
    return ToolContext(policy=policy)


def sh(registry: ToolRegistry, ctx: ToolContext, command: str) -> tuple[bool, str]:
    result = registry.call("shell_run", {"command": command}, ctx)
    return result.ok, result.content


def test_this_machine_has_a_sandbox() -> None:
    # The project's machines and CI support both; a skip elsewhere names the reason.
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    assert detect_mechanism("auto").name in MECHANISMS


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_writes_only_in_the_workspace(
    registry: ToolRegistry, workspace: Path, outside: Path, mechanism: str
) -> None:
    ctx = ctx_for(workspace, mechanism)
    ok, out = sh(registry, ctx, "sh -c 'echo in > made-inside && echo out > ../wsx/pwned'")
    assert not ok
    assert (workspace / "made-inside").read_text() == "in\n"
    assert not (outside / "pwned").exists()
    ok, out = sh(registry, ctx, f"cat {outside}/secret.txt")
    assert not ok
    assert "top secret" not in out


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_home_and_parent_environment_are_hidden(
    registry: ToolRegistry, workspace: Path, mechanism: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAGRAY_TEST_API_KEY", "sk-parent-secret-123")
    ctx = ctx_for(workspace, mechanism)
    ok, out = sh(registry, ctx, f"cat /proc/{os.getpid()}/environ")
    assert not ok
    assert "sk-parent-secret-123" not in out
    ok, out = sh(registry, ctx, "sh -c 'echo $HOME; ls -A ~'")
    assert ok, out
    assert str(Path.home()) not in out.splitlines()[2]
    ok, out = sh(registry, ctx, f"ls -A {Path.home()}")
    # Missing, refused, or showing only the parents of PATH entries bound read-only.
    home = Path.home()
    allowed = {
        Path(d).relative_to(home).parts[0]
        for d in os.environ.get("PATH", "").split(":")
        if d and Path(d).is_relative_to(home) and Path(d) != home
    }
    assert not ok or set(out.splitlines()[2:]) <= allowed, out


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_network_is_off_unless_allowed(
    registry: ToolRegistry, workspace: Path, mechanism: str, http_server: Server
) -> None:
    port = http_server.base.rsplit(":", 1)[1]
    code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)"
    command = f'{sys.executable} -c "{code}"'
    ok, _ = sh(registry, ctx_for(workspace, mechanism), command)
    assert not ok
    assert http_server.hits == []
    ok, out = sh(registry, ctx_for(workspace, mechanism, sandbox_network=True), command)
    assert ok, out


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_read_only_mode_writes_nothing(
    registry: ToolRegistry, workspace: Path, mechanism: str
) -> None:
    ctx = ctx_for(workspace, mechanism, sandbox="read-only")
    ok, _ = sh(registry, ctx, "touch made")
    assert not ok
    assert not (workspace / "made").exists()
    ok, out = sh(registry, ctx, "sh -c 'echo t > $TMPDIR/x && cat $TMPDIR/x'")
    assert ok, out  # a private temp dir stays writable


def test_per_call_wider_mode_asks(registry: ToolRegistry, workspace: Path) -> None:
    policy = Policy.for_workspace(workspace, sandbox="read-only")
    refused = registry.call(
        "shell_run", {"command": "touch x", "sandbox": "workspace-write"}, ToolContext(policy)
    )
    assert refused.error["code"] == "permission.unconfirmed"  # type: ignore[index]
    assert "wider than tools.sandbox" in refused.error["message"]  # type: ignore[index]
    narrower = registry.call(
        "shell_run", {"command": "ls", "sandbox": "read-only"}, ToolContext(policy)
    )
    assert narrower.ok, narrower.content


def test_bwrap_keeps_git_read_only_for_commands(
    registry: ToolRegistry, workspace: Path, git_env: None
) -> None:
    ctx = ctx_for(workspace, "bwrap")
    assert sh(registry, ctx, "true")[0]  # a call before `git init` (the mounts are cached)
    git(workspace, "init", "-q")
    ok, _ = sh(registry, ctx, "sh -c 'echo x > .git/hooks/pre-commit'")
    assert not ok
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()
    (workspace / "a.txt").write_text("a\n")
    assert registry.call("git_add", {"paths": ["a.txt"]}, ctx).ok  # the git tools may
    done = registry.call("git_commit", {"message": "one"}, ctx)
    assert done.ok, done.content


def test_unconfined_writes_ask(registry: ToolRegistry, workspace: Path) -> None:
    off = ToolContext(Policy.for_workspace(workspace, sandbox_mechanism="none"))
    refused = registry.call("shell_run", {"command": "touch made"}, off)
    assert refused.error["code"] == "permission.unconfirmed"  # type: ignore[index]
    assert "no OS sandbox" in refused.error["message"]  # type: ignore[index]
    assert registry.call("shell_run", {"command": "ls"}, off).ok  # plainly read-only
    need("bwrap")
    on = ToolContext(Policy.for_workspace(workspace))
    assert registry.call("shell_run", {"command": "touch made"}, on).ok


def test_children_die_with_magray(workspace: Path, tmp_path: Path) -> None:
    need(detect_mechanism("auto").name)
    marker = tmp_path / "pid"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from magray.tools import Policy, ToolContext, ToolRegistry
        ctx = ToolContext(Policy.for_workspace(Path({str(workspace)!r}), allow_shell=True,
                                               assume_yes=True, timeout=60))
        Path({str(marker)!r}).write_text("go")
        ToolRegistry.from_entry_points().call(
            "shell_run", {{"command": "sh -c 'echo started > alive; sleep 40; echo late > alive'"}},
            ctx)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not (workspace / "alive").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (workspace / "alive").exists()
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        time.sleep(0.5)
        found = subprocess.run(
            ["pgrep", "-f", "sleep 40"], capture_output=True, text=True, check=False
        )
        assert found.stdout.strip() == "", "the child outlived magray"
    finally:
        parent.kill()


def test_run_confined_reports_mechanism_and_missing_program(workspace: Path) -> None:
    need(detect_mechanism("auto").name)
    policy = Policy.for_workspace(workspace)
    done = run_confined(["true"], policy=policy, cwd=workspace, timeout=10)
    assert done.ok
    assert done.sandbox == detect_mechanism("auto").name
    assert done.mode == "workspace-write"
    from magray.tools import ShellError

    with pytest.raises(ShellError) as err:
        run_confined(["no-such-program-x"], policy=policy, cwd=workspace, timeout=10)
    assert err.value.code == "tool.shell.not_found"


def test_bwrap_argv_shape(workspace: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (workspace / ".GIT").mkdir()
    conf = Confinement("workspace-write", read_roots=(docs,), write_roots=(workspace,))
    argv = bwrap_argv("bwrap", ["ls"], conf, workspace, path_var="/usr/bin")
    assert argv[:3] == ["bwrap", "--die-with-parent", "--unshare-pid"]
    assert "--unshare-pid" in argv
    assert "--unshare-net" in argv
    assert "/" not in [argv[i + 1] for i, a in enumerate(argv) if "bind" in a]
    bind = argv.index("--bind-try")
    assert argv[bind + 1 : bind + 3] == [str(workspace)] * 2
    assert argv.index("--tmpfs") < bind  # the workspace is mounted over the tmpfs
    git_ro = argv.index(str(workspace / ".GIT"))
    assert argv[git_ro - 1] == "--ro-bind"
    assert git_ro > bind
    assert argv[-2:] == ["--", "ls"]
    net = Confinement("workspace-write", (), (workspace,), network=True)
    assert "--unshare-net" not in bwrap_argv("bwrap", ["ls"], net, workspace, path_var="")


def test_bwrap_argv_binds_a_git_made_after_the_first_call(workspace: Path) -> None:
    conf = Confinement("workspace-write", read_roots=(), write_roots=(workspace,))
    before = bwrap_argv("bwrap", ["ls"], conf, workspace, path_var="/usr/bin")
    assert not any(".git" in a for a in before)
    (workspace / ".Git").mkdir()
    after = bwrap_argv("bwrap", ["ls"], conf, workspace, path_var="/usr/bin")
    assert after[after.index(str(workspace / ".Git")) - 1] == "--ro-bind"
    git_writable = dataclasses.replace(conf, git_writable=True)
    assert str(workspace / ".Git") not in bwrap_argv("bwrap", ["ls"], git_writable, workspace,
                                                     path_var="/usr/bin")  # fmt: skip


def test_bwrap_argv_skips_path_dirs_another_bind_shows(workspace: Path, tmp_path: Path) -> None:
    inner = workspace / "venv" / "bin"  # e.g. the project's venv on PATH
    inner.mkdir(parents=True)
    tools = tmp_path / "tools"
    (tools / "bin").mkdir(parents=True)
    conf = Confinement("workspace-write", read_roots=(), write_roots=(workspace,))
    path_var = os.pathsep.join([str(inner), str(tools), str(tools / "bin")])
    argv = bwrap_argv("bwrap", ["ls"], conf, workspace, path_var=path_var)
    bound = [argv[i + 1] for i, a in enumerate(argv) if "bind" in a]
    assert str(inner) not in bound  # the workspace bind shows it
    assert str(tools) in bound
    assert str(tools / "bin") not in bound  # beneath tools


def test_bwrap_argv_never_binds_a_parent_of_home(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "tools"
    (tools / "home").mkdir(parents=True)
    conf = Confinement("workspace-write", read_roots=(), write_roots=(workspace,))
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))
    first = bwrap_argv("bwrap", ["ls"], conf, workspace, path_var=str(tools))
    assert str(tools) in first  # an ordinary PATH directory is bound read-only
    monkeypatch.setenv("HOME", str(tools / "home"))  # the same call, HOME now inside it
    second = bwrap_argv("bwrap", ["ls"], conf, workspace, path_var=str(tools))
    assert str(tools) not in second


def test_seatbelt_profile_text(workspace: Path, tmp_path: Path) -> None:
    conf = Confinement("workspace-write", read_roots=(), write_roots=(Path('/Users/a "b"/ws'),))
    text = seatbelt_profile(conf, private=tmp_path, path_var="/usr/bin:/opt/homebrew/bin")
    lines = text.splitlines()
    assert lines[:2] == ["(version 1)", "(deny default)"]
    assert '(subpath "/opt/homebrew/bin")' in text
    assert (
        '(require-all (subpath "/Users/a \\"b\\"/ws") '
        '(require-not (subpath "/Users/a \\"b\\"/ws/.git")))'
    ) in text
    assert "network" not in text
    assert "(allow file-read*)" not in text  # no blanket read of the disk
    ro = seatbelt_profile(
        Confinement("read-only", (), (workspace,), network=True), private=tmp_path
    )
    write_block = ro.split("(allow file-write*", 1)[1].split(")\n", 1)[0]
    assert str(workspace) not in write_block
    assert "(allow network-outbound)" in ro
    full = seatbelt_profile(Confinement("full", (), (workspace,)), private=tmp_path)
    assert "(allow file-write*)" in full


def test_nested_roots_keep_their_own_mode(
    registry: ToolRegistry, workspace: Path, tmp_path: Path
) -> None:
    need("bwrap")
    vendor = workspace / "vendor"  # read-only inside the writable workspace
    vendor.mkdir()
    outer = tmp_path / "docs"  # a writable project inside a read-only tree
    (outer / "proj").mkdir(parents=True)
    policy = Policy(
        write_roots=(workspace, outer / "proj"),
        read_roots=(vendor, outer),
        allow_shell=True,
        assume_yes=True,
    )
    ctx = ToolContext(policy)
    assert not sh(registry, ctx, f"touch {vendor}/x")[0]
    assert not (vendor / "x").exists()
    assert sh(registry, ctx, f"touch {outer}/proj/y")[0]
    assert not sh(registry, ctx, f"touch {outer}/z")[0]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_passed_descriptors_reach_the_command(
    registry: ToolRegistry, workspace: Path, tmp_path: Path, mechanism: str
) -> None:
    import fcntl

    lock_path = tmp_path / "task.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        ctx = ctx_for(workspace, mechanism)
        ctx.pass_fds = (fd,)
        ok, out = sh(registry, ctx, f"ls /proc/self/fd/{fd}")
        assert ok, out  # the command holds the descriptor (and with it the lock)
        ctx.pass_fds = ()
        ok, _ = sh(registry, ctx, f"ls /proc/self/fd/{fd}")
        assert not ok  # nothing else leaks into the sandbox
    finally:
        os.close(fd)


_PTRACE_PROBE = """
import os, subprocess, sys
if sys.argv[1] == "parent":  # the stand-in for magray: its child reads its environment
    modes = ("free", "confined")
    run = [subprocess.run([sys.executable, __file__, m], capture_output=True, text=True)
           for m in modes]
    print(" ".join(r.stdout.strip() or r.stderr.strip() for r in run))
    sys.exit()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _landlock import restrict
if sys.argv[1] == "confined":
    restrict(["/"], [], network=False)  # every path readable, all of /proc included
try:
    open(f"/proc/{os.getppid()}/environ", "rb").read()
    print("read")
except PermissionError:
    print("refused")
"""


def test_landlock_ptrace_scope_hides_other_processes_environ() -> None:
    # With all of /proc readable by the rules, a process inside a Landlock domain still
    # may not inspect one outside it: the kernel's ptrace check refuses
    # /proc/<parent>/environ. Measured: this holds for an ordinary user; a root magray
    # reads it (so the command's rules grant only its own /proc entry).
    need("landlock")
    import shutil
    import tempfile

    from magray.tools import _landlock

    python, user = sys.executable, None
    if os.geteuid() == 0:  # run the probe as nobody, with a python nobody may execute
        python, user = "/usr/bin/python3", 65534
        if not os.access(python, os.X_OK):
            pytest.skip("root, and no /usr/bin/python3 to run the probe as nobody")
    probe_dir = Path(tempfile.mkdtemp(prefix="magray-ptrace-"))
    try:
        probe_dir.chmod(0o755)
        shutil.copy(_landlock.__file__, probe_dir / "_landlock.py")
        (probe_dir / "probe.py").write_text(_PTRACE_PROBE)
        for f in probe_dir.iterdir():
            f.chmod(0o644)
        out = subprocess.run(
            [python, str(probe_dir / "probe.py"), "parent"],
            capture_output=True, text=True, check=True, user=user, group=user,
            extra_groups=[] if user is not None else None, cwd=probe_dir,
        )  # fmt: skip
    finally:
        shutil.rmtree(probe_dir)
    assert out.stdout.split() == ["read", "refused"], out


def test_landlock_supervisor_passes_exit_codes_and_ends_leftovers(workspace: Path) -> None:
    need("landlock")
    policy = Policy.for_workspace(workspace, sandbox_mechanism="landlock")
    done = run_confined(["sh", "-c", "exit 3"], policy=policy, cwd=workspace, timeout=10)
    assert (done.exit_code, done.sandbox) == (3, "landlock")
    killed = run_confined(["sh", "-c", "kill -9 $$"], policy=policy, cwd=workspace, timeout=10)
    assert killed.exit_code == 128 + signal.SIGKILL
    marker = "sleep 7793"
    start = time.monotonic()
    stopped = run_confined(
        ["sh", "-c", f"setsid {marker} & exec sleep 60"], policy=policy, cwd=workspace, timeout=1
    )
    assert stopped.timed_out
    assert time.monotonic() - start < 10  # Popen did not wait for the supervisor
    time.sleep(0.2)
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    assert found.stdout.strip() == "", "the setsid'd grandchild outlived the call"


def test_landlock_supervisor_keeps_no_descriptor_of_magray(workspace: Path, tmp_path: Path) -> None:
    # The supervisor is a fork of magray that never execs: it must close what it inherited
    # (another call's exec-error pipe or output pipes would make that call wait for this
    # supervisor; magray's own files would stay open).
    import threading

    need("landlock")
    policy = Policy.for_workspace(workspace, sandbox_mechanism="landlock")
    held = (tmp_path / "magray-file").open("w")  # any descriptor magray holds
    options = {"policy": policy, "cwd": workspace, "timeout": 20}
    call = threading.Thread(target=run_confined, args=(["sleep", "3"],), kwargs=options)
    call.start()
    try:
        me, supervisor = os.getpid(), None
        deadline = time.monotonic() + 10
        while supervisor is None and time.monotonic() < deadline:
            for entry in Path("/proc").iterdir():
                try:
                    stat = (entry / "stat").read_text()
                except (OSError, ValueError):
                    continue
                fields = stat.rsplit(")", 1)[-1].split()
                if entry.name.isdigit() and int(fields[1]) == me and fields[0] != "Z":
                    children = (entry / "task" / entry.name / "children").read_text().split()
                    if children:  # the supervisor, with the command forked
                        supervisor = int(entry.name)
            time.sleep(0.02)
        assert supervisor is not None
        time.sleep(0.2)  # past the fork: the supervisor has closed what it inherited
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{supervisor}/fd"))
        assert fds == [0, 1, 2]
        assert held.fileno() > 2
    finally:
        call.join(30)
        held.close()
