"""The root ``magray`` group, its global options and error handling."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from magray.cli._context import AppContext
from magray.cli._lazy import LazyGroup

__all__ = ["COMMANDS", "cli", "main"]

# name -> ("module:attr", short help). Each module imports its library inside
# the command bodies, so listing or parsing costs nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "version": ("magray.cli.commands.version:version", "Show versions of magray and its packages."),
    "chat": ("magray.cli.commands.chat:chat", "Ask once, pipe text in, or open the chat REPL."),
    "smart": ("magray.cli.commands.smart:smart", "Plan a task into tool steps and run them."),
    "mcp": ("magray.cli.commands.mcp:mcp", "Serve memory and tools over MCP (stdio)."),
    "config": ("magray.cli.commands.config:config", "Show, get and set settings."),
    "health": ("magray.cli.commands.health:health", "Run all health checks."),
    "status": ("magray.cli.commands.status:status", "Versions, paths, settings and metrics."),
    "llm": ("magray.cli.commands.llm:llm", "Language models: list, test, ask."),
    "tools": ("magray.cli.commands.tools:tools", "List, describe and run sandboxed tools."),
    "todo": ("magray.cli.commands.todo:todo", "Task DAG: add, list, run and track tasks."),
    "memory": ("magray.cli.commands.memory:memory", "Store, search and manage memories."),
    "completion": ("magray.cli.commands.completion:completion", "Print a shell completion script."),
    "models": ("magray.cli.commands.models:models", "List, verify, import and quantize models."),
    "embed": ("magray.cli.commands.embed:embed", "Embed texts with the local ONNX model."),
    "gpu": ("magray.cli.commands.gpu:gpu", "GPU execution providers: info and benchmark."),
}


# Commands that run with a --config file that does not exist yet (`config init` creates it).
_MAY_CREATE_CONFIG = frozenset({"config", "completion"})


def _version_callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    click.echo(f"magray {version('magray-cli')}")
    ctx.exit(0)


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    invoke_without_command=True,  # bare `magray` opens the chat REPL on a terminal
)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default=None,
    help="Log line format on stderr (default: console on a TTY, else JSON).",
)
@click.option("--debug", is_flag=True, help="Debug logging and full tracebacks on errors.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="MAGRAY_CONFIG",
    help="Config file to use (default: $MAGRAY_HOME/config.toml or the platform config dir).",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version_callback,
    help="Show the version and exit.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    json_output: bool,
    log_format: str | None,
    debug: bool,
    config_path: Path | None,
) -> None:
    """magray: a local-first AI assistant for the terminal.

    Settings come from defaults < config.toml < MAGRAY_* environment variables
    (nested with __, e.g. MAGRAY_MEMORY__BACKEND). See `magray config show`.
    """
    app = ctx.ensure_object(AppContext)
    app.json = app.json or json_output
    app.debug = debug
    app.log_format = log_format
    app.config_path = config_path.expanduser().resolve() if config_path else None
    if (
        app.config_path is not None
        and ctx.invoked_subcommand not in _MAY_CREATE_CONFIG
        and not app.config_path.exists()
    ):
        from magray.common.settings import missing_config_error

        raise missing_config_error(app.config_path)
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            from magray.cli.commands._repl import run_repl

            run_repl(app)
            return
        click.echo(ctx.get_help())
        ctx.exit(2)  # as before: no subcommand outside a terminal is a usage error


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: runs ``cli`` and renders errors as one line.

    Everything the command creates is private (umask 077: files 0600, dirs 0700);
    the caller's umask is restored on the way out, so in-process callers keep theirs.
    """
    import os

    from magray.common.fs import use_private_umask

    user_umask = use_private_umask()
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    finally:
        os.umask(user_umask)


def _run(args: list[str]) -> Any:
    debug = "--debug" in args
    as_json = "--json" in args
    try:
        try:
            return cli.main(args=args, prog_name="magray", standalone_mode=False)
        finally:
            _persist_metrics()
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:  # `magray ... | head`
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:
        from magray.cli._output import exit_code_for, print_error
        from magray.common.errors import MagrayError

        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(exc, MagrayError):
            print_error(exc.code, exc.message, exc.hint, as_json=as_json)
        else:
            print_error(
                "internal",
                f"{type(exc).__name__}: {exc}",
                None if debug else "this is a bug in magray; rerun with --debug for the traceback",
                as_json=as_json,
            )
        sys.exit(exit_code_for(exc))


def _persist_metrics() -> None:
    """Fold this run's metrics into ``<data>/metrics.json`` for ``magray status``."""
    from magray.common.metrics import default_registry

    registry = default_registry()
    if registry.is_empty():
        return
    try:
        from magray.common import paths
        from magray.common.metrics import persist

        persist(registry, paths.ensure_dir(paths.data_dir()) / "metrics.json")
        registry.reset()
    except Exception:  # metrics must never turn a successful command into a failure
        import logging

        logging.getLogger("magray.cli").debug("could not persist metrics", exc_info=True)
