"""Where magray keeps its files.

``MAGRAY_HOME`` set: everything lives under it (``config.toml`` at its root,
``data/``, ``cache/``, ``logs/``). Otherwise the platform's user directories
(``~/.config/magray``, ``~/.local/share/magray``, ``~/.cache/magray`` on Linux).

Nothing is created at import time; :func:`ensure_dir` creates a directory on
first use, with mode 0700 for directories that hold user data (and tightens
magray's own directories that an older version left at 0755).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "cache_dir",
    "config_dir",
    "config_file",
    "config_file_is_explicit",
    "data_dir",
    "ensure_dir",
    "home",
    "log_dir",
]

_APP = "magray"


def home() -> Path | None:
    """The ``MAGRAY_HOME`` directory, or ``None`` when it is not set."""
    value = os.environ.get("MAGRAY_HOME", "").strip()
    return Path(value).expanduser().resolve() if value else None


def config_dir() -> Path:
    """Directory of ``config.toml``."""
    root = home()
    if root is not None:
        return root
    import platformdirs

    return Path(platformdirs.user_config_dir(_APP, appauthor=False))


def config_file() -> Path:
    """The config file: ``MAGRAY_CONFIG`` if set, else ``config_dir()/config.toml``."""
    explicit = os.environ.get("MAGRAY_CONFIG", "").strip()
    if explicit:
        return Path(explicit).expanduser().resolve()
    return config_dir() / "config.toml"


def config_file_is_explicit() -> bool:
    """Whether ``MAGRAY_CONFIG`` names the config file (then it must exist)."""
    return bool(os.environ.get("MAGRAY_CONFIG", "").strip())


def data_dir() -> Path:
    """Directory for databases and indexes (memory store, todo DB, ...)."""
    root = home()
    if root is not None:
        return root / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(_APP, appauthor=False))


def cache_dir() -> Path:
    """Directory for caches that can be deleted at any time."""
    root = home()
    if root is not None:
        return root / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(_APP, appauthor=False))


def log_dir() -> Path:
    """Directory for log files."""
    root = home()
    if root is not None:
        return root / "logs"
    import platformdirs

    return Path(platformdirs.user_log_dir(_APP, appauthor=False))


def ensure_dir(path: Path, *, private: bool = True) -> Path:
    """Create ``path`` (and parents) if missing and return it.

    Args:
        path: The directory.
        private: Directories created for it get mode 0700 (user data), whatever
            the umask; existing directories inside magray's own data, cache and
            log directories (and those directories) are tightened to 0700 when
            an older version left them readable by others.
    """
    path = Path(path)
    if not private:
        path.mkdir(parents=True, exist_ok=True)
        return path
    missing: list[Path] = []
    probe = path
    while not probe.is_dir() and probe.parent != probe:
        missing.append(probe)
        probe = probe.parent
    roots = _private_roots()
    for directory in reversed(missing):
        # Components above magray's roots (``~/.local/share``) get the usual mode.
        mine = directory == path or _inside(directory, roots)
        try:
            directory.mkdir(mode=0o700 if mine else 0o777)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue
        if mine:
            os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask
    _tighten(path, roots)
    return path


def _private_roots() -> tuple[Path, ...]:
    roots = [data_dir(), cache_dir(), log_dir()]
    if home() is None:  # a MAGRAY_HOME the user chose keeps its own mode
        roots.append(config_dir())
    return tuple(roots)


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _tighten(path: Path, roots: tuple[Path, ...]) -> None:
    """chmod 0700 ``path`` and its parents up to the magray root holding it."""
    for directory in (path, *path.parents):
        if not _inside(directory, roots):
            return
        try:
            st = directory.stat()
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(directory, 0o700)
        except OSError:  # not ours to change: `magray health` reports the mode
            return
