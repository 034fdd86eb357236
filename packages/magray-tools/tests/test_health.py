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
    # This machine and CI confine children; the check names the mechanism.
    assert checks["tools.sandbox"][0] is Status.OK, checks["tools.sandbox"]
    assert checks["tools.sandbox"][1].startswith(("bwrap,", "landlock,"))


def test_sandbox_off_or_full_is_degraded() -> None:
    off = run(Settings(tools={"sandbox_mechanism": "none"}))  # type: ignore[arg-type]
    assert off["tools.sandbox"][0] is Status.DEGRADED
    assert "unconfined" in off["tools.sandbox"][1]
    full = run(Settings(tools={"sandbox": "full"}))  # type: ignore[arg-type]
    assert full["tools.sandbox"][0] is Status.DEGRADED


def test_missing_root_bad_policy_and_missing_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git here
    settings = Settings(tools={"workspace": [tmp_path / "gone"]})  # type: ignore[arg-type]
    checks = run(settings)
    assert checks["tools.policy"][0] is Status.DEGRADED
    assert checks["tools.git"][0] is Status.DEGRADED
    bad = Settings(tools={"policy_file": tmp_path / "nope.toml"})  # type: ignore[arg-type]
    assert run(bad)["tools.policy"][0] is Status.FAILED
