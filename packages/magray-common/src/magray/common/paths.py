"""Where magray keeps its files.

``MAGRAY_HOME`` set: everything lives under it (``config.toml`` at its root,
``data/``, ``cache/``, ``logs/``). Otherwise the platform's user directories
(``~/.config/magray``, ``~/.local/share/magray``, ``~/.cache/magray`` on Linux).

Nothing is created at import time; :func:`ensure_dir` creates a directory on
first use, with mode 0700 for directories that hold user data.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "cache_dir",
    "config_dir",
    "config_file",
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
        private: Give a newly created directory mode 0700 (user data); an
            existing directory's mode is left alone.
    """
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o755)
        if private:
            os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
    return path
