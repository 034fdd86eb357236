"""A task database this process may read but not write: reads work, writes say why not."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from magray.todo import TodoStore

_SCENARIO = r"""
import json, sys
from pathlib import Path
from magray.todo import TodoStore, check_database

path = Path(sys.argv[1])

def step(name, call):
    try:
        value = call()
    except Exception as exc:
        print(json.dumps({"step": name, "ok": False, "error": type(exc).__name__,
                          "code": getattr(exc, "code", None), "message": str(exc),
                          "hint": getattr(exc, "hint", None)}))
    else:
        print(json.dumps({"step": name, "ok": True, "value": value}))

store = TodoStore(path)
step("read_only", lambda: store.read_only)
step("list", lambda: [t.title for t in store.tasks()])
step("ready", lambda: [t.title for t in store.ready()])
step("add", lambda: store.add("new").id)
step("check", lambda: check_database(path).ok)
store.close()
"""


def test_a_read_only_mount_reads_and_refuses_writes_clearly(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    home = tmp_path / "data"
    home.mkdir()
    with TodoStore(home / "todo.db") as store:
        first = store.add("first")
        store.add("second", depends_on=[first.id])
    script = f'mount --bind {home} {home} && mount -o remount,bind,ro {home} && exec "$@"'
    done = subprocess.run(
        [
            "unshare",
            "-U",
            "-r",
            "-m",
            "sh",
            "-c",
            script,
            "sh",
            sys.executable,
            "-c",
            _SCENARIO,
            str(home / "todo.db"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode and "unshare" in done.stderr:
        pytest.skip(f"no user+mount namespace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    steps = {s["step"]: s for s in map(json.loads, done.stdout.splitlines())}
    assert steps["read_only"]["value"] is True
    assert steps["list"]["value"] == ["first", "second"]
    assert steps["ready"]["value"] == ["first"]
    assert steps["add"]["code"] == "storage.read_only", steps["add"]
    assert "read-only" in steps["add"]["message"]
    assert steps["check"]["value"] is True


def test_a_writable_database_is_not_read_only(tmp_path: Path) -> None:
    with TodoStore(tmp_path / "todo.db") as store:
        assert store.read_only is False
        assert store.add("x").id == 1
