"""Prompt templates ship as versioned package data."""

from __future__ import annotations

import pytest

from magray.common.errors import NotFoundError
from magray.llm import available_prompts, load_prompt


def test_every_agent_has_a_prompt() -> None:
    prompts = available_prompts()
    assert {"intent", "select_tool", "extract_params", "plan"} <= set(prompts)
    assert all(versions for versions in prompts.values())


def test_render_messages() -> None:
    prompt = load_prompt("intent")
    assert prompt.id == f"intent.v{available_prompts()['intent'][-1]}"
    messages = prompt.messages(request="show $HOME")
    assert messages[0]["role"] == "system"
    assert "memory" in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": "Request: show $HOME"}  # $ kept


def test_missing_placeholder_and_unknown_prompt() -> None:
    with pytest.raises(KeyError):
        load_prompt("plan").messages()
    with pytest.raises(NotFoundError):
        load_prompt("nope")
    with pytest.raises(NotFoundError):
        load_prompt("intent", version=999)
