"""The parts a :class:`~magray.router.Router` wires together, each opened on first use.

Settings in, components out: the LLM client, the memory store, the tool registry (with
the router's own memory and todo tools), the sandbox context, the task list and the
plan store. Nothing here routes or answers; ``Router`` does that with these parts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from magray.common.metrics import MetricsRegistry, default_registry
from magray.router import _wiring

if TYPE_CHECKING:
    from magray.common.settings import Settings
    from magray.llm import LLMClient
    from magray.memory import MemoryStore
    from magray.todo import TodoStore
    from magray.tools import ConfirmRequest, ToolContext, ToolRegistry

__all__ = ["RouterParts"]


class RouterParts:
    """The components of a router, built from ``settings`` unless passed in.

    See :class:`~magray.router.Router` for the arguments.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        use_memory: bool | None = None,
        memory: MemoryStore | None = None,
        llm: LLMClient | None = None,
        registry: ToolRegistry | None = None,
        todo: TodoStore | None = None,
        plans: TodoStore | None = None,
        confirm: Callable[[ConfirmRequest], bool] | None = None,
        assume_yes: bool | None = None,
        cwd: Path | None = None,
        metrics: MetricsRegistry | None = None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] | None = None,
        retry_backoff: float | None = None,
    ) -> None:
        self.settings = settings
        self.use_memory = settings.router.use_memory if use_memory is None else use_memory
        self.store_interactions = self.use_memory and settings.router.store_interactions
        self._memory = memory
        self._llm = llm
        self._registry = registry
        self._tools_added = False
        self._todo = todo
        self._plans = plans
        self._confirm = confirm
        self._assume_yes = assume_yes
        self._cwd = cwd
        self._ctx: ToolContext | None = None
        self.metrics = metrics or default_registry()
        self.clock = clock
        self.sleep = sleep
        self.retry_backoff = retry_backoff
        self.session = uuid.uuid4().hex[:12]
        self.history: list[dict[str, Any]] = []
        self.model: str | None = None  # /model override; None = the configured chain

    # ------------------------------------------------------------ components

    @property
    def llm_enabled(self) -> bool:
        """True when a language model is configured (else: no-LLM mode)."""
        return self._llm is not None or _wiring.llm_configured(self.settings)

    @property
    def llm(self) -> LLMClient:
        if self._llm is None:
            self._llm = _wiring.llm_client(self.settings, metrics=self.metrics)
        return self._llm

    @property
    def memory(self) -> MemoryStore | None:
        """The memory store, opened on first use (None with memory off)."""
        if not self.use_memory:
            return None
        if self._memory is None:
            self._memory = _wiring.open_memory(self.settings)
        return self._memory

    @property
    def registry(self) -> ToolRegistry:
        """Installed tools plus memory_search/memory_add/todo_list/todo_add of this router."""
        if self._registry is None:
            self._registry = _wiring.tool_registry()
        if not self._tools_added:
            from magray.router._tools import register_router_tools

            register_router_tools(
                self._registry, memory=lambda: self.memory, todo=lambda: self.todo
            )
            self._tools_added = True
        return self._registry

    @property
    def tool_ctx(self) -> ToolContext:
        if self._ctx is None:
            self._ctx = _wiring.tool_context(
                self.settings, confirm=self._confirm, assume_yes=self._assume_yes, cwd=self._cwd
            )
        return self._ctx

    @property
    def todo(self) -> TodoStore:
        """The user's task list (todo_add / todo_list)."""
        if self._todo is None:
            self._todo = _wiring.open_todo(self.settings)
        return self._todo

    @property
    def plans(self) -> TodoStore:
        """The task database plans run in (see ``router.plan_db``)."""
        if self._plans is None:
            self._plans = _wiring.open_plans(self.settings)
        return self._plans

    def warm_up(self) -> bool:
        """Start importing litellm (seconds) in a background thread when the chain needs it.

        The REPL calls this at start, so the import overlaps with the user typing the
        first line. A one-shot ``magray chat "..."`` does not: overlapping the import
        with routing and memory retrieval was measured to gain nothing (both are
        mostly Python and share the GIL; see docs/benchmarks.md). Returns True when a
        warm-up started: a model served through litellm is configured (not one the
        direct OpenAI-compatible transport or llama.cpp in-process serves) and no
        client exists yet.
        """
        if self._llm is not None or not self.llm_enabled:
            return False
        return _wiring.llm_warm_up(self.settings)

    def tool_schemas(self) -> list[dict[str, Any]]:
        """Function schemas of the tools the sandbox policy enables."""
        return _wiring.tool_schemas(self.registry, self.tool_ctx)

    def models(self) -> list[str]:
        """The configured model chain (primary first, then fallbacks)."""
        if not self.llm_enabled:
            return []
        chain = self.llm.models
        return [*chain, *(m for m in self.settings.llm.models if m not in chain)]

    def use_model(self, name: str | None) -> None:
        """Answer with ``name`` only (``None``: the configured chain with fallbacks).

        Raises:
            LLMModelNotFoundError: ``name`` is not configured.
        """
        if name is not None and name not in self.models():
            known = ", ".join(self.models()) or "none (no-LLM mode)"
            from magray.llm import LLMModelNotFoundError

            raise LLMModelNotFoundError(
                f"model {name!r} is not configured (configured: {known})",
                hint="add it with `magray config set llm.model NAME` or under [llm.models]",
            )
        self.model = name

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
        if self._todo is not None:
            self._todo.close()
        if self._plans is not None:
            self._plans.close()
        if self._llm is not None:
            self._llm.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
