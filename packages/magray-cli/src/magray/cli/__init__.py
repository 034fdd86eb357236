"""magray-cli: the ``magray`` command.

The root group loads command groups lazily, so ``magray --help`` imports only
click. Third-party packages add groups through the ``magray.commands``
entry-point group (an entry point names a click command or group).
"""

from __future__ import annotations

from importlib.metadata import version as _version

from magray.cli._app import cli, main

__version__ = _version("magray-cli")

__all__ = ["__version__", "cli", "main"]
