"""A click group that imports its subcommands only when they are used.

Built-in commands are ``name -> ("module:attr", "short help")`` entries, so
``magray --help`` can list them without importing anything; plugin commands
come from the ``magray.commands`` entry-point group and are imported for help
(their packages chose to be there).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["LazyGroup", "unknown_command_message"]

PLUGIN_GROUP = "magray.commands"


class LazyGroup(click.Group):
    """Resolves ``name -> "module:attr"`` on first use.

    Args:
        lazy_commands: ``{name: (import_path, short_help)}`` of built-in commands.
    """

    def __init__(
        self, *args: Any, lazy_commands: dict[str, tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        self._plugins: dict[str, EntryPoint] | None = None

    def plugins(self) -> dict[str, EntryPoint]:
        """Entry points of ``magray.commands`` not shadowing a built-in name."""
        if self._plugins is None:
            from importlib.metadata import entry_points  # not on the path of a built-in

            found = {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}
            self._plugins = {
                k: v
                for k, v in found.items()
                if k not in self.lazy_commands and k not in self.commands
            }
        return self._plugins

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands, *self.plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in self.lazy_commands:
            command = _import(self.lazy_commands[cmd_name][0])
        elif cmd_name in self.plugins():
            command = self.plugins()[cmd_name].load()
        else:
            return None
        if not isinstance(command, click.Command):
            raise click.ClickException(f"{cmd_name!r} does not name a click command")
        self.commands[cmd_name] = command
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, but "did you mean" also knows the commands not imported yet."""
        name = args[0] if args else ""
        if (
            not ctx.resilient_parsing
            and name
            and not name.startswith("-")
            and self.get_command(ctx, name) is None
        ):
            raise click.UsageError(unknown_command_message(name, self.list_commands(ctx)), ctx)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands using the stored short help, without importing built-ins."""
        rows: list[tuple[str, str]] = []
        limit = formatter.width - 6 - max((len(n) for n in self.list_commands(ctx)), default=0)
        for name in self.list_commands(ctx):
            if name in self.lazy_commands:  # same text whether or not it was imported yet
                rows.append((name, self.lazy_commands[name][1]))
                continue
            try:
                command = self.get_command(ctx, name)
            except Exception as exc:  # a broken plugin must not break --help
                rows.append((name, f"(cannot load: {exc})"))
                continue
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def unknown_command_message(name: str, known: list[str]) -> str:
    """``No such command 'staus'. Did you mean 'status'?`` (close matches only)."""
    from difflib import get_close_matches

    close = get_close_matches(name, known, n=3, cutoff=0.6)
    message = f"No such command {name!r}."
    if len(close) == 1:
        return f"{message} Did you mean {close[0]!r}?"
    if close:
        return f"{message} (Did you mean one of: {', '.join(map(repr, close))}?)"
    return message


def _import(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)
