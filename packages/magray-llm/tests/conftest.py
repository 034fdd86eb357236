"""A loopback OpenAI-compatible server for integration tests (127.0.0.1 only).

Tests script replies per model name: JSON completions, SSE streams, error
statuses, malformed bodies and hanging responses (released at teardown, so a
client timeout, not a sleep, decides how long a "slow" test takes).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Reply:
    """One scripted response."""

    status: int = 200
    body: dict[str, Any] | None = None
    sse: list[dict[str, Any]] | None = None
    hang: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def chat(
    text: str | None = "ok",
    *,
    tool_calls: list[tuple[str, str, str]] | None = None,
    prompt_tokens: int = 7,
    completion_tokens: int = 3,
) -> Reply:
    """A non-streamed chat completion; ``tool_calls`` = [(id, name, arguments_json)]."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in tool_calls
        ]
    return Reply(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1,
            "model": "loopback",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def stream(deltas: list[dict[str, Any]], *, usage: tuple[int, int] | None = (5, 4)) -> Reply:
    """An SSE stream of the given ``delta`` objects, a finish chunk and a usage chunk."""
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas
    ]
    finish = "tool_calls" if any("tool_calls" in d for d in deltas) else "stop"
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage is not None:
        p, c = usage
        chunks.append(
            {
                "choices": [],
                "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
            }
        )
    return Reply(sse=chunks)


def error(
    status: int, message: str, *, code: str = "error", headers: dict[str, str] | None = None
) -> Reply:
    return Reply(
        status=status,
        body={"error": {"message": message, "type": "invalid_request_error", "code": code}},
        headers=headers or {},
    )


class FakeLLMServer:
    """Scripted replies per model name; unscripted models get ``chat("ok")``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._release = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    queue = server._scripts[str(body.get("model"))]
                    reply = queue.popleft() if queue else chat("ok")
                if reply.hang:
                    server._release.wait(10)
                    return
                if reply.sse is not None:
                    self._send_sse(reply)
                    return
                data = json.dumps(reply.body or {}).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _send_sse(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for delta in reply.sse or []:
                    chunk = {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "loopback",
                        **delta,
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, model: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[model].extend(replies)

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("model") == model]

    # reply factories, reachable from tests as server.chat(...), server.stream(...), ...
    chat = staticmethod(chat)
    stream = staticmethod(stream)
    error = staticmethod(error)
    Reply = Reply

    @staticmethod
    async def close_async_clients() -> None:
        """Close litellm's cached async HTTP clients inside the running loop (end of a test)."""
        import inspect
        import sys

        litellm = sys.modules.get("litellm")
        if litellm is None:
            return
        cache = litellm.in_memory_llm_clients_cache
        for key, client in list(cache.cache_dict.items()):
            for name in ("aclose", "close"):
                close = getattr(client, name, None)
                if close is not None and inspect.iscoroutinefunction(close):
                    await close()
                    cache.cache_dict.pop(key, None)
                    break

    def close(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


# litellm itself trips the root `filterwarnings = error`: it reads a deprecated
# pydantic attribute while streaming, and its service logger leaves an event loop
# (and that loop's self-pipe sockets) to the garbage collector. Those are
# litellm's, not ours, so they are ignored for this package's tests only.
LITELLM_WARNING_FILTERS = (
    "ignore::DeprecationWarning:litellm.*",
    "ignore:Accessing the 'model_computed_fields' attribute:DeprecationWarning",
    "ignore:unclosed event loop:ResourceWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
)
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            for spec in LITELLM_WARNING_FILTERS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture(autouse=True)
def _close_litellm_event_loop() -> Iterator[None]:
    """Close the main-thread event loop litellm's sync service logger creates and keeps.

    (``asyncio.run`` in a later test would otherwise drop it unclosed.)
    """
    yield
    _close_cached_litellm_clients()
    import asyncio
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        policy = asyncio.get_event_loop_policy()
        try:
            loop = policy.get_event_loop()
        except RuntimeError:
            return
        if not loop.is_running():
            loop.close()
        policy.set_event_loop(None)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    srv = FakeLLMServer()
    try:
        yield srv
    finally:
        _close_cached_litellm_clients()
        srv.close()


def _close_cached_litellm_clients() -> None:
    """litellm caches one HTTP client per api_base; close them with their keep-alive sockets."""
    import inspect
    import sys

    litellm = sys.modules.get("litellm")
    if litellm is None:
        return
    cache = litellm.in_memory_llm_clients_cache
    for client in list(cache.cache_dict.values()):
        close = getattr(client, "close", None)
        if callable(close) and not inspect.iscoroutinefunction(close):
            with contextlib.suppress(Exception):
                close()
    cache.flush_cache()


@pytest.fixture
def sleeps() -> list[float]:
    """Delays the client asked to sleep (injected instead of time.sleep)."""
    return []
