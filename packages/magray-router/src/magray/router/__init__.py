"""magray-router.

magray's smart router: intent, plan, tools and todo, answer, with memory as context.
"""

from __future__ import annotations

from importlib.metadata import version as _version

__version__ = _version("magray-router")

__all__ = ["__version__"]
