"""A loopback OpenAI-compatible chat server for tests (127.0.0.1 only).

Replies are scripted per model name (a queue) or decided by a responder
function that sees the request body; a ``stream: true`` request gets the reply
as SSE chunks (text split into several deltas, tool calls in fragments).
``hang`` replies block until the server closes, so a client timeout, not a
sleep, decides how long they take. This file is shared by the router's tests
and the end-to-end tests in the repository's tests/ folder.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "LoopbackLLM",
    "Reply",
    "error",
    "hang",
    "plan_reply",
    "schema_name",
    "stall",
    "text",
    "tool_call",
]


@dataclass
class Reply:
    """One scripted response: a completion (text and/or tool calls), an error or a hang."""

    text: str | None = None
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    error: str | None = None
    hang: bool = False
    hang_after: int | None = None  # streamed: send this many chunks, then block


def text(value: str) -> Reply:
    return Reply(text=value)


def tool_call(name: str, args: dict[str, Any], call_id: str = "call_1") -> Reply:
    return Reply(tool_calls=[(call_id, name, args)])


def stall(value: str, after: int = 2) -> Reply:
    """A streamed reply that sends ``after`` chunks and then stops sending (until teardown)."""
    return Reply(text=value, hang_after=after)


def error(status: int, message: str = "boom") -> Reply:
    return Reply(status=status, error=message)


def hang() -> Reply:
    return Reply(hang=True)


def plan_reply(plan: dict[str, Any]) -> Reply:
    """A structured-output reply: the plan as JSON text."""
    return Reply(text=json.dumps(plan))


def schema_name(body: dict[str, Any]) -> str | None:
    """The structured-output schema a request asks for (``PlanReply``, ``IntentReply``...)."""
    fmt = body.get("response_format") or {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return str((fmt.get("json_schema") or {}).get("name"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return str((choice.get("function") or {}).get("name"))
    return None


Responder = Callable[[dict[str, Any]], Reply | None]


class LoopbackLLM:
    """Start with ``with LoopbackLLM() as server:``; ``server.api_base`` is the /v1 URL."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self.responder: Responder | None = None
        self._release = threading.Event()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = owner._next(body)
                if reply.hang:
                    owner._release.wait(60)
                    self.close_connection = True
                    return
                if reply.status != 200:
                    self._json(reply.status, {"error": {"message": reply.error, "type": "x"}})
                elif body.get("stream"):
                    self._sse(reply)
                else:
                    self._json(200, _completion(reply))

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for i, chunk in enumerate(_chunks(reply)):
                    if reply.hang_after is not None and i >= reply.hang_after:
                        owner._release.wait(60)
                        self.close_connection = True
                        return
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.api_base = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def script(self, model: str, *replies: Reply) -> None:
        """Queue replies for requests naming ``model`` (the part after the provider)."""
        with self._lock:
            self.scripts[model].extend(replies)

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            queue = self.scripts[str(body.get("model"))]
            if queue:
                return queue.popleft()
        if self.responder is not None:
            found = self.responder(body)
            if found is not None:
                return found
        return Reply(text="ok")

    def __enter__(self) -> LoopbackLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def _message(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, n, a in reply.tool_calls
        ]
    return message


def _completion(reply: Reply) -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 1,
        "model": "loopback",
        "choices": [
            {
                "index": 0,
                "message": _message(reply),
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
    }


def _chunks(reply: Reply) -> list[dict[str, Any]]:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "loopback"}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    body = reply.text or ""
    step = max(1, len(body) // 4)
    deltas += [{"content": body[i : i + step]} for i in range(0, len(body), step)]
    for index, (call_id, name, args) in enumerate(reply.tool_calls):
        raw = json.dumps(args)
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
    chunks.append(
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
        }
    )
    return chunks
