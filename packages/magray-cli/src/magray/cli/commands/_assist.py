"""Shared by ``magray chat``, ``smart`` and the REPL: building the router, rendering replies.

Rendering rules: answer text goes to stdout (streamed as it arrives; markdown is
rendered with rich on a terminal, raw text in pipes); progress, tool calls,
recovery notes and notices go to stderr, so ``magray chat ... > out.md`` keeps
only the answer.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from magray.cli._context import AppContext
    from magray.router import Event, Reply, Router
    from magray.tools import ConfirmRequest

__all__ = ["Renderer", "build_router", "print_reply_extras"]

_confirm_lock = threading.Lock()


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def make_confirm(*, interactive: bool) -> Any:
    """A confirmation callback: a y/N prompt on a terminal, else refuse (use --yes)."""

    def confirm(request: ConfirmRequest) -> bool:
        if not interactive:
            return False
        with _confirm_lock:  # plan steps run in threads: one prompt at a time
            args = ", ".join(f"{k}={v!r}" for k, v in request.args.items())
            click.echo(f"{request.tool}({args}) needs approval: {request.reason}", err=True)
            return click.confirm("allow it?", default=False, err=True)

    return confirm


def build_router(
    app: AppContext,
    *,
    no_memory: bool = False,
    yes: bool = False,
    model: str | None = None,
    interactive: bool | None = None,
) -> Router:
    """A :class:`magray.router.Router` from the app's settings and the command's options."""
    from magray.router import Router

    router = Router(
        app.settings,
        use_memory=False if no_memory else None,
        confirm=make_confirm(interactive=_interactive() if interactive is None else interactive),
        assume_yes=True if yes else None,
    )
    if model is not None:
        router.use_model(model)
    return router


class Renderer:
    """Turns router events into terminal output.

    Args:
        stream: Print answer tokens as they arrive.
        markdown: Render the answer as markdown (rich) instead of raw text.
        quiet: No progress lines on stderr (``--json``).
    """

    def __init__(self, *, stream: bool, markdown: bool, quiet: bool = False) -> None:
        self.stream = stream
        self.markdown = markdown
        self.quiet = quiet
        self.text = ""
        self._live: Any = None
        self._spinner: Any = None
        self.printed = False

    def start(self, label: str = "thinking…") -> Renderer:
        """Show a spinner on stderr (terminals only) until the first event arrives."""
        if not self.quiet and sys.stderr.isatty():
            from magray.cli._output import console

            self._spinner = console(stderr=True).status(label, spinner="dots")
            self._spinner.start()
        return self

    def _stop_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None

    def __call__(self, event: Event) -> None:
        from magray.router import EventKind

        self._stop_spinner()
        kind = event.kind
        if kind is EventKind.TOKEN:
            self.text += event.text
            if not self.stream:
                return
            if self.markdown:
                self._live_update()
            else:
                click.echo(event.text, nl=False)
                sys.stdout.flush()
            self.printed = True
            return
        if self.quiet:
            return
        self._pause()
        if kind is EventKind.TOOL_START:
            args = event.data.get("args") or {}
            shown = ", ".join(f"{k}={_short(v)}" for k, v in args.items())
            click.secho(f"→ {event.text}({shown})", err=True, dim=True)
        elif kind is EventKind.TOOL_END:
            ok = event.data.get("ok")
            secs = event.data.get("duration_s", 0.0)
            mark = "✓" if ok else "✗"
            click.secho(
                f"  {mark} {event.text} ({secs:.2f}s)",
                err=True,
                dim=bool(ok),
                fg=None if ok else "red",
            )
        elif kind is EventKind.PLAN:
            steps = (event.data.get("plan") or {}).get("steps", [])
            title = "new plan" if event.data.get("replan") else "plan"
            click.secho(
                f"{title} ({len(steps)} steps, {event.data.get('planner')}):", err=True, bold=True
            )
            uses = event.data.get("uses") or {}
            for s in steps:
                after = f" after {', '.join(s['depends_on'])}" if s.get("depends_on") else ""
                if uses.get(s["id"]):
                    after += f", uses {', '.join(uses[s['id']])}"
                click.echo(f"  {s['id']}: {s['title']} [{s['tool']}]{after}", err=True)
        elif kind is EventKind.STEP:
            d = event.data
            state = d.get("kind", "")
            if state == "task_started":
                return
            label = {
                "task_succeeded": "done",
                "task_failed": "FAILED",
                "task_retrying": "retrying",
            }.get(state, state)
            extra = f": {d['error']}" if d.get("error") else ""
            click.echo(
                f"  [{d.get('finished')}/{d.get('total')}] {d.get('step')} {label}{extra}",
                err=True,
            )
        elif kind in (EventKind.RETRY, EventKind.NOTICE):
            click.secho(f"note: {event.text}", err=True, fg="yellow")

    # -------------------------------------------------------- markdown streaming

    def _live_update(self) -> None:
        from rich.markdown import Markdown

        if self._live is None:
            from rich.live import Live

            from magray.cli._output import console

            self._live = Live(console=console(), refresh_per_second=12, transient=False)
            self._live.start()
        self._live.update(Markdown(self.text))

    def _pause(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            self.text = ""  # what was shown stays on screen; a new block starts afresh

    def finish(self, reply: Reply | None) -> None:
        """Print what streaming did not (the whole answer when nothing streamed)."""
        self._stop_spinner()
        if self._live is not None:
            self._live.stop()
            self._live = None
            return
        if reply is None:
            return
        if self.printed:
            if not self.markdown:
                click.echo()
            return
        if self.markdown:
            from rich.markdown import Markdown

            from magray.cli._output import console

            console().print(Markdown(reply.text))
        else:
            click.echo(reply.text)

    def abort(self) -> None:
        """Ctrl-C: close the live display and end the line."""
        self._stop_spinner()
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif self.printed and not self.markdown:
            click.echo()


def print_reply_extras(reply: Reply) -> None:
    """Citations and notices on stderr after an answer."""
    if reply.citations and reply.mode == "llm":
        click.secho("cited: " + ", ".join(f"mem:{c}" for c in reply.citations), err=True, dim=True)
    if reply.notice:
        click.secho(f"note: {reply.notice}", err=True, fg="yellow")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
