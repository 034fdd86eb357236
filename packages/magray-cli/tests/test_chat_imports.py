"""What a cold one-shot `magray chat` imports before it answers (issue #18: first token fast).

The installed console script runs with ``PYTHONPROFILEIMPORTTIME=1`` (``-X importtime``)
against a loopback
OpenAI-compatible server; the modules it imported are read from stderr. No timing is
asserted (the machine's load decides those): the test guards the *set* of imports,
which is what keeps the direct path fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: Never on the answer path of `magray chat --no-memory` with an OpenAI-compatible model.
HEAVY = (
    "litellm",  # the direct httpx transport serves openai/... models
    "openai",
    "tiktoken",
    "mcp",  # `magray mcp serve` only
    "magray.router._mcp",
    "magray.router._plan",  # plans and the todo executor: the plan route only
    "magray.todo",
    "networkx",
    "sqlmodel",
    "jsonschema",  # rule parameter validation: the no-LLM tool route only
    "magray.memory",  # memory is off
    "magray.ai",
    "onnxruntime",
    "tokenizers",
    "faiss",
    "numpy",
)
STUB_ANSWER = "The staging database is orca."


@pytest.fixture
def server() -> Iterator[Any]:
    from magray.llm.testing import LoopbackLLM, text

    with LoopbackLLM() as srv:
        srv.responder = lambda body: text(STUB_ANSWER)
        yield srv


def _chat_imports(run_magray: Callable[..., Any], server: Any, *args: str) -> tuple[set[str], str]:
    """Modules imported by `magray chat <args>` (and its stdout)."""
    env = {
        "PYTHONPROFILEIMPORTTIME": "1",
        "MAGRAY_LLM__MODEL": "openai/test-model",
        "MAGRAY_LLM__API_BASE": server.api_base,
        "OPENAI_API_KEY": "sk-test",
    }
    proc = run_magray("chat", *args, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \| *(\S+)$", proc.stderr, re.M))
    assert "magray.cli" in modules  # the import report is there
    return modules, proc.stdout


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_a_direct_answer_imports_no_heavy_library(run_magray: Any, server: Any) -> None:
    modules, out = _chat_imports(
        run_magray, server, "--no-memory", "--plain", "what is the staging db?"
    )
    assert out.strip() == STUB_ANSWER
    assert "magray.llm._direct" in modules  # answered over the direct transport
    assert _loaded(modules, HEAVY) == []
    # The model is offered the enabled tools (it may call one), so their schemas, and
    # with them the tool registry, are on this path; a forced answer needs neither.
    assert server.requests[-1].get("tools")
    assert "magray.tools" in modules


def test_a_forced_answer_does_not_load_the_tool_registry(run_magray: Any, server: Any) -> None:
    modules, out = _chat_imports(
        run_magray, server, "--no-memory", "--route", "answer", "--plain", "what is the staging db?"
    )
    assert out.strip() == STUB_ANSWER
    assert "tools" not in server.requests[-1]
    assert _loaded(modules, (*HEAVY, "magray.tools", "magray.router._tools", "pathspec")) == []
