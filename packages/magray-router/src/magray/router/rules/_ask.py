"""One structured call of an LLM-backed agent (intent, tool, arguments, plan).

Each agent asks its versioned prompt (:func:`magray.llm.load_prompt`) for a pydantic
reply; when the call fails it either raises (``raise_errors``) or answers with its
rule-based fallback, whose ``source`` then says why (:func:`fell_back`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

from pydantic import BaseModel

from magray.common.errors import LLMError

if TYPE_CHECKING:
    from magray.llm import LLMClient

__all__ = ["LLMAgent", "ask_model", "fell_back"]

R = TypeVar("R", bound=BaseModel)


class LLMAgent(Protocol):
    """What :func:`ask_model` reads from an agent."""

    client: LLMClient
    raise_errors: bool
    prompt_version: int | None
    max_tokens: int


def ask_model(agent: LLMAgent, prompt: str, reply_model: type[R], **values: str) -> R | LLMError:
    """The model's reply to ``prompt`` filled with ``values``, or the error it failed with.

    Raises:
        LLMError: The call failed and the agent has ``raise_errors``.
    """
    from magray.llm import load_prompt

    messages = load_prompt(prompt, version=agent.prompt_version).messages(**values)
    try:
        return agent.client.structured(
            messages, reply_model, temperature=0, max_tokens=agent.max_tokens
        )
    except LLMError as exc:
        if agent.raise_errors:
            raise
        return exc


def fell_back(exc: LLMError) -> str:
    """The ``source`` of a rule-based answer given because the model failed."""
    return f"rules (llm failed: {exc.code})"
