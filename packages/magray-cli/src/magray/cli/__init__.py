"""magray-cli: the ``magray`` command.

The root group loads command groups lazily, so ``magray --help`` imports only
click. Third-party packages add groups through the ``magray.commands``
entry-point group (an entry point names a click command or group).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magray.cli._app import cli, main

if TYPE_CHECKING:
    __version__: str

__all__ = ["__version__", "cli", "main"]


def __getattr__(name: str) -> Any:
    """``__version__``, read on first use: importlib.metadata is not on the path of a
    command that does not need it (``magray chat``)."""
    if name == "__version__":
        from importlib.metadata import version

        globals()[name] = version("magray-cli")
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
