"""magray-tools: tool registry and sandboxed file, git, web and shell tools for magray."""

from __future__ import annotations

from importlib.metadata import version as _version

__version__ = _version("magray-tools")

__all__ = ["__version__"]
