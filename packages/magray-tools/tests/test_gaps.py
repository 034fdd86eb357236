"""The classifier and rule gaps of issue #15, each kind closed (not only its example string)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from magray.tools import Action, Policy, Rule, ToolContext, ToolRegistry
from magray.tools.builtin import classify


@pytest.fixture
def ws(workspace: Path, outside: Path) -> Path:
    (workspace / "link").symlink_to(outside / "secret.txt")
    (workspace / "sub").mkdir()
    (workspace / "build.sh").write_text("#!/bin/sh\necho built\n")
    (workspace / "build.sh").chmod(0o755)
    return workspace


@pytest.mark.parametrize(
    ("command", "action"),
    [
        # programs that run other programs through an option
        ("sort --compress-program=sh a", Action.ASK),
        ("git grep -Ocat foo", Action.ASK),
        ("git grep --open-files-in-pager=vi foo", Action.ASK),
        ("git --config-env=diff.external=SHELL diff", Action.ASK),
        ("git -c core.pager=sh log", Action.ASK),
        ("git --exec-path=/tmp status", Action.ASK),
        ("find . -exec cat {} ;", Action.ASK),
        ("find . -execdir ls ;", Action.ASK),
        ("env -C /tmp cat x", Action.ASK),
        ("env --chdir=/tmp cat x", Action.ASK),
        # attached options and --opt=value carry paths
        ("sort -o/tmp/x a", Action.ASK),
        ("sort -nofile a", Action.ASK),
        ("date -f{out}/secret.txt", Action.ASK),
        ("grep --file={out}/secret.txt x", Action.ASK),
        ("cat link", Action.ASK),  # a relative path through a symlink inside the workspace
        ("cat ./..", Action.ASK),
        ("ls sub/../..", Action.ASK),
        ("cd .. && cat wsx/secret.txt", Action.ASK),
        ("cd sub && cat ../../wsx/secret.txt", Action.ASK),
        ("find . {out} -name x", Action.ASK),
        ("git diff --no-index {out}/secret.txt x", Action.ASK),
        ("git -C {out} log", Action.ASK),
        ("git --work-tree={out} status", Action.ASK),
        # wrappers never lower the inner verdict
        ("flock LOCK rm -rf /", Action.DENY),
        ("flock -c 'rm -rf ~' LOCK", Action.DENY),
        ("strace -f rm -rf /", Action.DENY),
        ("unshare -r rm -rf ~", Action.DENY),
        ("script -qc 'rm -rf /'", Action.DENY),
        ("bash -o posix -c 'rm -rf /'", Action.DENY),
        ("ltrace sudo ls", Action.DENY),
        ("nice -n 5 flock L mkfs.ext4 /dev/sda", Action.DENY),
        ("someunknownwrapper --x rm -rf /", Action.DENY),
        ("xargs -a {out}/secret.txt echo", Action.ASK),
        ("xargs --arg-file={out}/secret.txt echo", Action.ASK),
        # executables from the workspace
        ("./build.sh --version", Action.ASK),
        ("sub/../build.sh", Action.ASK),
        # environments of other processes
        ("ps eww", Action.ASK),
        ("ps -e", Action.ASK),
        # still allowed: plain reads inside the workspace
        ("cat build.sh", Action.ALLOW),
        ("ls -la sub", Action.ALLOW),
        ("git log -5 --oneline", Action.ALLOW),
        ("git -C sub status", Action.ALLOW),
        ("grep -rn echo .", Action.ALLOW),
        ("find . -name '*.sh'", Action.ALLOW),
        ("ps aux", Action.ALLOW),
    ],
)
def test_gap_kinds(ws: Path, outside: Path, command: str, action: Action) -> None:
    policy = Policy.for_workspace(ws)
    verdict = classify(command.replace("{out}", str(outside)), policy=policy, cwd=ws)
    assert verdict.action is action, verdict.reason


@pytest.mark.parametrize(
    "command",
    ["git push", "git  push", "git -C . push", "git --no-pager push", "git -c x=y push",
     "env git push origin", "nice git --git-dir=.git push", "flock L git push", "ls && git push"],
)  # fmt: skip
def test_user_rules_match_the_parsed_command(
    registry: ToolRegistry, ws: Path, command: str
) -> None:
    rule = Rule("shell_run", Action.DENY, {"command": "git push*"}, "no pushes")
    policy = Policy.for_workspace(ws, rules=(rule,), allow_shell=True, assume_yes=True)
    decision = registry.decide("shell_run", {"command": command}, ToolContext(policy))
    assert decision.action is Action.DENY, decision.reason


def test_allow_rules_need_every_part(registry: ToolRegistry, ws: Path) -> None:
    rule = Rule("shell_run", Action.ALLOW, {"command": "make*"})
    ctx = ToolContext(Policy.for_workspace(ws, rules=(rule,), allow_shell=True))
    assert registry.decide("shell_run", {"command": "make test"}, ctx).action is Action.ALLOW
    both = registry.decide("shell_run", {"command": "make && rm -r sub"}, ctx)
    assert both.action is Action.ASK


def test_path_rules_cover_every_file_tool_and_shell(registry: ToolRegistry, ws: Path) -> None:
    (ws / ".env").write_text("DB_PASSWORD=hunter2\n")
    (ws / "sub" / ".env").write_text("TOKEN=hunter3\n")
    (ws / "ok.txt").write_text("hunter-free\n")
    rule = Rule("*", Action.DENY, {"path": "*/.env"}, "secrets")
    ctx = ToolContext(Policy.for_workspace(ws, rules=(rule,), assume_yes=True))
    grep = registry.call("file_grep", {"pattern": "hunter", "include_hidden": True}, ctx)
    assert grep.ok, grep.content
    assert "hunter2" not in grep.content
    assert "hunter3" not in grep.content
    assert "ok.txt" in grep.content
    listed = registry.call("file_list", {"include_hidden": True}, ctx)
    assert ".env" not in listed.content
    globbed = registry.call("file_glob", {"pattern": "**/.env", "include_hidden": True}, ctx)
    assert globbed.ok, globbed.content
    assert not [m for m in globbed.data["matches"] if m.endswith(".env")]
    assert not registry.call("file_read", {"path": "sub/.env"}, ctx).ok
    for command in ("cat .env", "cat sub/../.env", "grep x sub/.env", "cd sub && cat .env"):
        decision = registry.decide("shell_run", {"command": command}, ctx)
        assert decision.action is Action.DENY, (command, decision.reason)


@pytest.mark.parametrize("name", [".GIT", ".Git", ".git.", ".git "])
def test_writes_into_git_refused_in_any_case(registry: ToolRegistry, ws: Path, name: str) -> None:
    (ws / ".git").mkdir()
    ctx = ToolContext(Policy.for_workspace(ws))
    result = registry.call("file_write", {"path": f"{name}/config", "content": "x"}, ctx)
    assert result.error["code"] == "permission.policy"  # type: ignore[index]
    assert not (ws / ".git" / "config").exists()


def test_file_write_never_makes_an_executable(registry: ToolRegistry, ws: Path) -> None:
    policy = Policy.for_workspace(ws, allow_overwrite=True)
    done = registry.call(
        "file_write",
        {"path": "build.sh", "content": "#!/bin/sh\nid\n", "overwrite": True},
        ToolContext(policy),
    )
    assert done.ok, done.content
    assert not os.access(ws / "build.sh", os.X_OK)
    registry.call("file_write", {"path": "new.sh", "content": "#!/bin/sh\n"}, ToolContext(policy))
    assert not os.access(ws / "new.sh", os.X_OK)
