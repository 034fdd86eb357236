"""``magray todo check [--repair]`` on a real damaged task database."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from magray.cli import cli


def _damaged(home: Path) -> Path:
    runner = CliRunner()
    for i in range(120):
        result = runner.invoke(cli, ["todo", "add", f"task {i:03d} " + "y" * 200])
        assert result.exit_code == 0, result.output
    path = home / "data" / "todo.db"
    data = path.read_bytes()
    at = data.index(b"task 060 ")
    with path.open("r+b") as f:
        f.seek(at - at % 4096)
        f.write(random.Random(5).randbytes(4096))
    return path


def test_damage_is_named_then_repaired(magray_home: Path, run_magray: Any) -> None:
    path = _damaged(magray_home)
    runner = CliRunner()
    listed = run_magray("todo", "list")
    assert listed.returncode != 0
    assert listed.stderr.startswith("error[todo.corrupt]: task database"), listed.stderr
    assert f"magray todo --db {path} check --repair" in listed.stderr
    assert "SELECT" not in listed.stderr  # no SQL, no traceback
    assert "Traceback" not in listed.stderr

    checked = runner.invoke(cli, ["todo", "check"])
    assert checked.exit_code == 1
    assert "damaged" in checked.output

    repaired = runner.invoke(cli, ["--json", "todo", "check", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    report = json.loads(repaired.output)
    assert report["ok"] is True
    saved = report["repair"]["tasks_saved"]
    assert 100 < saved < 120
    assert Path(report["repair"]["damaged_file"]).exists()
    assert path.exists()

    after = runner.invoke(cli, ["--json", "todo", "list"])
    assert after.exit_code == 0, after.output
    assert len(json.loads(after.output)) == saved
    assert runner.invoke(cli, ["todo", "check"]).exit_code == 0


def test_a_sound_or_missing_database_checks_ok(magray_home: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["todo", "check"])
    assert missing.exit_code == 0
    assert "no task database yet" in missing.output
    runner.invoke(cli, ["todo", "add", "one"])
    sound = runner.invoke(cli, ["--json", "todo", "check", "--repair"])
    assert sound.exit_code == 0
    report = json.loads(sound.output)
    assert report["check"]["ok"] is True
    assert report["repair"] is None
