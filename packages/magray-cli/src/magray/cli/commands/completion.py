"""``magray completion bash|zsh|fish``."""

from __future__ import annotations

import click


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:  eval "$(magray completion bash)"     (add to ~/.bashrc)
    zsh:   eval "$(magray completion zsh)"      (add to ~/.zshrc)
    fish:  magray completion fish > ~/.config/fish/completions/magray.fish
    """
    from click.shell_completion import get_completion_class

    from magray.cli._app import cli

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click ships all three
        raise click.UsageError(f"no completion support for {shell}")
    click.echo(cls(cli, {}, "magray", "_MAGRAY_COMPLETE").source())
