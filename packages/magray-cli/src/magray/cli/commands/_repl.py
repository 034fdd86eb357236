"""The chat REPL: line editing and history (prompt-toolkit), streaming, slash commands.

Ctrl-C while an answer streams cancels that answer and returns to the prompt;
Ctrl-C at the prompt clears the line; Ctrl-D or ``/exit`` leaves.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from magray.cli._context import AppContext
    from magray.router import Router

__all__ = ["SLASH_HELP", "run_repl"]

SLASH_HELP = {
    "/help": "this list",
    "/memory <query>": "search memory",
    "/tools": "the tools the sandbox enables",
    "/todo": "open tasks",
    "/model [name]": "show the models, or answer with only this one ('/model default' resets)",
    "/clear": "forget the conversation so far (memory keeps it)",
    "/save [file]": "write the conversation to a markdown file",
    "/exit": "leave (also Ctrl-D)",
}


def _history_path(app: AppContext) -> Path:
    from magray.common import paths

    configured = app.settings.router.history_file
    path = Path(configured).expanduser() if configured else paths.data_dir() / "chat_history"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run_repl(
    app: AppContext,
    *,
    no_memory: bool = False,
    model: str | None = None,
    yes: bool = False,
    plain: bool = False,
) -> None:
    """Run the interactive chat until ``/exit`` or Ctrl-D."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    from magray.cli.commands._assist import build_router

    session: PromptSession[str] = PromptSession(history=FileHistory(str(_history_path(app))))
    with build_router(app, no_memory=no_memory, yes=yes, model=model, interactive=True) as router:
        router.warm_up()  # litellm imports while the user types the first line
        _banner(router)
        while True:
            try:
                line = session.prompt("magray> ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not _slash(router, line):
                    break
                continue
            _answer(router, line, plain=plain)
    click.echo("bye", err=True)


def _banner(router: Router) -> None:
    if router.llm_enabled:
        mode = f"model {router.model or ', '.join(router.models()) or '?'}"
    else:
        from magray.router import CONFIGURE_LLM_COMMAND

        mode = f"no-LLM mode (tools and memory; `{CONFIGURE_LLM_COMMAND}` adds a model)"
    memory = "memory on" if router.use_memory else "memory off"
    click.secho(f"magray chat · {mode} · {memory}", err=True, bold=True)
    click.echo("/help lists commands; Ctrl-C cancels an answer; Ctrl-D leaves.", err=True)


def _answer(router: Router, line: str, *, plain: bool) -> None:
    from magray.cli._output import print_error
    from magray.cli.commands._assist import Renderer, print_reply_extras
    from magray.common.errors import MagrayError

    renderer = Renderer(stream=True, markdown=not plain).start()
    try:
        reply = router.ask(line, on_event=renderer)
    except KeyboardInterrupt:
        renderer.abort()
        click.secho("(cancelled)", err=True, fg="yellow")
        return
    except MagrayError as exc:
        renderer.abort()
        print_error(exc.code, exc.message, exc.hint)
        return
    except BaseException:
        renderer.abort()
        raise
    renderer.finish(reply)
    print_reply_extras(reply)


def _slash(router: Router, line: str) -> bool:
    """Run one slash command; False means leave the REPL."""
    from magray.cli._output import print_error
    from magray.common.errors import MagrayError

    name, _, arg = line.partition(" ")
    arg = arg.strip()
    try:
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            for usage, what in SLASH_HELP.items():
                click.echo(f"  {usage:<18} {what}")
        elif name == "/memory":
            _memory(router, arg)
        elif name == "/tools":
            for schema in router.tool_schemas():
                fn = schema["function"]
                first = (fn.get("description") or "").strip().splitlines()[:1]
                click.echo(f"  {fn['name']:<14} {first[0] if first else ''}")
        elif name == "/todo":
            from magray.router import Route

            click.echo(router.ask("open tasks", route=Route.TODO).text)
        elif name == "/model":
            _model(router, arg)
        elif name == "/clear":
            router.clear()
            click.echo("conversation cleared")
        elif name == "/save":
            path = _save(router, arg)
            click.echo(f"saved {path}")
        else:
            click.echo(f"unknown command {name}; /help lists them")
    except MagrayError as exc:
        print_error(exc.code, exc.message, exc.hint)
    return True


def _memory(router: Router, query: str) -> None:
    if not query:
        click.echo("usage: /memory <query>")
        return
    if not router.use_memory:
        click.echo("memory is off (--no-memory)")
        return
    passages = router.search_memory(query, k=5)
    if not passages:
        click.echo("nothing in memory matches")
    for p in passages:
        text = " ".join(p.text.split())
        click.echo(f"  [mem:{p.id}] {p.layer} {p.score:.2f}  {text[:160]}")


def _model(router: Router, name: str) -> None:
    if not name:
        models = router.models()
        if not models:
            click.echo("no model configured (no-LLM mode)")
        for m in models:
            mark = "*" if m == router.model or (router.model is None and m == models[0]) else " "
            click.echo(f" {mark} {m}")
        return
    router.use_model(None if name == "default" else name)
    click.echo(f"answering with {router.model or 'the configured chain'}")


def _save(router: Router, arg: str) -> Path:
    from magray.common.fs import atomic_write_text

    path = (
        Path(arg).expanduser() if arg else Path(f"magray-chat-{time.strftime('%Y%m%d-%H%M%S')}.md")
    )
    lines = ["# magray chat", ""]
    for message in router.history:
        who = "**you**" if message["role"] == "user" else "**magray**"
        lines += [f"{who}: {message['content']}", ""]
    atomic_write_text(path, "\n".join(lines))
    return path.resolve()
