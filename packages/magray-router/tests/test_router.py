"""The router in-process: no-LLM mode, the LLM answer path, tool calls, recovery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from magray.common.errors import NotFoundError
from magray.llm import LLMModelNotFoundError
from magray.router import EmptyRequestError, Event, EventKind, Route

from .conftest import loopback


def _events() -> tuple[list[Event], Any]:
    seen: list[Event] = []
    return seen, seen.append


# ---------------------------------------------------------------- no-LLM mode


def test_no_llm_question_returns_memory_passages_and_the_configure_command(make_router) -> None:
    router = make_router()
    ids = router.memory.add(
        [
            "We decided to cache embeddings in an LRU of 10k entries.",
            "The deploy script lives in scripts/deploy.sh.",
        ],
        layer="insights",
    )
    reply = router.ask("what did we decide about caching embeddings?")
    assert reply.mode == "no-llm"
    assert reply.route is Route.ANSWER
    assert reply.context[0].id == ids[0]
    assert f"[mem:{ids[0]}]" in reply.text
    assert "magray config set llm.model" in (reply.notice or "")
    # the exchange went to the interact layer (the question only: the answer was memory)
    stored = router.memory.get(reply.memory_id)
    assert str(stored.layer) == "interact"
    assert "caching embeddings" in stored.text
    assert stored.metadata["route"] == "answer"


def test_no_llm_with_empty_memory_says_so(make_router) -> None:
    reply = make_router().ask("why is the sky blue?")
    assert "Nothing relevant in memory for this request." in reply.text
    assert 'magray memory add "..."' in reply.text
    assert reply.citations == []


def test_no_memory_switch_neither_reads_nor_stores(make_router) -> None:
    router = make_router(memory=False)
    reply = router.ask("hello there")
    assert reply.memory_id is None
    assert router.memory is None
    assert "Memory is off" in reply.text


def test_empty_request_is_a_clear_error(make_router) -> None:
    with pytest.raises(EmptyRequestError) as info:
        make_router().ask("   ")
    assert info.value.hint


def test_forced_todo_route_lists_open_tasks(make_router) -> None:
    router = make_router()
    router.todo.add("write the release notes")
    reply = router.ask("what is left", route="todo")
    assert reply.route is Route.TODO
    assert "write the release notes" in reply.text


def test_forced_memory_route_searches(make_router) -> None:
    router = make_router()
    router.remember("the staging database is called orca", layer="assets")
    reply = router.ask("staging database name", route="memory")
    assert "orca" in reply.text


# ---------------------------------------------------------------- LLM answers


def test_llm_answer_gets_memory_context_and_cites_it(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base)
    mem_id = router.remember("The on-call rotation changes every Monday at 9:00.")
    llm_server.responder = lambda body: loopback.text(f"It changes on Mondays [mem:{mem_id}].")
    events, sink = _events()
    reply = router.ask("when does the on-call rotation change?", on_event=sink)
    assert reply.mode == "llm"
    assert reply.text == f"It changes on Mondays [mem:{mem_id}]."
    assert reply.citations == [mem_id]
    assert reply.model == "openai/test-model"
    tokens = [e.text for e in events if e.kind is EventKind.TOKEN]
    assert len(tokens) > 1
    assert "".join(tokens) == reply.text
    request = llm_server.requests[-1]
    assert request["stream"] is True
    system = request["messages"][0]["content"]
    assert f"[mem:{mem_id}]" in system
    assert "every Monday" in system
    stored = router.memory.get(reply.memory_id)
    assert "It changes on Mondays" in stored.text


def test_conversation_history_is_sent_and_clear_forgets_it(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.script("test-model", loopback.text("Nice to meet you, Ada."), loopback.text("Ada."))
    router.ask("my name is Ada")
    router.ask("what is my name?")
    roles = [m["role"] for m in llm_server.requests[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    router.clear()
    router.ask("and now?")
    assert [m["role"] for m in llm_server.requests[-1]["messages"]] == ["system", "user"]


def test_stdin_is_attached_to_the_question(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.responder = lambda body: loopback.text("libfoo is missing")
    reply = router.ask("why did this fail?", stdin="error: libfoo.so not found\n")
    user = llm_server.requests[-1]["messages"][-1]["content"]
    assert "<stdin>" in user
    assert "libfoo.so not found" in user
    assert reply.text == "libfoo is missing"


def test_llm_tool_call_runs_through_the_sandbox_and_is_summarised(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.script(
        "test-model",
        loopback.tool_call("file_read", {"path": "notes.txt"}),
        loopback.text("notes.txt has one TODO: write the docs."),
    )
    events, sink = _events()
    reply = router.ask("explain what is in my notes", on_event=sink)
    assert reply.route is Route.TOOL
    assert reply.text == "notes.txt has one TODO: write the docs."
    (outcome,) = reply.tools
    assert outcome.ok
    assert "TODO: write the docs" in outcome.content
    assert "file_read" in {t["function"]["name"] for t in llm_server.requests[0]["tools"]}
    tool_msg = llm_server.requests[-1]["messages"][-1]
    assert tool_msg["role"] == "tool"
    assert "TODO: write the docs" in tool_msg["content"]
    assert [e.kind for e in events if e.kind.value.startswith("tool")] == [
        EventKind.TOOL_START,
        EventKind.TOOL_END,
    ]


def test_confident_rules_make_the_call_and_the_model_answers_from_it(
    make_router, llm_server
) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.script("test-model", loopback.text("It lists one TODO."))
    reply = router.ask("read notes.txt")
    assert reply.decision.tool == "file_read"
    assert reply.decision.source == "rules"
    (outcome,) = reply.tools
    assert outcome.args == {"path": "notes.txt"}
    assert outcome.ok
    assert len(llm_server.requests) == 1  # no intent call: the rules were sure
    sent = llm_server.requests[0]["messages"]
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "file_read"
    assert "TODO: write the docs" in sent[-1]["content"]
    assert reply.text == "It lists one TODO."


def test_unsure_rules_ask_the_llm_intent_analyzer(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False, rules_confidence=0.99)

    def respond(body):
        if loopback.schema_name(body) == "IntentReply":
            return loopback.text('{"intent": "chat", "confidence": 0.9, "reason": "a question"}')
        return loopback.text("answered")

    llm_server.responder = respond
    reply = router.ask("show git status")
    assert reply.decision.source == "llm"
    assert reply.decision.intent == "chat"
    assert reply.text == "answered"


def test_tool_call_outside_the_workspace_is_refused(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.script(
        "test-model",
        loopback.tool_call("file_read", {"path": "/etc/passwd"}),
        loopback.text("I may not read that file."),
    )
    reply = router.ask("explain what is in the password file")
    (outcome,) = reply.tools
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error["code"].startswith("permission")
    assert "root:" not in outcome.content


# ---------------------------------------------------------------- recovery


def test_server_error_is_retried(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.script("test-model", loopback.error(500), loopback.text("second try"))
    events, sink = _events()
    reply = router.ask("hi", on_event=sink)
    assert reply.text == "second try"
    assert any(e.kind is EventKind.RETRY for e in events)


def test_fallback_model_takes_over(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False, fallbacks=("openai/backup",))
    llm_server.script("test-model", loopback.error(500), loopback.error(500))
    llm_server.script("backup", loopback.text("backup here"))
    events, sink = _events()
    reply = router.ask("hi", on_event=sink)
    assert reply.text == "backup here"
    assert reply.model == "openai/backup"
    notes = [e.text for e in events if e.kind is EventKind.RETRY]
    assert notes
    assert "openai/backup" in notes[-1]


def test_a_timeout_is_retried(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False, timeout=0.5)
    llm_server.script("test-model", loopback.hang(), loopback.text("after the timeout"))
    events, sink = _events()
    reply = router.ask("hi", on_event=sink)
    assert reply.text == "after the timeout"
    assert any(e.kind is EventKind.RETRY for e in events)


def test_every_model_failing_raises_the_llm_error(make_router, llm_server) -> None:
    from magray.common.errors import LLMError

    router = make_router(api_base=llm_server.api_base, memory=False)
    llm_server.responder = lambda body: loopback.error(500)
    with pytest.raises(LLMError) as info:
        router.ask("hi")
    assert info.value.hint
    assert router.history == []  # a failed exchange is not part of the conversation


@pytest.mark.parametrize(
    ("request_text", "tool", "args"),
    [
        ("read notes.txt", "file_read", {"path": "notes.txt"}),
        ("remember that the staging db is orca", "memory_add", {"text": "the staging db is orca"}),
        ("what do you remember about the staging db", "memory_search", {"query": "the staging db"}),
        ("remind me to write the release notes", "todo_add", {"title": "write the release notes"}),
        ("what are my open tasks", "todo_list", {"status": "open"}),
    ],
)
def test_no_llm_rules_route_to_tools(make_router, request_text, tool, args) -> None:
    decision = make_router(memory=False).decide(request_text)
    assert decision.route is Route.TOOL
    assert decision.tool == tool
    assert decision.args == args


def test_no_llm_memory_and_todo_round_trip(make_router) -> None:
    router = make_router()
    router.ask("remember that the staging database is called orca")
    reply = router.ask("what do you remember about the staging database")
    assert "orca" in reply.text
    router.ask("remind me to write the release notes")
    assert "write the release notes" in router.ask("what are my open tasks").text


def test_no_llm_marks_tasks_done_by_id_and_by_title(make_router) -> None:
    router = make_router(memory=False)
    router.ask("add todo: write the release notes")
    router.ask("add todo: renew the TLS cert")
    first = router.ask("mark task 1 as done")
    assert first.tools[0].tool == "todo_done"
    assert "done: task #1 write the release notes" in first.text
    assert "renew the TLS cert" in router.ask("what are my open tasks").text
    assert "write the release notes" not in router.ask("what are my open tasks").text
    router.ask('mark "TLS cert" done')
    assert "no open tasks" in router.ask("what are my open tasks").text
    again = router.ask("complete task 1")  # already done: a clear error, not a crash
    assert "cannot become done" in again.text


def test_todo_done_refuses_an_ambiguous_title(make_router) -> None:
    router = make_router(memory=False)
    router.ask("add todo: fix the login bug")
    router.ask("add todo: fix the logout bug")
    reply = router.ask('mark "fix the" done')
    assert "2 open tasks match" in reply.text
    assert "write" not in reply.text
    assert "fix the login bug" in router.ask("what are my open tasks").text


def test_unknown_model_is_refused(make_router, llm_server) -> None:
    router = make_router(api_base=llm_server.api_base, memory=False)
    with pytest.raises(LLMModelNotFoundError, match="is not configured") as info:
        router.use_model("openai/nope")
    assert isinstance(info.value, NotFoundError)  # one "model not found" error: exit code 3
    assert info.value.code == "llm.model_not_found"
    router.use_model("openai/test-model")
    assert router.model == "openai/test-model"


def test_plan_json_is_what_the_loopback_returns() -> None:
    reply = loopback.plan_reply({"goal": "g", "steps": []})
    assert json.loads(reply.text or "") == {"goal": "g", "steps": []}


def test_forced_tool_route_takes_tool_and_arguments_from_the_rules(make_router) -> None:
    router = make_router()
    reply = router.ask("read notes.txt", route="tool")
    assert reply.decision.source == "forced"
    assert reply.tools[0].tool == "file_read"
    # the stored exchange keeps the gist of the call, not the whole file
    stored = router.memory.get(reply.memory_id).text
    assert 'file_read({"path": "notes.txt"}) ok' in stored


def test_ask_rules_go_to_the_confirmation_callback(make_router, llm_server) -> None:
    asked: list[Any] = []
    answers = iter([False, True])

    def confirm(request: Any) -> bool:
        asked.append(request)
        return next(answers)

    rules = [{"tool": "file_write", "action": "ask", "reason": "writes need a yes"}]
    router = make_router(
        api_base=llm_server.api_base, memory=False, confirm=confirm, tools={"rules": rules}
    )
    call = loopback.tool_call("file_write", {"path": "out.txt", "content": "hi"})
    llm_server.script("test-model", call, loopback.text("refused"), call, loopback.text("written"))
    first = router.ask("explain greetings")
    assert not first.tools[0].ok
    assert first.tools[0].error["code"] == "permission.unconfirmed"
    second = router.ask("explain greetings once more")
    assert second.tools[0].ok
    assert [r.reason for r in asked] == ["writes need a yes", "writes need a yes"]
    assert (router.tool_ctx.policy.primary_root / "out.txt").read_text() == "hi"


def test_a_plan_that_cannot_run_is_explained_in_chat(make_router) -> None:
    router = make_router(memory=False)
    reply = router.ask("grep TODO then read the file")
    assert reply.route is Route.PLAN
    assert "could not turn this into steps" in reply.text
    assert "lacks" in reply.text


def test_no_llm_stdin_joins_the_memory_query(make_router) -> None:
    router = make_router()
    router.remember(
        "libfoo.so goes missing after an OS upgrade: reinstall libfoo-dev", layer="assets"
    )
    reply = router.ask("why did this fail?", stdin="step 3\nerror: libfoo.so: cannot open file\n")
    assert "reinstall libfoo-dev" in reply.text
    assert "only an LLM can analyse them" in reply.text


def test_warm_up_starts_only_when_litellm_will_be_needed(tmp_path, monkeypatch) -> None:
    import threading

    from magray.common.settings import Settings
    from magray.llm import _backend
    from magray.router import Router

    imported = threading.Event()
    monkeypatch.setattr(_backend, "litellm_module", imported.set)  # the thread's target
    no_llm = Router(Settings(), use_memory=False)
    assert no_llm.warm_up() is False
    local = Router(Settings(llm={"model": "local/gemma3-270m"}), use_memory=False)
    assert local.warm_up() is False  # llama.cpp in-process: litellm is not needed
    direct = Router(Settings(llm={"model": "openai/gpt-4o-mini"}), use_memory=False)
    assert direct.warm_up() is False  # the direct OpenAI-compatible transport serves it
    assert not imported.is_set()
    anthropic = Router(Settings(llm={"model": "anthropic/claude-3-5-haiku"}), use_memory=False)
    assert anthropic.warm_up() is True
    assert imported.wait(5)


def test_a_missing_api_key_is_reported_before_memory_is_opened(tmp_path, monkeypatch) -> None:
    import pytest

    from magray.common.errors import LLMError
    from magray.common.settings import Settings
    from magray.router import Router

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = Settings(
        llm={"model": "openai/gpt-4o-mini"}, memory={"path": str(tmp_path / "memory")}
    )
    router = Router(settings, use_memory=True)
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        router.ask("what did we decide about the cache?")
    assert router._memory is None  # no store opened, no question embedded
    assert not (tmp_path / "memory").exists()
