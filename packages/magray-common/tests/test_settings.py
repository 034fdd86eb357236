"""Settings precedence, source tracking and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.common import paths
from magray.common.errors import ConfigError
from magray.common.settings import Settings, flatten, load_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file(magray_home: Path) -> None:
    loaded = load_settings()
    assert loaded.config_path == magray_home / "config.toml"
    assert loaded.settings.memory.backend == "local"
    assert loaded.settings.llm.model is None
    assert loaded.source_of("memory.backend") == "default"


def test_file_overrides_defaults_and_env_overrides_file(
    magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(magray_home / "config.toml", "[memory]\nhnsw_m = 48\nhnsw_ef_search = 99\n")
    monkeypatch.setenv("MAGRAY_MEMORY__HNSW_EF_SEARCH", "128")
    loaded = load_settings()
    assert loaded.settings.memory.hnsw_m == 48
    assert loaded.settings.memory.hnsw_ef_search == 128
    assert loaded.source_of("memory.hnsw_m") == f"file:{cfg}"
    assert loaded.source_of("memory.hnsw_ef_search") == "env:MAGRAY_MEMORY__HNSW_EF_SEARCH"
    assert loaded.source_of("memory.hnsw_ef_construction") == "default"


def test_explicit_config_path_and_magray_config_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(tmp_path / "other.toml", "[todo]\nmax_workers = 7\n")
    assert load_settings(cfg).settings.todo.max_workers == 7
    monkeypatch.setenv("MAGRAY_CONFIG", str(cfg))
    assert paths.config_file() == cfg
    assert load_settings().settings.todo.max_workers == 7


def test_wrong_type_in_file_names_key_value_and_file(magray_home: Path) -> None:
    cfg = write(magray_home / "config.toml", '[memory]\nhnsw_m = "many"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    err = info.value
    assert err.code == "config.invalid"
    assert "memory.hnsw_m" in err.message
    assert "'many'" in err.message
    assert str(cfg) in err.message
    assert err.hint


def test_wrong_type_in_env_names_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGRAY_TODO__MAX_WORKERS", "-3")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "todo.max_workers" in info.value.message
    assert "env:MAGRAY_TODO__MAX_WORKERS" in info.value.message


def test_unknown_backend_is_rejected(magray_home: Path) -> None:
    write(magray_home / "config.toml", '[memory]\nbackend = "redis"\n')
    with pytest.raises(ConfigError, match="unknown backend 'redis'"):
        load_settings()


def test_unknown_key_is_rejected(magray_home: Path) -> None:
    write(magray_home / "config.toml", "[memory]\nbakend = 'local'\n")
    with pytest.raises(ConfigError, match=r"memory\.bakend: unknown setting"):
        load_settings()


def test_unreadable_toml(magray_home: Path) -> None:
    write(magray_home / "config.toml", "[memory\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.code == "config.unreadable"
    assert "not valid TOML" in info.value.message


def test_unreadable_file_permissions(magray_home: Path) -> None:
    cfg = magray_home / "config.toml"
    cfg.mkdir()  # a directory where a file should be cannot be read
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings()


def test_flatten_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGRAY_LLM__API_KEY", "sk-supersecretvalue1234567890")
    flat = flatten(load_settings().settings)
    assert flat["llm.api_key"] == "***"
    assert "sk-supersecret" not in repr(flat)


def test_every_section_exists() -> None:
    assert set(Settings.model_fields) == {
        "logging", "ai", "memory", "llm", "tools", "todo", "router",
    }  # fmt: skip


def test_missing_explicit_config_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, magray_home: Path
) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_settings(missing)
    assert info.value.code == "config.missing"
    assert str(missing) in info.value.message
    assert "--config" in (info.value.hint or "")
    monkeypatch.setenv("MAGRAY_CONFIG", str(missing))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()
    monkeypatch.delenv("MAGRAY_CONFIG")
    assert not (magray_home / "config.toml").exists()
    assert load_settings().settings.memory.backend == "local"  # the default file is optional


def test_old_tools_bwrap_switch_still_loads(tmp_path: Path) -> None:
    from magray.common.settings import load_settings

    on = tmp_path / "on.toml"
    on.write_text("[tools]\nbwrap = true\n")
    assert load_settings(on).settings.tools.sandbox_mechanism == "bwrap"
    off = tmp_path / "off.toml"
    off.write_text("[tools]\nbwrap = false\n")
    assert load_settings(off).settings.tools.sandbox_mechanism == "auto"
