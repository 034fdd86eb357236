"""``magray chat [MESSAGE]``: one answer, stdin as context, or the REPL."""

from __future__ import annotations

import sys

import click

from magray.cli._complete import complete_llm_models
from magray.cli._context import AppContext, json_option, pass_app

ROUTES = ["auto", "answer", "tool", "plan", "memory", "todo"]


@click.command()
@click.argument("message", nargs=-1)
@click.option("--no-memory", is_flag=True, help="Neither use nor store memory for this chat.")
@click.option(
    "--model",
    default=None,
    shell_complete=complete_llm_models,
    help="Use only this configured model (no fallbacks).",
)
@click.option(
    "--route",
    type=click.Choice(ROUTES),
    default="auto",
    show_default=True,
    help="Force a route instead of letting the router decide.",
)
@click.option("-y", "--yes", is_flag=True, help="Approve tool calls the sandbox asks about.")
@click.option("--plain", is_flag=True, help="Print raw text, no markdown rendering.")
@click.option("--no-stream", is_flag=True, help="Print the answer when it is complete.")
@click.option("--explain", is_flag=True, help="Show how the request was routed (on stderr).")
@json_option
@pass_app
def chat(
    app: AppContext,
    *,
    message: tuple[str, ...],
    no_memory: bool,
    model: str | None,
    route: str,
    yes: bool,
    plain: bool,
    no_stream: bool,
    explain: bool,
) -> None:
    """Ask magray once, or open the chat REPL when no MESSAGE is given.

    Text piped on stdin is the context of the question
    (`cat log.txt | magray chat "why did this fail?"`), or the question itself
    when no MESSAGE is given. With a language model configured the answer cites
    memory passages as [mem:ID]; without one, magray answers from tools and memory.
    Exit codes: 0 answered, 1 a tool or plan step failed, 2 bad usage or settings.
    """
    text = " ".join(message).strip()
    stdin_stream = sys.stdin
    piped: str | None = None
    if not stdin_stream.isatty():
        piped = stdin_stream.read()
        if not piped.strip():
            piped = None
    if not text and piped is None and stdin_stream.isatty() and not app.json:
        from magray.cli.commands._repl import run_repl

        run_repl(app, no_memory=no_memory, model=model, yes=yes, plain=plain)
        return
    if not text and piped is not None:
        text, piped = piped, None
    one_shot(
        app,
        text,
        stdin=piped,
        no_memory=no_memory,
        model=model,
        route=None if route == "auto" else route,
        yes=yes,
        plain=plain,
        stream=not no_stream,
        explain=explain,
    )


def one_shot(
    app: AppContext,
    text: str,
    *,
    stdin: str | None,
    no_memory: bool,
    model: str | None,
    route: str | None,
    yes: bool,
    plain: bool,
    stream: bool,
    explain: bool = False,
) -> None:
    """Answer one request and print it (JSON with ``--json``)."""
    from magray.cli._output import emit_json
    from magray.cli.commands._assist import Renderer, build_router, print_reply_extras

    markdown = not plain and sys.stdout.isatty()
    renderer = Renderer(stream=stream and not app.json, markdown=markdown, quiet=app.json)
    with build_router(app, no_memory=no_memory, yes=yes, model=model) as router:
        renderer.start()
        try:
            reply = router.ask(text, stdin=stdin, route=route, on_event=renderer)
        except BaseException:
            renderer.abort()
            raise
        if app.json:
            emit_json(reply.to_dict())
        else:
            renderer.finish(reply)
            print_reply_extras(reply)
            if explain:
                d = reply.decision
                if d.explain:
                    click.echo(d.explain, err=True)
                calls = ", ".join(t.tool for t in reply.tools) or "none"
                click.echo(
                    f"router: {d.route.value} by {d.source} (intent {d.intent}, "
                    f"confidence {d.confidence:.2f}) -> answered via {reply.route.value}, "
                    f"mode {reply.mode}, tool calls: {calls}",
                    err=True,
                )
    if not reply.ok:
        sys.exit(1)
