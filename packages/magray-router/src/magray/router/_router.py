"""The :class:`Router`: request → intent → answer, tool or plan, with memory as context."""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.common.errors import LLMError, MagrayError
from magray.common.log import get_logger
from magray.common.metrics import MetricsRegistry, default_registry
from magray.router import _wiring, rules
from magray.router._prompts import chat_system
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
    from magray.common.settings import Settings
    from magray.llm import Completion, LLMClient
    from magray.memory import MemoryStore
    from magray.router._plan import PlanRunner
    from magray.todo import TodoStore
    from magray.tools import ConfirmRequest, ToolContext, ToolRegistry

__all__ = ["CONFIGURE_LLM_COMMAND", "Router"]

_log = get_logger("magray.router")

#: The one command that turns no-LLM mode into LLM mode (quoted in notices).
CONFIGURE_LLM_COMMAND = "magray config set llm.model openai/gpt-4o-mini"
_NO_LLM_NOTICE = (
    "No language model is configured, so this answer is the most relevant memory; an LLM "
    f"would give a fuller answer. Configure one with `{CONFIGURE_LLM_COMMAND}` "
    "(and set OPENAI_API_KEY), or any litellm model string."
)
#: ``metadata["kind"]`` of a stored chat exchange.
EXCHANGE_KIND = "exchange"
_ASKED = "User asked: "
_USER = "User: "
_STDIN_LIMIT = 100_000  # characters of piped input sent to the model
_STORE_LIMIT = 4_000  # characters of one stored exchange
_SHOW_LIMIT = 2_000  # characters of a tool result shown in a no-LLM answer


def _ignore(_event: Event) -> None:
    return None


class Router:
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
        self._memory_failed: MagrayError | None = None
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

    def clear(self) -> None:
        """Forget the conversation so far (memory keeps the stored exchanges)."""
        self.history.clear()

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
        if self._todo is not None:
            self._todo.close()
        if self._plans is not None:
            self._plans.close()
        if self._llm is not None:
            self._llm.close()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        return [p for p in passages if not _transcript_of(p, question)][:count]

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
        if reply.mode == "no-llm" and reply.route in (Route.ANSWER, Route.MEMORY):
            text = f"{_ASKED}{reply.request}"  # the answer was memory itself: do not copy it
        elif reply.mode == "no-llm" and reply.tools:  # keep the gist, not whole tool outputs
            calls = "; ".join(
                f"{t.tool}({json.dumps(t.args)}) {'ok' if t.ok else 'failed'}" for t in reply.tools
            )
            text = f"{_USER}{reply.request}\nmagray ran {calls}: {_one_line(reply.text, 300)}"
        else:
            text = f"{_USER}{reply.request}\nmagray: {reply.text}"
        meta = {
            "kind": EXCHANGE_KIND,
            "request": reply.request[:_STORE_LIMIT],
            "route": reply.route.value,
            "mode": reply.mode,
            "model": reply.model,
            "citations": reply.citations,
        }
        try:
            reply.memory_id = self.remember(text[:_STORE_LIMIT], metadata=meta)
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
        content = request
        if stdin:
            piped = stdin[:_STDIN_LIMIT]
            cut = "\n[... input truncated]" if len(stdin) > _STDIN_LIMIT else ""
            content = f"{request}\n\n<stdin>\n{piped}{cut}\n</stdin>"
        messages: list[dict[str, Any]] = [
            {
                "role": "system",
                "content": chat_system(
                    passages, tools=bool(schemas), extra=self.settings.router.system_prompt
                ),
            },
            *self.history,
            {"role": "user", "content": content},
        ]
        outcomes: list[ToolOutcome] = []
        if first is not None:  # the rules already made the call: the model answers from it
            outcomes.append(first)
            prefilled: dict[str, Any] = {
                "id": "call_rules_1",
                "type": "function",
                "function": {"name": first.tool, "arguments": json.dumps(first.args)},
            }
            messages.append({"role": "assistant", "content": None, "tool_calls": [prefilled]})
            messages.append(
                {"role": "tool", "tool_call_id": "call_rules_1", "content": first.content}
            )
        usage: dict[str, Any] = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None}
        text = ""
        model: str | None = None
        for round_ in range(self.settings.router.max_tool_rounds + 1):
            last_round = round_ == self.settings.router.max_tool_rounds
            completion = self._complete(
                messages, None if last_round else (schemas or None), emit, stream=stream
            )
            model = completion.model
            _add_usage(usage, completion)
            text = completion.text or ""
            if not completion.tool_calls or last_round:
                break
            messages.append(completion.message())
            for call in completion.tool_calls:
                if call.error:
                    outcome = ToolOutcome(
                        call.name, {}, False, f"error: {call.error}", {"message": call.error}
                    )
                else:
                    outcome = self._run_tool(call.name, call.arguments, emit)
                outcomes.append(outcome)
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": outcome.content}
                )
        cited = [p.id for p in passages if p.id in text]
        route = Route.TOOL if outcomes else Route.ANSWER
        return Reply(
            request,
            text,
            route,
            decision,
            "llm",
            model=model,
            context=passages,
            citations=cited,
            tools=outcomes,
            usage=usage,
        )

    def _complete(
        self,
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
        emit: EventSink,
        *,
        stream: bool,
    ) -> Completion:
        """One LLM call; streamed as token events. A stream that breaks before its
        first token is retried once without streaming (which has retries and fallbacks)."""
        if not stream:
            completion = self.llm.complete(messages, tools=tools, model=self.model)
            self._note_fallback(completion, emit)
            if completion.text:
                emit(Event(EventKind.TOKEN, completion.text))
            return completion
        handle = self.llm.complete(messages, tools=tools, stream=True, model=self.model)
        got_text = False
        try:
            for delta in handle:
                if delta.text:
                    got_text = True
                    emit(Event(EventKind.TOKEN, delta.text))
        except LLMError as exc:
            if got_text:
                raise
            emit(Event(EventKind.RETRY, f"stream failed ({exc.code}); retrying without streaming"))
            return self._complete(messages, tools, emit, stream=False)
        assert handle.completion is not None
        self._note_fallback(handle.completion, emit)
        return handle.completion

    def _note_fallback(self, completion: Completion, emit: EventSink) -> None:
        failed = [a for a in completion.attempts if a.get("outcome") != "ok"]
        if failed:
            models = sorted({str(a.get("model")) for a in failed})
            emit(
                Event(
                    EventKind.RETRY,
                    f"recovered after {len(failed)} failed attempt(s) on {', '.join(models)}; "
                    f"answered by {completion.model}",
                    {"attempts": completion.attempts, "model": completion.model},
                )
            )

    # ------------------------------------------------------------ no-LLM routes

    def _memory_answer(self, request: str, stdin: str | None, decision: Decision) -> Reply:
        # With piped input, its tail (where a log's error usually is) joins the query.
        # Memory is the answer here, so stored exchanges (transcripts of earlier
        # questions) are left out, and so is anything below the relevance floor.
        query = f"{request}\n{stdin[-1000:]}" if stdin else request
        found = self._search(query, None, exchanges=False)
        floor = self.settings.router.answer_min_score
        passages = [p for p in found if p.score >= floor]
        if passages:
            lines = ["Most relevant memory:"]
            lines += [
                f"- {p.label} ({p.layer}, {p.score:.2f}) {_one_line(p.text)}" for p in passages
            ]
            text = "\n".join(lines)
        elif not self.use_memory:
            text = "Memory is off for this request, and no language model is configured."
        else:
            best = f" (best match {found[0].score:.2f}, below {floor:.2f})" if found else ""
            text = (
                f"Nothing relevant in memory for this request{best}. Store what you know with "
                f'`magray memory add "..."`, then ask again.'
            )
        if stdin:
            text += f"\n\n(Read {len(stdin)} characters from stdin; only an LLM can analyse them.)"
        return Reply(
            request,
            text,
            Route.ANSWER,
            decision,
            "no-llm",
            context=passages,
            citations=[p.id for p in passages],
            notice=_NO_LLM_NOTICE,
        )

    def _memory_reply(self, request: str, decision: Decision) -> Reply:
        query = str((decision.args or {}).get("query") or request)
        passages = self.search_memory(
            query, k=max(self.settings.router.context_k, 5), question=request
        )
        if passages:
            text = "\n".join(
                f"- {p.label} ({p.layer}, {p.score:.2f}) {_one_line(p.text)}" for p in passages
            )
        else:
            text = "Nothing in memory matches." if self.use_memory else "Memory is off."
        return Reply(
            request,
            text,
            Route.MEMORY,
            decision,
            self._mode(),
            context=passages,
            citations=[p.id for p in passages],
        )

    def _todo_reply(self, request: str, decision: Decision) -> Reply:
        tasks = _wiring.open_tasks(self.todo)
        counts = _wiring.task_counts(self.todo)
        if tasks:
            lines = [f"- #{t.id} [{t.status}] {t.title}" for t in tasks]
            text = "Open tasks:\n" + "\n".join(lines)
        else:
            text = "No open tasks."
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)
        if summary:
            text += f"\n({summary})"
        return Reply(request, text, Route.TODO, decision, self._mode())

    def _run_tool(self, name: str, args: dict[str, Any], emit: EventSink) -> ToolOutcome:
        emit(Event(EventKind.TOOL_START, name, {"tool": name, "args": args}))
        outcome = _wiring.call_tool(self.registry, name, args, self.tool_ctx)
        emit(Event(EventKind.TOOL_END, name, outcome.to_dict()))
        return outcome

    def _tool_reply(self, request: str, decision: Decision, emit: EventSink) -> Reply:
        if decision.tool is None:
            return self._memory_answer(request, None, decision)
        if decision.missing:
            text = decision.question or (
                f"To run {decision.tool} I need: {', '.join(decision.missing)}."
            )
            return Reply(request, text, Route.TOOL, decision, self._mode())
        outcome = self._run_tool(decision.tool, dict(decision.args or {}), emit)
        return Reply(
            request, _summarize_tool(outcome), Route.TOOL, decision, self._mode(), tools=[outcome]
        )

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


def _normalized(text: str) -> str:
    return " ".join(text.split()).casefold().rstrip("?!. ")


def _transcript_of(passage: Passage, query: str) -> bool:
    """True when ``passage`` is a stored exchange of the question ``query``."""
    if passage.metadata.get("kind") != EXCHANGE_KIND:
        return False
    asked = passage.metadata.get("request")
    if not isinstance(asked, str):  # stored before the request was kept in metadata
        first = passage.text.split("\n", 1)[0]
        asked = first.removeprefix(_ASKED).removeprefix(_USER)
    return _normalized(asked) == _normalized(query)


def _add_usage(usage: dict[str, Any], completion: Completion) -> None:
    usage["prompt_tokens"] += completion.usage.prompt_tokens
    usage["completion_tokens"] += completion.usage.completion_tokens
    if completion.usage.cost_usd is not None:
        usage["cost_usd"] = (usage["cost_usd"] or 0.0) + completion.usage.cost_usd


def _one_line(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _join(a: str | None, b: str) -> str:
    return f"{a} {b}" if a else b


def _summarize_tool(outcome: ToolOutcome) -> str:
    head = f"{outcome.tool} {'ok' if outcome.ok else 'failed'}"
    body = outcome.content.strip()
    if len(body) > _SHOW_LIMIT:
        lines = body[:_SHOW_LIMIT].splitlines()
        body = "\n".join(lines[:-1] or lines) + f"\n[... {len(outcome.content)} characters in all]"
    return f"{head}:\n{body}" if body else head
