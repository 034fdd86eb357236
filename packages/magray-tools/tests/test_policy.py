"""The sandbox policy: path resolution, rules, policy files, addresses, env scrubbing."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from magray.common.errors import ConfigError
from magray.common.settings import ToolsSettings
from magray.tools import Action, Policy, PolicyDeniedError, Rule, child_env, is_secret_env


def test_prefix_sibling_is_outside(tmp_path: Path) -> None:
    # The Rust original compared string prefixes, so /home/a allowed /home/ab.
    a, ab = tmp_path / "a", tmp_path / "ab"
    a.mkdir()
    ab.mkdir()
    (ab / "f").write_text("x")
    policy = Policy.for_workspace(a)
    with pytest.raises(PolicyDeniedError, match="outside the readable roots"):
        policy.check_read(ab / "f")
    with pytest.raises(PolicyDeniedError):
        policy.check_write(str(ab / "f"))
    assert policy.check_read(a / "f") == (a / "f").resolve()


def test_relative_and_dotdot_paths(workspace: Path, policy: Policy) -> None:
    assert policy.check_read("sub/../x.txt") == workspace.resolve() / "x.txt"
    with pytest.raises(PolicyDeniedError):
        policy.check_read("../wsx/secret.txt")
    with pytest.raises(PolicyDeniedError):
        policy.check_read("sub/../../x")


def test_symlink_escape_is_resolved(workspace: Path, outside: Path, policy: Policy) -> None:
    (workspace / "link").symlink_to(outside)
    (workspace / "filelink").symlink_to(outside / "secret.txt")
    with pytest.raises(PolicyDeniedError, match="outside"):
        policy.check_read("link/secret.txt")
    with pytest.raises(PolicyDeniedError):
        policy.check_write("filelink")
    inner = workspace / "inner.txt"
    inner.write_text("ok")
    (workspace / "good").symlink_to(inner)
    assert policy.check_read("good") == inner.resolve()


def test_nul_byte_empty_and_loop(workspace: Path, policy: Policy) -> None:
    with pytest.raises(PolicyDeniedError, match="NUL"):
        policy.check_read("a\x00b")
    with pytest.raises(PolicyDeniedError, match="empty"):
        policy.check_read("  ")
    (workspace / "l1").symlink_to(workspace / "l2")
    (workspace / "l2").symlink_to(workspace / "l1")
    with pytest.raises(PolicyDeniedError):
        policy.check_read("l1/x")


def test_read_only_roots_are_not_writable(tmp_path: Path, workspace: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    policy = Policy(write_roots=(workspace,), read_roots=(docs,))
    assert policy.check_read(docs / "a") == docs.resolve() / "a"
    with pytest.raises(PolicyDeniedError, match="writable"):
        policy.check_write(docs / "a")


def test_git_dir_is_protected(workspace: Path, policy: Policy) -> None:
    with pytest.raises(PolicyDeniedError, match=r"\.git"):
        policy.check_write(".git/hooks/pre-commit")
    policy.check_read(".git/config")  # reading is fine


def test_rules_last_match_wins() -> None:
    policy = Policy(
        write_roots=(Path("/tmp"),),
        rules=(
            Rule("shell_*", Action.ASK),
            Rule("shell_run", Action.DENY, {"command": "git push*"}, "no pushing"),
            Rule("shell_run", Action.ALLOW, {"command": "git push --dry-run*"}),
        ),
    )
    match = policy.match_rule
    assert match("shell_run", {"command": ["ls"]}).action is Action.ASK  # type: ignore[union-attr]
    assert match("shell_run", {"command": ["git push origin"]}).reason == "no pushing"  # type: ignore[union-attr]
    assert match("shell_run", {"command": ["git push --dry-run x"]}).action is Action.ALLOW  # type: ignore[union-attr]
    assert match("file_read", {"path": ["x"]}) is None


def test_policy_from_settings_and_file(tmp_path: Path, workspace: Path) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(
        'network_allowlist = ["example.org"]\n'
        'allow_private_networks = ["127.0.0.1/32"]\n'
        'read_only = ["docs"]\n'
        "[[rules]]\n"
        'tool = "file_write"\naction = "ask"\nargs = { path = "*.toml" }\nreason = "config files"\n'
    )
    settings = ToolsSettings(
        workspace=[workspace],
        policy_file=policy_file,
        rules=[{"tool": "file_write", "action": "deny"}],  # type: ignore[list-item]
        network_allowlist=["*.python.org"],
        timeout=5,
    )
    policy = Policy.from_settings(settings)
    assert policy.write_roots == (workspace.resolve(),)
    assert policy.read_roots == ((tmp_path / "docs").resolve(),)
    assert policy.host_allowed("example.org")
    assert policy.host_allowed("docs.python.org")
    assert not policy.host_allowed("python.org.evil.com")
    assert policy.address_allowed(ipaddress.ip_address("127.0.0.1"))[0]
    # settings rule first, file rule last: the file's rule wins where both match
    rule = policy.match_rule("file_write", {"path": ["a.toml"]})
    assert rule is not None
    assert rule.action is Action.ASK
    assert rule.source == str(policy_file)
    assert policy.match_rule("file_write", {"path": ["a.py"]}).action is Action.DENY  # type: ignore[union-attr]
    assert policy.timeout == 5


def test_policy_file_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    policy_file = tmp_path / "p.toml"
    policy_file.write_text('read_only = ["~/notes"]\n')
    policy = Policy.from_settings(ToolsSettings(workspace=[tmp_path], policy_file=policy_file))
    assert policy.read_roots == ((tmp_path / "notes").resolve(),)


def test_bad_policy_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[[rules]]\naction = 'maybe'\n")
    with pytest.raises(ConfigError, match="invalid policy file"):
        Policy.from_settings(ToolsSettings(workspace=[tmp_path], policy_file=bad))
    bad.write_text("nonsense = [")
    with pytest.raises(ConfigError, match="cannot read policy file"):
        Policy.from_settings(ToolsSettings(workspace=[tmp_path], policy_file=bad))
    with pytest.raises(ConfigError, match="does not exist"):
        Policy.from_settings(ToolsSettings(workspace=[tmp_path], policy_file=tmp_path / "nope"))
    with pytest.raises(ConfigError, match="not an IP network"):
        Policy.for_workspace(tmp_path, allow_private_networks=["localhost"])


def test_default_workspace_is_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Policy.from_settings(ToolsSettings()).write_roots == (tmp_path.resolve(),)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("224.0.0.1", False),
        ("fd00:ec2::254", False),
    ],
)
def test_address_checks(address: str, allowed: bool) -> None:
    policy = Policy(write_roots=(Path("/tmp"),))
    ok, reason = policy.address_allowed(ipaddress.ip_address(address))
    assert ok is allowed, reason


def test_allowed_private_network_but_never_metadata() -> None:
    policy = Policy.for_workspace(Path("/tmp"), allow_private_networks=["169.254.0.0/16"])
    assert policy.address_allowed(ipaddress.ip_address("169.254.1.1"))[0]
    ok, reason = policy.address_allowed(ipaddress.ip_address("169.254.169.254"))
    assert not ok
    assert "metadata" in reason


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("OPENAI_API_KEY", "x", True),
        ("GITHUB_TOKEN", "x", True),
        ("AWS_SECRET_ACCESS_KEY", "x", True),
        ("DB_PASSWORD", "x", True),
        ("MAGRAY_LLM__API_KEY", "x", True),
        ("SSH_AUTH_SOCK", "/tmp/agent", True),
        ("DATABASE_URL", "postgres://user:pw@host/db", True),
        ("SOMETHING", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", True),
        ("SOMETHING", "sk-abc123", True),
        ("PATH", "/usr/bin", False),
        ("HOME", "/root", False),
        ("PWD", "/x", False),
        ("LANG", "C.UTF-8", False),
        ("GIT_AUTHOR_NAME", "Me", False),
        ("KEYBOARD_LAYOUT", "us", False),
        ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/0/bus", False),
        ("AWS_SESSION_TOKEN", "x", True),
    ],
)
def test_secret_env_detection(name: str, value: str, secret: bool) -> None:
    assert is_secret_env(name, value) is secret


def test_child_env_is_an_allow_list() -> None:
    base = {"PATH": "/bin", "LC_ALL": "C", "TERM": "dumb", "TZ": "UTC", "API_KEY": "k",
            "NPM_TOKEN": "t", "MYSQL_PWD": "pw", "HOME": "/root", "EDITOR": "vi"}  # fmt: skip
    env = child_env(("NPM_*",), home="/h", tmp="/t", extra={"X": "1"}, base=base)
    assert env == {"PATH": "/bin", "LC_ALL": "C", "TERM": "dumb", "TZ": "UTC", "NPM_TOKEN": "t",
                   "HOME": "/h", "TMPDIR": "/t", "X": "1"}  # fmt: skip


def test_host_allowlist_patterns(workspace: Path) -> None:
    policy = Policy.for_workspace(workspace, network_allowlist=("*.example.org", "Docs.Rs"))
    assert policy.host_allowed("a.example.org")
    assert policy.host_allowed("docs.rs.")
    assert not policy.host_allowed("example.org")
    assert not policy.host_allowed("badexample.org")
    assert Policy.for_workspace(workspace, network_allowlist=("*",)).host_allowed("any.host")
