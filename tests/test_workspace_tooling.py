"""The workspace scripts: module-size gate, bootstrap's member list (hatch's), wheel building."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str) -> ModuleType:
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return module


def test_code_lines_skip_blanks_and_comments(tmp_path: Path) -> None:
    check = load_script("check")
    module = tmp_path / "m.py"
    module.write_text('"""Doc."""\n\n# comment\n    # indented comment\nx = 1  # trailing\n\n')
    assert check.code_lines(module) == 2


def make_tree(root: Path, sizes: dict[str, int], listed: list[str]) -> None:
    for rel, n in sizes.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"x{i} = {i}\n# note\n\n" for i in range(n)))
    (root / "scripts").mkdir(exist_ok=True)
    (root / "scripts" / "large_modules.txt").write_text("# header\n" + "\n".join(listed) + "\n")


def test_module_size_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    check = load_script("check")
    big, grown, shrunk = (
        "packages/magray-x/src/magray/x/_big.py",
        "packages/magray-x/src/magray/x/_grown.py",
        "packages/magray-y/src/magray/y/_shrunk.py",
    )
    make_tree(tmp_path, {big: 700, grown: 401, shrunk: 400}, [big, shrunk, "packages/gone.py"])
    monkeypatch.setattr(check, "ROOT", tmp_path)
    monkeypatch.setattr(check, "LARGE_MODULES", tmp_path / "scripts" / "large_modules.txt")
    assert check.check_module_sizes() == 1
    out = capsys.readouterr().out
    assert f"{grown}: 401 code lines (limit 400)" in out
    assert f"{shrunk}: 400 code lines, within the limit" in out
    assert "packages/gone.py: gone" in out
    assert big not in out.split("\n")[0]
    make_tree(tmp_path, {grown: 400}, [big, shrunk])
    assert check.check_module_sizes() == 0


def test_bootstrap_installs_hatchs_workspace_members() -> None:
    bootstrap = load_script("bootstrap")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = config["tool"]["hatch"]["envs"]["default"]["workspace"]["members"]
    paths = [m if isinstance(m, str) else m["path"] for m in members]
    packages = [d for d in (ROOT / "packages").iterdir() if (d / "pyproject.toml").exists()]
    assert sorted(p for p in paths if p.startswith("packages/")) == sorted(
        f"packages/{d.name}" for d in packages
    )
    plain = bootstrap.requirements(dev=False)
    assert "--group" not in plain
    assert all("[" not in a and "examples" not in a for a in plain)
    dev = bootstrap.requirements(dev=True)
    assert f"{ROOT / 'packages/magray-tools'}[search]" in dev
    assert str(ROOT / "examples/magray-tool-example") in dev
    assert dev[-2:] == ["--group", f"{ROOT / 'pyproject.toml'}:dev"]


def test_build_wheels_names_unknown_packages() -> None:
    build_wheels = load_script("build_wheels")
    assert [p.name for p in build_wheels.package_dirs(["magray-memory"])] == ["magray-memory"]
    with pytest.raises(SystemExit, match="unknown package"):
        build_wheels.package_dirs(["magray-nope"])


@pytest.mark.slow
def test_memory_installs_alone_from_the_wheelhouse() -> None:
    """README's solo path end to end: build, install magray-memory alone, import, no heavy deps."""
    check = load_script("check_isolated_install")
    assert check.main(["magray-memory"]) == 0
