"""The :class:`Router`: request → intent → answer, tool or plan, with memory as context."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from magray.common.errors import MagrayError
from magray.common.log import get_logger
from magray.router import _answer, _replies, _wiring, rules
from magray.router._parts import RouterParts
from magray.router._replies import CONFIGURE_LLM_COMMAND, EXCHANGE_KIND
from magray.router._types import (
    Decision,
    Event,
    EventKind,
    EventSink,
    Passage,
    PlanReport,
    Reply,
    Route,
    ToolOutcome,
)
from magray.router.errors import EmptyRequestError, PlanInvalidError

if TYPE_CHECKING:
    from magray.router._plan import PlanRunner

__all__ = ["CONFIGURE_LLM_COMMAND", "Router"]

_log = get_logger("magray.router")


def _ignore(_event: Event) -> None:
    return None


class Router(RouterParts):
    """magray's assistant: routes each request and answers it.

    Args:
        settings: All settings (``[router]``, ``[llm]``, ``[memory]``, ``[tools]``, ``[todo]``).
        use_memory: Retrieve context from and store exchanges in memory (default: settings).
        memory: An open memory store to use instead of opening the configured one.
        llm: An LLM client to use instead of building one from ``[llm]``.
        registry: A tool registry instead of the installed tools.
        todo: The user's task list instead of the configured one.
        plans: The task store plans run in instead of the configured one.
        confirm: Asked to approve tool calls the sandbox policy marks ``ask``.
        assume_yes: Approve every ``ask`` (``--yes``).
        cwd: Workspace root for tools (default: ``tools.workspace`` or the current dir).
        metrics: Where request counts and latencies go.
        clock: Monotonic seconds (for elapsed times).
        sleep: Waits between plan-step retries (inject a fake in tests).
        retry_backoff: Seconds before a failed plan step is retried (doubles each time).

    Example::

        from magray.common.settings import load_settings
        router = Router(load_settings().settings)
        reply = router.ask("what did we decide about the cache?")
        print(reply.text)
    """

    def clear(self) -> None:
        """Forget the conversation so far (memory keeps the stored exchanges)."""
        self.history.clear()

    # ------------------------------------------------------------ memory

    def search_memory(
        self,
        query: str,
        *,
        k: int | None = None,
        exchanges: bool = True,
        min_score: float | None = None,
        question: str | None = None,
    ) -> list[Passage]:
        """Memory passages relevant to ``query``, best first (empty with memory off).

        Args:
            query: The text to search for.
            k: How many passages at most (default ``router.context_k``).
            exchanges: Include stored chat exchanges (``kind = "exchange"``).
            min_score: Leave out passages scoring below this (default
                ``router.min_context_score``).
            question: The request being answered: its own stored exchanges are left
                out (a transcript must not answer its own question). ``None`` for a
                plain search such as the REPL's ``/memory``, which lists them too.
        """
        floor = self.settings.router.min_context_score if min_score is None else min_score
        found = self._search(query, k, exchanges=exchanges, question=question)
        return [p for p in found if p.score >= floor]

    def _search(
        self, query: str, k: int | None, *, exchanges: bool, question: str | None = None
    ) -> list[Passage]:
        store = self.memory
        if store is None or not query.strip():
            return []
        count = k if k is not None else self.settings.router.context_k
        if count <= 0 or store.count() == 0:
            return []
        where = None if exchanges else {"kind": {"$ne": EXCHANGE_KIND}}
        if question is None:
            return _wiring.memory_search(store, query, count, where=where)
        # a few extra hits make up for the transcripts of this same question dropped below
        passages = _wiring.memory_search(store, query, min(count + 4, 100), where=where)
        return [p for p in passages if not _replies.transcript_of(p, question)][:count]

    def remember(
        self, text: str, *, layer: str | None = None, metadata: dict[str, Any] | None = None
    ) -> str | None:
        """Store ``text`` in memory; returns its id (None with memory off)."""
        store = self.memory
        if store is None:
            return None
        meta = {"source": "magray-router", "session": self.session, **(metadata or {})}
        return _wiring.memory_add(
            store, text, meta, layer=layer or self.settings.router.interaction_layer
        )

    def _store_exchange(self, reply: Reply) -> None:
        if not self.store_interactions:
            return
        text, meta = _replies.exchange_record(reply)
        try:
            reply.memory_id = self.remember(text, metadata=meta)
        except MagrayError as exc:  # an answer must not be lost because memory failed
            _log.warning("router.store_failed", code=exc.code, message=exc.message)
            reply.notice = _join(reply.notice, f"(not stored in memory: {exc.message})")

    # ------------------------------------------------------------ routing

    def decide(self, text: str) -> Decision:
        """Route ``text``: rules first; the LLM intent analyzer when rules are unsure.

        With a model configured, a request the rules see as conversation goes to the
        answer path with the tools offered, so the model itself may still call one.
        """
        return self._decide(text, self.tool_schemas())

    def _decide(self, text: str, tools: Sequence[dict[str, Any]]) -> Decision:
        decision = rules.decide(text, tools)
        if not self.llm_enabled:
            return decision
        unsure = decision.confidence < self.settings.router.rules_confidence
        if decision.intent == "chat":
            return replace(decision, route=Route.ANSWER, source="rules+llm-tools")
        if not unsure and not (decision.route is Route.TOOL and decision.missing):
            return decision
        kind, confidence, signals, source = rules.llm_intent(self.llm, text)
        route = Route.PLAN if kind == "plan" else Route.ANSWER
        return Decision(route, kind, confidence, source, signals, explain=decision.explain)

    def ask(
        self,
        text: str,
        *,
        stdin: str | None = None,
        route: Route | str | None = None,
        on_event: EventSink | None = None,
        stream: bool = True,
    ) -> Reply:
        """Answer one request (the conversation so far is context).

        Args:
            text: What the user asked (may be empty when ``stdin`` has the content).
            stdin: Piped input the request is about (attached to the message).
            route: Force a route instead of deciding (``answer``, ``tool``, ``plan``, ...).
            on_event: Called with progress events: tokens, tool calls, plan steps.
            stream: Stream the LLM's answer as ``token`` events.

        Raises:
            EmptyRequestError: Neither text nor stdin.
            LLMError: The model chain failed (after retries and fallbacks).
        """
        emit = on_event or _ignore
        text = (text or "").strip()
        if not text and not (stdin or "").strip():
            raise EmptyRequestError(
                "nothing to answer: the request is empty",
                hint='pass a message (`magray chat "..."`) or pipe text into it',
            )
        request = text or "Explain this input."
        started = self.clock()
        # the enabled tools' schemas, built once per request (routing and the model's
        # offer both read them) and not at all on a route that needs none
        tools = functools.cache(self.tool_schemas)
        if route is not None:
            decision = Decision(Route(route), str(route), 1.0, "forced")
            if decision.route is Route.TOOL:  # which tool, and its arguments, still come from rules
                ruled = rules.decide(request, tools())
                decision = replace(ruled, route=Route.TOOL, source="forced")
        elif stdin:
            decision = Decision(Route.ANSWER, "chat", 1.0, "rules", ("input on stdin",))
        else:
            decision = self._decide(request, tools())
        emit(Event(EventKind.ROUTE, decision.route.value, decision.to_dict()))
        if decision.route is Route.PLAN:
            reply = self._plan_reply(request, decision, on_event)
        elif decision.route is Route.MEMORY:
            reply = self._memory_reply(request, decision)
        elif decision.route is Route.TODO:
            reply = self._todo_reply(request, decision)
        elif decision.route is Route.TOOL and not self.llm_enabled:
            reply = self._tool_reply(request, decision, emit)
        elif self.llm_enabled:
            # a missing API key is reported now, not after memory retrieval and tool calls
            self.llm.check_keys(self.model)
            first: ToolOutcome | None = None
            if decision.route is Route.TOOL and decision.tool and not decision.missing:
                first = self._run_tool(decision.tool, dict(decision.args or {}), emit)
            reply = self._llm_reply(
                request, stdin, decision, emit, tools, stream=stream, first=first
            )
        else:
            reply = self._memory_answer(request, stdin, decision)
        reply.elapsed_s = self.clock() - started
        self.metrics.counter("router.requests", route=reply.route.value, mode=reply.mode).inc()
        self.metrics.histogram("router.latency_ms", route=reply.route.value).observe(
            reply.elapsed_s * 1000
        )
        self._store_exchange(reply)
        self._remember_turn(request, reply.text)
        return reply

    def _mode(self) -> str:
        return "llm" if self.llm_enabled else "no-llm"

    def _remember_turn(self, request: str, answer: str) -> None:
        self.history += [
            {"role": "user", "content": request},
            {"role": "assistant", "content": answer},
        ]
        keep = 2 * self.settings.router.history_turns
        del self.history[: max(0, len(self.history) - keep)]

    # ------------------------------------------------------------ answer (LLM)

    def _llm_reply(
        self,
        request: str,
        stdin: str | None,
        decision: Decision,
        emit: EventSink,
        tools: Callable[[], list[dict[str, Any]]],
        *,
        stream: bool,
        first: ToolOutcome | None = None,
    ) -> Reply:
        passages = self.search_memory(request, question=request)
        schemas = (
            tools() if decision.route is not Route.ANSWER or (decision.source != "forced") else []
        )
        messages = _answer.chat_messages(
            request,
            stdin,
            passages,
            self.history,
            tools=bool(schemas),
            system_prompt=self.settings.router.system_prompt,
            first=first,
        )
        said = _answer.answer(
            self.llm,
            messages,
            schemas,
            emit,
            run_tool=self._run_tool,
            model=self.model,
            max_rounds=self.settings.router.max_tool_rounds,
            stream=stream,
        )
        outcomes = [first, *said.tools] if first is not None else said.tools
        return Reply(
            request,
            said.text,
            Route.TOOL if outcomes else Route.ANSWER,
            decision,
            "llm",
            model=said.model,
            context=passages,
            citations=[p.id for p in passages if p.id in said.text],
            tools=outcomes,
            usage=said.usage,
        )

    # ------------------------------------------------------------ no-LLM routes

    def _memory_answer(self, request: str, stdin: str | None, decision: Decision) -> Reply:
        # With piped input, its tail (where a log's error usually is) joins the query.
        # Memory is the answer here, so stored exchanges (transcripts of earlier
        # questions) are left out, and so is anything below the relevance floor.
        query = f"{request}\n{stdin[-1000:]}" if stdin else request
        found = self._search(query, None, exchanges=False)
        return _replies.memory_answer(
            request,
            stdin,
            decision,
            found,
            floor=self.settings.router.answer_min_score,
            use_memory=self.use_memory,
        )

    def _memory_reply(self, request: str, decision: Decision) -> Reply:
        query = str((decision.args or {}).get("query") or request)
        passages = self.search_memory(
            query, k=max(self.settings.router.context_k, 5), question=request
        )
        return _replies.memory_listing(
            request, decision, passages, mode=self._mode(), use_memory=self.use_memory
        )

    def _todo_reply(self, request: str, decision: Decision) -> Reply:
        tasks = _wiring.open_tasks(self.todo)
        counts = _wiring.task_counts(self.todo)
        return _replies.task_listing(request, decision, tasks, counts, mode=self._mode())

    def _run_tool(self, name: str, args: dict[str, Any], emit: EventSink) -> ToolOutcome:
        emit(Event(EventKind.TOOL_START, name, {"tool": name, "args": args}))
        outcome = _wiring.call_tool(self.registry, name, args, self.tool_ctx)
        emit(Event(EventKind.TOOL_END, name, outcome.to_dict()))
        return outcome

    def _tool_reply(self, request: str, decision: Decision, emit: EventSink) -> Reply:
        if decision.tool is None:
            return self._memory_answer(request, None, decision)
        if decision.missing:
            return _replies.missing_arguments(request, decision, mode=self._mode())
        outcome = self._run_tool(decision.tool, dict(decision.args or {}), emit)
        text = _replies.tool_result(outcome)
        return Reply(request, text, Route.TOOL, decision, self._mode(), tools=[outcome])

    # ------------------------------------------------------------ plans

    def _plan_reply(self, request: str, decision: Decision, on_event: EventSink | None) -> Reply:
        try:
            report = self.smart(request, on_event=on_event)
        except PlanInvalidError as exc:  # in a chat, say what is missing instead of failing
            problems = exc.details.get("problems") or [exc.message]
            text = "I could not turn this into steps I can run:\n" + "\n".join(
                f"- {p}" for p in problems
            )
            return Reply(request, text, Route.PLAN, decision, self._mode(), notice=exc.hint)
        return Reply(
            request, self.summarize(report), Route.PLAN, decision, self._mode(), plan=report
        )

    def smart(
        self, task: str, *, dry_run: bool = False, on_event: EventSink | None = None
    ) -> PlanReport:
        """Plan ``task`` into tool steps, write them as a todo DAG and run them.

        See :func:`magray.router.run_smart` for the recovery rules.
        """
        from magray.router._plan import run_smart

        return run_smart(self._plan_runner(), task, dry_run=dry_run, emit=on_event or _ignore)

    def summarize(self, report: PlanReport) -> str:
        """A text summary of a plan report (by the LLM when one is configured)."""
        from magray.router._plan import summarize

        return summarize(self._plan_runner(), report)

    def _plan_runner(self) -> PlanRunner:
        from magray.router._plan import PlanRunner

        return PlanRunner(
            settings=self.settings,
            registry=self.registry,
            tool_ctx=self.tool_ctx,
            plans=lambda: self.plans,
            llm=self.llm if self.llm_enabled else None,
            model=self.model,
            clock=self.clock,
            sleep=self.sleep,
            retry_backoff=self.retry_backoff,
        )


def _join(a: str | None, b: str) -> str:
    return f"{a} {b}" if a else b
