"""End to end: the chat REPL on a pseudo-terminal (prompt-toolkit line editing, streaming,
slash commands, Ctrl-C cancelling an answer without leaving), against a loopback LLM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import magray_router_e2ekit as kit  # loaded by tests/conftest.py
import magray_router_loopback as loopback  # loaded by tests/conftest.py
import pytest

pytestmark = pytest.mark.network_stub


@pytest.fixture
def server() -> Iterator[Any]:
    with loopback.LoopbackLLM() as srv:
        yield srv


def test_repl_session_with_slash_commands_and_ctrl_c(server: Any, tmp_path: Path) -> None:
    def respond(body: dict[str, Any]) -> Any:
        last = body["messages"][-1]["content"] or ""
        if "long story" in last:
            return loopback.stall("Once upon a time there was a story that never ended", 2)
        return loopback.text("Hello from the loopback model.")

    server.responder = respond
    session = kit.PtySession("chat", cwd=tmp_path, env=kit.llm_env(server.api_base))
    try:
        session.expect("magray>")
        session.line("/help")
        session.expect("/memory <query>")
        mark = session.mark()
        session.line("hello there")
        session.expect("Hello from the loopback model.")
        assert "Traceback" not in session.since(mark)
        session.line("/model")
        session.expect("openai/test-model")
        session.line("/memory hello there")
        session.expect("[mem:")
        # Ctrl-C while the answer streams cancels it and keeps the REPL
        session.line("tell me a long story")
        session.expect("Once upon")
        session.send("\x03")
        session.expect("(cancelled)")
        mark = session.mark()
        session.line("/clear")
        session.expect("conversation cleared")
        session.line("/save transcript.md")
        session.expect("saved ")
        session.line("/exit")
        session.expect("bye")
        assert session.close() == 0
    finally:
        session.kill()
    transcript = (tmp_path / "transcript.md").read_text()
    assert "# magray chat" in transcript
    history = Path(kit_history_dir()) / "chat_history"
    assert "hello there" in history.read_text()


def kit_history_dir() -> str:
    from magray.common import paths

    return str(paths.data_dir())


def test_bare_magray_opens_the_repl_in_no_llm_mode(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("TODO: try the REPL\n")
    session = kit.PtySession(cwd=tmp_path, env={})
    try:
        session.expect("no-LLM mode")
        session.expect("magray>")
        session.line("/tools")
        session.expect("memory_search")
        session.line("read notes.txt")
        session.expect("TODO: try the REPL")
        session.line("/model")
        session.expect("no model configured")
        session.line("/bogus")
        shown = session.expect("unknown command /bogus")
        mark = shown.rindex("unknown command /bogus")
        session.expect("magray>", after=mark)  # a control key needs the prompt (raw mode) up
        session.send("\x04")  # Ctrl-D at the prompt leaves
        session.expect("bye")
        assert session.close() == 0
    finally:
        session.kill()
    assert "Traceback" not in session.output
