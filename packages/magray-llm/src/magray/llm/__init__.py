"""magray-llm.

one client for every LLM provider (over litellm), structured output, and magray's agents.
"""

from __future__ import annotations

from importlib.metadata import version as _version

__version__ = _version("magray-llm")

__all__ = ["__version__"]
