"""A loopback OpenAI-compatible chat server for testing code that talks to an LLM.

It speaks ``POST <api_base>/chat/completions`` (the path every OpenAI-compatible
client uses), on 127.0.0.1 only, with the standard library only. Replies are
scripted per model name (a queue) or decided by a ``responder`` function that sees
the request body; unscripted requests get the text ``"ok"``. A request with
``"stream": true`` gets its reply as server-sent events (text split into several
deltas, tool calls in fragments, then a finish chunk and a usage chunk).

Besides completions a reply can be an error status, a delay, a hang (the
connection stays silent until the server closes, so a client *timeout* decides
how long a test takes, not a sleep) or a stream that stalls after some chunks.
Every request body and its headers are recorded.

Example::

    from magray.llm import LLMClient
    from magray.llm.testing import LoopbackLLM, error, text, tool_call

    with LoopbackLLM() as server:
        server.script("my-model", error(500), text("hello"), tool_call("add", {"a": 1}))
        client = LLMClient("openai/my-model", sleep=lambda seconds: None)
        reply = client.complete("hi", api_base=server.api_base, api_key="test")
        assert reply.text == "hello"          # after one retry of the 500
        call = client.complete("add one", api_base=server.api_base, api_key="test")
        assert call.tool_calls[0].arguments == {"a": 1}
        assert len(server.requests) == 3

magray's own tests (unit, router and end-to-end through the installed ``magray``
console script) use this server; the model name a request carries is the part of
the litellm model string after the provider (``openai/my-model`` -> ``my-model``).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "LoopbackLLM",
    "Reply",
    "Responder",
    "aclose_litellm_clients",
    "chat",
    "close_litellm_clients",
    "error",
    "hang",
    "json_reply",
    "plan_reply",
    "schema_name",
    "stall",
    "stream",
    "text",
    "tool_call",
]

ToolCallSpec = tuple[str, str, "dict[str, Any] | str"]
"""``(call_id, function_name, arguments)``; arguments as a dict or as raw JSON text."""


@dataclass
class Reply:
    """One scripted response.

    Attributes:
        text: The assistant's text (``None`` for a tool-call-only reply).
        tool_calls: ``(id, name, arguments)`` triples; arguments as a dict, or as
            raw text (sent verbatim, so invalid JSON can be tested).
        status: HTTP status; anything but 200 sends an OpenAI-style error body.
        error: The error message for a non-200 status.
        error_code: The ``code`` field of the error body.
        headers: Extra response headers (e.g. ``{"Retry-After": "2"}``).
        usage: ``(prompt_tokens, completion_tokens)`` reported with the reply.
        delay: Seconds the server waits before answering (latency tests).
        hang: Never answer (until the server closes).
        hang_after: For a streamed reply: send this many chunks, then stall.
        body: A raw JSON body to send instead of one built from ``text``/``tool_calls``.
        sse: Raw stream chunks (each a partial ``chat.completion.chunk``) sent as
            server-sent events, whether or not the request asked for a stream.
    """

    text: str | None = None
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    status: int = 200
    error: str | None = None
    error_code: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    usage: tuple[int, int] = (11, 5)
    delay: float = 0.0
    hang: bool = False
    hang_after: int | None = None
    body: dict[str, Any] | None = None
    sse: list[dict[str, Any]] | None = None


Responder = Callable[[dict[str, Any]], "Reply | None"]
"""Decides the reply to a request body; ``None`` falls through to the default ``"ok"``."""


# ---------------------------------------------------------------- reply factories


def text(value: str, *, usage: tuple[int, int] = (11, 5), delay: float = 0.0) -> Reply:
    """A plain text answer."""
    return Reply(text=value, usage=usage, delay=delay)


def tool_call(name: str, args: dict[str, Any] | str, call_id: str = "call_1") -> Reply:
    """An answer that calls one tool (``args`` as a dict or raw JSON text)."""
    return Reply(tool_calls=[(call_id, name, args)])


def chat(
    value: str | None = "ok",
    *,
    tool_calls: Sequence[ToolCallSpec] | None = None,
    prompt_tokens: int = 7,
    completion_tokens: int = 3,
) -> Reply:
    """A completion with text and/or several tool calls and exact token counts."""
    return Reply(
        text=value, tool_calls=list(tool_calls or []), usage=(prompt_tokens, completion_tokens)
    )


def json_reply(value: Any) -> Reply:
    """A structured-output answer: ``value`` as JSON text."""
    return Reply(text=json.dumps(value))


def plan_reply(plan: dict[str, Any]) -> Reply:
    """A structured-output answer holding a plan (an alias of :func:`json_reply`)."""
    return json_reply(plan)


def error(
    status: int,
    message: str = "boom",
    *,
    code: str = "error",
    headers: dict[str, str] | None = None,
) -> Reply:
    """An error status with an OpenAI-style error body."""
    return Reply(status=status, error=message, error_code=code, headers=dict(headers or {}))


def hang() -> Reply:
    """No answer at all until the server closes (the client's timeout fires first)."""
    return Reply(hang=True)


def stall(value: str, after: int = 2) -> Reply:
    """A streamed answer that sends ``after`` chunks and then goes silent."""
    return Reply(text=value, hang_after=after)


def stream(deltas: list[dict[str, Any]], *, usage: tuple[int, int] | None = (5, 4)) -> Reply:
    """A stream of exactly these ``delta`` objects, a finish chunk and a usage chunk."""
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


def schema_name(body: dict[str, Any]) -> str | None:
    """The structured-output schema a request asks for (e.g. ``PlanReply``), if any."""
    fmt = body.get("response_format") or {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return str((fmt.get("json_schema") or {}).get("name"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return str((choice.get("function") or {}).get("name"))
    return None


# ---------------------------------------------------------------- the server


class LoopbackLLM:
    """An OpenAI-compatible server on ``127.0.0.1`` (a free port), started on creation.

    Use it as a context manager (``with LoopbackLLM() as server:``) or call
    :meth:`close`. ``api_base`` (also ``url``) is the ``http://127.0.0.1:PORT/v1`` to
    give a client.

    Attributes:
        requests: Every request body received, in order.
        headers: The request headers of each of those requests (lower-case names).
        responder: Optional function deciding replies the scripts do not cover.
        delay: Seconds added before every answer (simulates a slow provider).
    """

    def __init__(self, *, delay: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self.responder: Responder | None = None
        self.delay = delay
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port: int = int(self._server.server_address[1])
        self.api_base = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"loopback-llm-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The same as ``api_base``."""
        return self.api_base

    def script(self, model: str, *replies: Reply) -> None:
        """Queue replies for requests naming ``model`` (the part after the provider)."""
        with self._lock:
            self.scripts[model].extend(replies)

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        """The recorded request bodies that named ``model``."""
        with self._lock:
            return [r for r in self.requests if r.get("model") == model]

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            queue = self.scripts[str(body.get("model"))]
            if queue:
                return queue.popleft()
        if self.responder is not None:
            found = self.responder(body)
            if found is not None:
                return found
        return Reply(text="ok")

    def _wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` (cut short by :meth:`close`); True if the server closed."""
        return self._release.wait(seconds) if seconds > 0 else self._release.is_set()

    def close(self) -> None:
        """Release hanging requests and stop the server (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(owner: LoopbackLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; without TCP_NODELAY the second one
        # waits for the client's delayed ACK (~40 ms on Linux) on kept-alive connections.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._json(404, {"error": {"message": "only POST /chat/completions", "type": "x"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": {"message": "invalid JSON body", "type": "x"}})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = owner._next(body, headers)
            if owner._wait(owner.delay + reply.delay):
                self.close_connection = True
                return
            if reply.hang:
                owner._release.wait(60)
                self.close_connection = True
                return
            if reply.status != 200:
                payload = {
                    "error": {
                        "message": reply.error or "error",
                        "type": "invalid_request_error",
                        "code": reply.error_code,
                    }
                }
                self._json(reply.status, payload, reply.headers)
            elif reply.sse is not None or body.get("stream"):
                self._sse(reply)
            else:
                self._json(200, reply.body or _completion(reply), reply.headers)

        def _json(
            self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _sse(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            chunks = [{**_CHUNK, **c} for c in reply.sse] if reply.sse is not None else None
            for i, chunk in enumerate(chunks if chunks is not None else _chunks(reply)):
                if reply.hang_after is not None and i >= reply.hang_after:
                    owner._release.wait(60)
                    self.close_connection = True
                    return
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


_CHUNK = {"id": "chatcmpl-loopback", "object": "chat.completion.chunk", "created": 1}


def _arguments(args: dict[str, Any] | str) -> str:
    return args if isinstance(args, str) else json.dumps(args)


def _usage(reply: Reply) -> dict[str, int]:
    p, c = reply.usage
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _completion(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": _arguments(a)}}
            for i, n, a in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 1,
        "model": "loopback",
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": _usage(reply),
    }


def _chunks(reply: Reply) -> list[dict[str, Any]]:
    base = {**_CHUNK, "model": "loopback"}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    body = reply.text or ""
    step = max(1, len(body) // 4)
    deltas += [{"content": body[i : i + step]} for i in range(0, len(body), step)]
    for index, (call_id, name, args) in enumerate(reply.tool_calls):
        raw = _arguments(args)
        half = len(raw) // 2
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": raw[:half]},
                    }
                ]
            }
        )
        deltas.append({"tool_calls": [{"index": index, "function": {"arguments": raw[half:]}}]})
    chunks = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    finish = "tool_calls" if reply.tool_calls else "stop"
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({**base, "choices": [], "usage": _usage(reply)})
    return chunks


# ---------------------------------------------------------------- litellm hygiene


def close_litellm_clients() -> None:
    """Close the HTTP clients litellm caches per ``api_base`` (call at a test's end).

    Without it their keep-alive sockets outlive the server and surface as
    ``ResourceWarning`` under ``filterwarnings = error``. A no-op if litellm was
    never imported.
    """
    from magray.llm._backend import close_cached_clients

    close_cached_clients()


async def aclose_litellm_clients() -> None:
    """Close litellm's cached *async* HTTP clients inside the running event loop."""
    from magray.llm._backend import aclose_cached_clients

    await aclose_cached_clients()
