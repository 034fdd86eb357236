"""web_search through a pluggable provider.

Providers come from the entry-point group ``magray.tools.search_providers``
(a class or factory taking no arguments, returning a :class:`SearchProvider`).
The built-in ``duckduckgo`` provider uses the ``ddgs`` package, an optional
extra: ``pip install "magray-tools[search]"``. There is no offline fallback
and never a made-up result: without network the tool fails and says so.
"""

from __future__ import annotations

import socket
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from magray.common.errors import ConfigError, DependencyMissingError
from magray.tools._model import Assessment, Risk, Tool, ToolContext, ToolResult
from magray.tools.errors import WebError

__all__ = [
    "PROVIDER_GROUP",
    "DuckDuckGoProvider",
    "SearchHit",
    "SearchProvider",
    "WebSearch",
    "load_provider",
]

PROVIDER_GROUP = "magray.tools.search_providers"


class SearchHit(BaseModel):
    """One search result."""

    title: str
    url: str
    snippet: str = ""


@runtime_checkable
class SearchProvider(Protocol):
    """What a search provider implements.

    Attributes:
        name: Provider name (its entry-point name).
        hosts: Hosts the provider contacts; checked against the network allowlist.
    """

    name: str
    hosts: tuple[str, ...]

    def search(self, query: str, *, max_results: int, timeout: float) -> list[SearchHit]:
        """Return up to ``max_results`` hits; raise :class:`WebError` on failure."""
        ...


class DuckDuckGoProvider:
    """DuckDuckGo through the maintained ``ddgs`` package (backend ``duckduckgo`` only)."""

    name = "duckduckgo"
    hosts: ClassVar[tuple[str, ...]] = ("duckduckgo.com", "html.duckduckgo.com")

    def search(self, query: str, *, max_results: int, timeout: float) -> list[SearchHit]:
        try:
            from ddgs import DDGS
        except ImportError:
            raise DependencyMissingError.for_extra(
                distribution="magray-tools", extra="search", feature="the duckduckgo provider"
            ) from None
        _require_dns(self.hosts[0])
        try:
            raw = DDGS(timeout=max(1, int(timeout))).text(
                query, max_results=max_results, backend="duckduckgo"
            )
        except Exception as exc:  # ddgs raises its own exception tree
            message = str(exc) or type(exc).__name__
            if "no results" in message.lower():
                return []
            raise WebError(
                f"duckduckgo search failed: {message}",
                hint="check your network connection; DuckDuckGo may also rate-limit, retry later",
                code="tool.web.search",
                retriable=True,
            ) from None
        return [
            SearchHit(
                title=str(r.get("title", "")),
                url=str(r.get("href", "")),
                snippet=str(r.get("body", "")),
            )
            for r in raw or []
        ]


def _require_dns(host: str) -> None:
    """Fail fast and clearly when offline, instead of waiting for a search timeout."""
    try:
        socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, OSError) as exc:
        raise WebError(
            f"web search is unavailable: cannot resolve {host} ({exc})",
            hint="you appear to be offline; web_search needs network access",
            code="tool.web.offline",
            retriable=True,
        ) from None


def load_provider(name: str) -> SearchProvider:
    """The provider registered under ``name`` in ``magray.tools.search_providers``.

    Raises:
        ConfigError: No such provider.
    """
    found = {ep.name: ep for ep in entry_points(group=PROVIDER_GROUP)}
    if name not in found:
        raise ConfigError(
            f"unknown search provider {name!r}",
            hint=f"set tools.search_provider to one of: {', '.join(sorted(found)) or '(none)'}",
            code="config.search_provider",
        )
    made: Any = found[name].load()()
    if not isinstance(made, SearchProvider):
        raise ConfigError(f"search provider {name!r} does not implement SearchProvider")
    return made


class WebSearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=500, description="What to search for.")
    max_results: int = Field(default=5, ge=1, le=25)


class WebSearch(Tool[WebSearchArgs]):
    name = "web_search"
    description = (
        "Search the web and return titles, URLs and snippets. Use web_fetch to read a result. "
        "Fails (never invents results) when offline."
    )
    args_model = WebSearchArgs
    risk = Risk.NETWORK

    def __init__(self, provider: SearchProvider | None = None) -> None:
        self._provider = provider

    def provider(self, ctx: ToolContext) -> SearchProvider:
        return self._provider or load_provider(ctx.policy.search_provider)

    def assess(self, args: WebSearchArgs, ctx: ToolContext) -> Assessment:
        provider = self.provider(ctx)
        blocked = [h for h in provider.hosts if not ctx.policy.host_allowed(h)]
        if blocked:
            return Assessment.ask(
                f"send the query to {', '.join(blocked)} ({provider.name}), "
                "not on tools.network_allowlist"
            )
        return Assessment.allow()

    def run(self, args: WebSearchArgs, ctx: ToolContext) -> ToolResult:
        provider = self.provider(ctx)
        hits = provider.search(
            args.query, max_results=args.max_results, timeout=max(ctx.remaining(), 1.0)
        )
        lines = [f"{i}. {h.title}\n   {h.url}\n   {h.snippet}" for i, h in enumerate(hits, 1)]
        return ToolResult(
            content="\n".join(lines) if hits else f"no results for {args.query!r}",
            data={"provider": provider.name, "hits": [h.model_dump() for h in hits]},
        )
