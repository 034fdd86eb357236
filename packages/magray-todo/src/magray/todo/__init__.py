"""magray-todo.

a persistent task DAG for magray: SQLite store, dependency resolver, parallel executor,
progress.
"""

from __future__ import annotations

from importlib.metadata import version as _version

__version__ = _version("magray-todo")

__all__ = ["__version__"]
