"""Paths honour MAGRAY_HOME; directories are private; writes are atomic."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from magray.common import fs, paths
from magray.common.fs import atomic_write_bytes, atomic_write_text, atomic_writer


def test_magray_home_layout(magray_home: Path) -> None:
    assert paths.home() == magray_home.resolve()
    assert paths.config_dir() == magray_home.resolve()
    assert paths.data_dir() == magray_home.resolve() / "data"
    assert paths.cache_dir() == magray_home.resolve() / "cache"
    assert paths.log_dir() == magray_home.resolve() / "logs"


def test_platform_dirs_without_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MAGRAY_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    assert paths.home() is None
    assert paths.data_dir() == tmp_path / "xdg-data" / "magray"
    assert paths.config_file() == tmp_path / "xdg-config" / "magray" / "config.toml"


def test_nothing_is_created_until_asked(magray_home: Path) -> None:
    paths.data_dir()
    assert not (magray_home / "data").exists()


def test_ensure_dir_is_private(magray_home: Path) -> None:
    old = os.umask(0o022)
    try:
        created = paths.ensure_dir(paths.data_dir() / "memory")
    finally:
        os.umask(old)
    assert stat.S_IMODE(created.stat().st_mode) == 0o700


def test_ensure_dir_makes_every_created_parent_private(magray_home: Path) -> None:
    old = os.umask(0o022)
    try:
        paths.ensure_dir(paths.data_dir() / "memory" / "index")
        outside = paths.ensure_dir(magray_home / "elsewhere" / "deep", private=False)
    finally:
        os.umask(old)
    for directory in (paths.data_dir(), paths.data_dir() / "memory"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755


def test_ensure_dir_tightens_magray_dirs_an_older_version_left_open(magray_home: Path) -> None:
    data = paths.data_dir()
    (data / "memory").mkdir(parents=True)
    for directory in (data, data / "memory"):
        os.chmod(directory, 0o755)
    os.chmod(magray_home, 0o755)
    paths.ensure_dir(data / "memory")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "memory").stat().st_mode) == 0o700
    # MAGRAY_HOME itself is the user's choice: its mode is left alone
    assert stat.S_IMODE(magray_home.stat().st_mode) == 0o755


def test_private_umask_remembers_the_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs, "_user_umask", None)
    old = os.umask(0o022)
    try:
        assert fs.user_umask() == 0o022  # before: the current umask, unchanged
        assert fs.use_private_umask() == 0o022
        (tmp_path / "f").write_text("x")
        (tmp_path / "d").mkdir()
        assert fs.user_umask() == 0o022
        fs.use_private_umask()  # a second call keeps the first user umask
        assert fs.user_umask() == 0o022
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o700


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_atomic_writer_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write_text(target, "original")

    def boom() -> None:
        with atomic_writer(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        boom()
    assert target.read_text() == "original"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_user_umask_reads_without_setting_the_umask(monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting the umask to read it would briefly make another thread's new files 0600."""
    monkeypatch.setattr(fs, "_user_umask", None)
    old = os.umask(0o027)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(os, "umask", lambda _mask: pytest.fail("os.umask was called"))
            assert fs.user_umask() == 0o027
    finally:
        os.umask(old)
