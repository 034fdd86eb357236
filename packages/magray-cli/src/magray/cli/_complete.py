"""Shell-completion callbacks for values: config keys, tool names, model names.

Each is a click ``shell_complete`` callback (``(ctx, param, incomplete) ->
list[CompletionItem]``). They run on every <TAB>, so they read cheap sources
(settings defaults, entry-point names, the model registry's cards) and never
fail: a broken source completes nothing rather than printing a traceback
into the user's shell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click
    from click.shell_completion import CompletionItem

    Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]

__all__ = [
    "complete_config_keys",
    "complete_embedding_models",
    "complete_llm_models",
    "complete_tool_names",
    "config_keys",
    "embedding_model_names",
    "llm_model_names",
    "tool_names",
]


def config_keys() -> list[str]:
    """Every dotted settings key (``memory.hnsw_m``, ...)."""
    from magray.common.settings import Settings, flatten

    return sorted(flatten(Settings.model_construct()))


def tool_names() -> list[str]:
    """Names of the installed tools (entry-point group ``magray.tools``)."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group="magray.tools")})


def embedding_model_names() -> list[str]:
    """``default`` plus the registry's embedding and reranking models."""
    from magray.ai import ModelRegistry
    from magray.common.settings import load_settings

    registry = ModelRegistry(models_dir=load_settings().settings.ai.models_dir)
    return ["default", *registry.names()]


def llm_model_names() -> list[str]:
    """Configured LLM model names: llm.model, fallbacks, [llm.models] keys, deployments."""
    from magray.common.settings import load_settings

    llm = load_settings().settings.llm
    names = [llm.model or "", *llm.fallbacks, *llm.models, *(d.name for d in llm.deployments)]
    return sorted({n for n in names if n})


def _completer(source: Callable[[], Iterable[str]]) -> Completer:
    def complete(
        _ctx: click.Context, _param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        from click.shell_completion import CompletionItem

        try:
            names = list(source())
        except Exception:  # completion must never break the user's shell
            return []
        return [CompletionItem(n) for n in names if n.startswith(incomplete)]

    complete.__doc__ = f"Complete with {source.__name__}()."
    return complete


complete_config_keys: Completer = _completer(config_keys)
complete_tool_names: Completer = _completer(tool_names)
complete_embedding_models: Completer = _completer(embedding_model_names)
complete_llm_models: Completer = _completer(llm_model_names)
