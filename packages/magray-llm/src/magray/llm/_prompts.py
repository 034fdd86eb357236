"""Versioned prompt templates shipped as package data (``magray/llm/prompts/``).

A template file is named ``<name>.v<N>.txt``. It holds a system part and a user
part separated by a line ``---user---``; ``$placeholders`` are filled with
:class:`string.Template` (``$$`` is a literal dollar). The newest version is used
unless a caller pins one, so a prompt change is a new file, not an edit that
silently changes an evaluated behaviour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any

from magray.common.errors import NotFoundError

__all__ = ["Prompt", "available_prompts", "load_prompt"]

_NAME = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.txt$")
_SPLIT = "---user---"


@dataclass(frozen=True)
class Prompt:
    """One prompt template: ``name``, ``version``, and its system and user parts."""

    name: str
    version: int
    system: str
    user: str

    @property
    def id(self) -> str:
        return f"{self.name}.v{self.version}"

    def render(self, **values: Any) -> tuple[str, str]:
        """The system and user texts with ``$placeholders`` substituted.

        Raises:
            KeyError: A placeholder has no value.
        """
        mapping = {k: str(v) for k, v in values.items()}
        return Template(self.system).substitute(mapping), Template(self.user).substitute(mapping)

    def messages(self, **values: Any) -> list[dict[str, str]]:
        """Chat messages (system + user) for this template."""
        system, user = self.render(**values)
        out = []
        if system.strip():
            out.append({"role": "system", "content": system.strip()})
        out.append({"role": "user", "content": user.strip()})
        return out


@cache
def available_prompts() -> dict[str, list[int]]:
    """``{name: [versions...]}`` of the templates shipped in the package."""
    found: dict[str, list[int]] = {}
    for entry in files("magray.llm").joinpath("prompts").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.setdefault(match["name"], []).append(int(match["version"]))
    return {name: sorted(versions) for name, versions in sorted(found.items())}


@cache
def load_prompt(name: str, *, version: int | None = None) -> Prompt:
    """The template ``name`` at ``version`` (default: the newest).

    Raises:
        NotFoundError: No such template or version.
    """
    versions = available_prompts().get(name)
    if not versions or (version is not None and version not in versions):
        raise NotFoundError(
            f"no prompt template {name!r}" + (f" version {version}" if version else ""),
            hint=f"available: {available_prompts()}",
        )
    chosen = version if version is not None else versions[-1]
    text = files("magray.llm").joinpath("prompts", f"{name}.v{chosen}.txt").read_text("utf-8")
    system, sep, user = text.partition(_SPLIT)
    if not sep:
        system, user = "", text
    return Prompt(name, chosen, system.strip("\n"), user.strip("\n"))
