"""The direct transport: OpenAI-compatible ``/chat/completions`` over httpx, without litellm.

``openai/<name>`` models, ``local/<name>`` (llama.cpp's server) and the
OpenAI-compatible providers given an ``api_base`` (``hosted_vllm``, ``lm_studio``,
``llamafile``) speak the same wire format, so a cold one-shot call needs neither
litellm's import (seconds) nor its first-call set-up. Responses and stream chunks are
plain JSON dicts, which :mod:`magray.llm._stream` reads as it reads litellm's objects;
errors are raised as :class:`ProviderHTTPError` (or httpx's own), which
:func:`magray.llm._backend.map_error` maps like litellm's.

Prices come from the price list litellm ships as a JSON file, read without importing
litellm, and only after a reply arrived.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.llm._config import LOCAL_PREFIX, ModelConfig

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DIRECT_PROVIDERS",
    "DirectTransport",
    "ProviderHTTPError",
    "estimate_tokens",
    "model_info",
    "speaks_openai",
]

OPENAI_BASE = "https://api.openai.com/v1"
# Providers whose litellm adapter is plain OpenAI wire format once given an api_base.
DIRECT_PROVIDERS = frozenset({"hosted_vllm", "lm_studio", "llamafile"})
# litellm keyword arguments that configure the call rather than go into the request body.
_NOT_BODY = frozenset(
    {"model", "api_base", "base_url", "api_key", "timeout", "num_retries", "max_retries"}
)


def speaks_openai(cfg: ModelConfig) -> bool:
    """Whether ``cfg`` can go through the direct transport (an OpenAI-compatible server)."""
    if cfg.is_local:
        return True
    prefix, sep, _ = cfg.model.partition("/")
    return bool(sep) and (prefix == "openai" or (prefix in DIRECT_PROVIDERS and bool(cfg.api_base)))


class ProviderHTTPError(Exception):
    """A non-200 answer of an OpenAI-compatible server.

    Attributes:
        status_code: The HTTP status.
        code: The ``error.code`` (or ``error.type``) of the body, if any.
        response: The httpx response (its headers carry ``Retry-After``).
    """

    def __init__(self, status_code: int, message: str, code: str | None, response: Any) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.code = code
        self.response = response


def _error_from(response: httpx.Response, body: bytes) -> ProviderHTTPError:
    message, code = body.decode("utf-8", "replace").strip()[:500], None
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        code = error.get("code") or error.get("type")
    elif isinstance(error, str):
        message = error
    return ProviderHTTPError(response.status_code, message, str(code) if code else None, response)


_DONE: dict[str, Any] = {}


def _event(line: str) -> dict[str, Any] | None:
    """The chunk of one server-sent-event line; ``_DONE`` at the end, ``None`` to skip."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return _DONE
    return json.loads(data) if data else None


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if (chunk := _event(line)) is _DONE:
            return
        if chunk is not None:
            yield chunk


async def _aevents(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    async for line in lines:
        if (chunk := _event(line)) is _DONE:
            return
        if chunk is not None:
            yield chunk


class DirectTransport:
    """Sends litellm-style keyword arguments to an OpenAI-compatible server with httpx.

    One sync ``httpx.Client`` per server is kept (keep-alive); async calls use a client
    per call, closed with it, so no connection outlives its event loop.
    """

    name = "direct"

    def __init__(self) -> None:
        self._clients: dict[tuple[str, float], httpx.Client] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ the request

    @staticmethod
    def _request(kwargs: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any], float]:
        model = str(kwargs["model"])
        prefix, _, name = model.partition("/")
        base = kwargs.get("api_base") or kwargs.get("base_url")
        if not base and prefix == "openai":
            base = os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
        key = kwargs.get("api_key")
        if not key and prefix == "openai":
            key = os.environ.get("OPENAI_API_KEY")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        extra = kwargs.get("extra_headers")
        if isinstance(extra, dict):
            headers.update({str(k): str(v) for k, v in extra.items()})
        body = {k: v for k, v in kwargs.items() if k not in _NOT_BODY and k != "extra_headers"}
        body["model"] = name
        url = str(base or OPENAI_BASE).rstrip("/") + "/chat/completions"
        return url, headers, body, float(kwargs.get("timeout") or 60.0)

    def _client(self, url: str, timeout: float) -> httpx.Client:
        import httpx

        origin = "/".join(url.split("/", 3)[:3])
        key = (origin, timeout)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                # A client serves one origin. For plain http there is no certificate to
                # check, so the CA bundle (a tenth of a second to load) is not read.
                plain = origin.startswith("http://")
                client = httpx.Client(timeout=timeout, verify=not plain)
                self._clients[key] = client
            return client

    def send(self, kwargs: dict[str, Any], *, stream: bool) -> Any:
        """One request; the parsed body, or an iterator of stream chunks (dicts)."""
        url, headers, body, timeout = self._request(kwargs)
        client = self._client(url, timeout)
        request = client.build_request("POST", url, headers=headers, json=body)
        response = client.send(request, stream=True)
        if response.status_code != 200:
            try:
                raise _error_from(response, response.read())
            finally:
                response.close()
        if not stream:
            try:
                return json.loads(response.read())
            finally:
                response.close()
        return self._chunks(response)

    @staticmethod
    def _chunks(response: httpx.Response) -> Iterator[dict[str, Any]]:
        try:
            yield from _events(response.iter_lines())
        finally:
            response.close()

    async def asend(self, kwargs: dict[str, Any], *, stream: bool) -> Any:
        """The async twin of :meth:`send` (an async iterator of chunks when streaming)."""
        import httpx

        url, headers, body, timeout = self._request(kwargs)
        client = httpx.AsyncClient(timeout=timeout, verify=not url.startswith("http://"))
        try:
            request = client.build_request("POST", url, headers=headers, json=body)
            response = await client.send(request, stream=True)
            if response.status_code != 200:
                raise _error_from(response, await response.aread())
            if not stream:
                return json.loads(await response.aread())
        except BaseException:
            await client.aclose()
            raise
        return self._achunks(client, response)

    @staticmethod
    async def _achunks(
        client: httpx.AsyncClient, response: httpx.Response
    ) -> AsyncIterator[dict[str, Any]]:
        try:
            async for chunk in _aevents(response.aiter_lines()):
                yield chunk
        finally:
            await response.aclose()
            await client.aclose()

    # ------------------------------------------------------------ accounting

    def cost(
        self, model: str, response: Any, prompt_tokens: int, completion_tokens: int
    ) -> float | None:
        """USD of a call from litellm's bundled price list (``None`` if the model has no price)."""
        del response
        if model.startswith(LOCAL_PREFIX):
            return 0.0
        info = model_info(model)
        try:
            return float(
                prompt_tokens * float(info["input_cost_per_token"])
                + completion_tokens * float(info["output_cost_per_token"])
            )
        except (KeyError, TypeError, ValueError):
            return None

    def close(self) -> None:
        """Close the kept-alive sync connections."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


@cache
def _prices() -> dict[str, Any]:
    import importlib.util

    spec = importlib.util.find_spec("litellm")  # finds the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "model_prices_and_context_window_backup.json"
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
    return {}


def model_info(model: str) -> dict[str, Any]:
    """What litellm's bundled price list says about ``model`` (``{}`` when it is not listed)."""
    prices = _prices()
    _, _, name = model.partition("/")
    for key in (model, name):
        entry = prices.get(key) if key else None
        if isinstance(entry, dict):
            return entry
    return {}


def estimate_tokens(text: str) -> int:
    """A token count for a server that reports none (about four characters a token)."""
    return math.ceil(len(text) / 4) if text else 0
