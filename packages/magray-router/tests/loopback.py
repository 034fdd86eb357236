"""The loopback OpenAI-compatible server of the router and end-to-end tests.

It is :mod:`magray.llm.testing` (one implementation for every package's tests);
this module only re-exports it under the names those tests import, loaded by
path as ``magray_router_loopback`` (see this folder's and tests/ conftest.py).
"""

from __future__ import annotations

from magray.llm.testing import (
    LoopbackLLM,
    Reply,
    error,
    hang,
    json_reply,
    plan_reply,
    schema_name,
    stall,
    text,
    tool_call,
)

__all__ = [
    "LoopbackLLM",
    "Reply",
    "error",
    "hang",
    "json_reply",
    "plan_reply",
    "schema_name",
    "stall",
    "text",
    "tool_call",
]
