"""The tools health checks registered through `magray.health`."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.common.health import HealthRegistry, Status
from magray.common.settings import Settings
from magray.tools._health import register


def run(settings: Settings | None) -> dict[str, tuple[Status, str]]:
    registry = HealthRegistry()
    register(registry, settings)
    return {c.name: (c.status, c.message) for c in registry.run().checks}


def test_checks_pass_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    checks = run(None)
    assert checks["tools.registry"][0] is Status.OK
    assert "tools" in checks["tools.registry"][1]
    assert checks["tools.policy"][0] is Status.OK
    assert checks["tools.git"][0] is Status.OK
    assert "tools.bwrap" not in checks


def test_missing_root_bad_policy_and_missing_bwrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither git nor bwrap here
    settings = Settings(tools={"workspace": [tmp_path / "gone"], "bwrap": True})  # type: ignore[arg-type]
    checks = run(settings)
    assert checks["tools.policy"][0] is Status.DEGRADED
    assert checks["tools.git"][0] is Status.DEGRADED
    assert checks["tools.bwrap"][0] is Status.FAILED
    bad = Settings(tools={"policy_file": tmp_path / "nope.toml"})  # type: ignore[arg-type]
    assert run(bad)["tools.policy"][0] is Status.FAILED
