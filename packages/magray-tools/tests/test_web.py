"""web_fetch against a real HTTP server on 127.0.0.1 (explicitly allowed by the policy)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from magray.tools import Policy, ToolContext, ToolRegistry
from magray.tools.builtin import SearchHit, WebSearch
from magray.tools.builtin._html import html_to_text
from magray.tools.builtin._search import DuckDuckGoProvider

from .conftest import Server, TlsServer

pytestmark = pytest.mark.network_stub


@pytest.fixture
def local_ctx(workspace: Path) -> ToolContext:
    return ToolContext(
        policy=Policy.for_workspace(
            workspace,
            network_allowlist=("127.0.0.1",),
            allow_private_networks=["127.0.0.1/32"],
            timeout=10,
        )
    )


def fetch(registry: ToolRegistry, ctx: ToolContext, url: str, **args: Any):  # type: ignore[no-untyped-def]
    return registry.call("web_fetch", {"url": url, **args}, ctx)


def test_fetch_html_as_readable_text(
    registry: ToolRegistry, local_ctx: ToolContext, http_server: Server
) -> None:
    result = fetch(registry, local_ctx, f"{http_server.base}/page.html")
    assert result.ok, result.content
    assert result.data["title"] == "Test Page"
    assert "# Hello" in result.content
    assert "First para." in result.content
    assert "- one" in result.content
    assert "alert(1)" not in result.content
    assert f"{http_server.base}/text" in result.data["links"]
    raw = fetch(registry, local_ctx, f"{http_server.base}/page.html", raw=True)
    assert "<script>" in raw.content


def test_fetch_text_json_and_host_header(
    registry: ToolRegistry, local_ctx: ToolContext, http_server: Server
) -> None:
    assert "plain text body" in fetch(registry, local_ctx, f"{http_server.base}/text").content
    assert '{"a": 1}' in fetch(registry, local_ctx, f"{http_server.base}/json").content
    port = http_server.base.rsplit(":", 1)[1]
    echoed = fetch(registry, local_ctx, f"{http_server.base}/echo-host")
    assert echoed.content.strip().endswith(f"127.0.0.1:{port}")


def test_fetch_size_cap(
    registry: ToolRegistry, local_ctx: ToolContext, http_server: Server
) -> None:
    result = fetch(registry, local_ctx, f"{http_server.base}/big", max_bytes=1000)
    assert result.ok
    assert result.truncated
    assert result.data["bytes"] == 1000


def test_fetch_refuses_binary_content(
    registry: ToolRegistry, local_ctx: ToolContext, http_server: Server
) -> None:
    result = fetch(registry, local_ctx, f"{http_server.base}/image.png")
    assert result.error["code"] == "tool.web.content_type"  # type: ignore[index]


def test_fetch_http_error_status(
    registry: ToolRegistry, local_ctx: ToolContext, http_server: Server
) -> None:
    result = fetch(registry, local_ctx, f"{http_server.base}/missing")
    assert result.error["code"] == "tool.web.http_status"  # type: ignore[index]
    assert result.data["status"] == 404


def test_fetch_follows_safe_redirects(
    registry: ToolRegistry, local_ctx: ToolContext, http_server: Server
) -> None:
    result = fetch(registry, local_ctx, f"{http_server.base}/to-page")
    assert result.ok
    assert result.data["redirects"] == [f"{http_server.base}/page.html"]
    looped = fetch(registry, local_ctx, f"{http_server.base}/loop")
    assert looped.error["code"] == "tool.web.redirects"  # type: ignore[index]


def test_fetch_timeout(registry: ToolRegistry, workspace: Path, http_server: Server) -> None:
    ctx = ToolContext(
        policy=Policy.for_workspace(
            workspace, network_allowlist=("127.0.0.1",), allow_private_networks=["127.0.0.1/32"],
            timeout=0.5,
        )
    )  # fmt: skip
    result = fetch(registry, ctx, f"{http_server.base}/hang")
    assert result.error["code"] in {"tool.web.timeout", "timeout.tool"}  # type: ignore[index]


def test_unlisted_host_needs_confirmation(
    registry: ToolRegistry, workspace: Path, http_server: Server
) -> None:
    ctx = ToolContext(
        policy=Policy.for_workspace(workspace, allow_private_networks=["127.0.0.1/32"])
    )
    result = fetch(registry, ctx, f"{http_server.base}/text")
    assert result.error["code"] == "permission.unconfirmed"  # type: ignore[index]
    assert http_server.hits == []
    approved = ToolContext(policy=ctx.policy, confirm=lambda _r: True)
    assert fetch(registry, approved, f"{http_server.base}/text").ok


def test_async_fetch(registry: ToolRegistry, local_ctx: ToolContext, http_server: Server) -> None:
    result = asyncio.run(
        registry.acall("web_fetch", {"url": f"{http_server.base}/to-page"}, local_ctx)
    )
    assert result.ok, result.content
    assert result.data["title"] == "Test Page"
    blocked = asyncio.run(
        registry.acall("web_fetch", {"url": f"{http_server.base}/to-metadata"}, local_ctx)
    )
    assert blocked.error["code"] == "permission.ssrf"  # type: ignore[index]


def test_html_to_text_handles_pre_and_entities() -> None:
    title, text, links = html_to_text(
        "<title> T </title><p>a &amp; b</p><pre>  x = 1\n  y</pre><a href='http://e/x'>l</a>",
        base_url="http://e/",
    )
    assert title == "T"
    assert "a & b" in text
    assert "x = 1" in text
    assert links == ["http://e/x"]


# ---------------------------------------------------------------------- search
class FixedProvider:
    """A provider defined by the test: exercises the tool's plumbing, not a search engine."""

    name = "fixed"
    hosts = ("search.example.org",)

    def __init__(self) -> None:
        self.queries: list[str] = []

    def search(self, query: str, *, max_results: int, timeout: float) -> list[SearchHit]:
        self.queries.append(query)
        return [
            SearchHit(title=f"r{i}", url=f"https://e/{i}", snippet="s") for i in range(max_results)
        ]


def test_search_tool_uses_its_provider_and_policy(workspace: Path) -> None:
    provider = FixedProvider()
    tool = WebSearch(provider)
    from magray.tools import ToolRegistry as Registry

    reg = Registry()
    reg.register(tool)
    ask = ToolContext(policy=Policy.for_workspace(workspace))
    refused = reg.call("web_search", {"query": "x"}, ask)
    assert refused.error["code"] == "permission.unconfirmed"  # type: ignore[index]
    assert provider.queries == []
    allowed = ToolContext(
        policy=Policy.for_workspace(workspace, network_allowlist=("search.example.org",))
    )
    result = reg.call("web_search", {"query": "python", "max_results": 2}, allowed)
    assert result.ok
    assert [h["title"] for h in result.data["hits"]] == ["r0", "r1"]
    assert provider.queries == ["python"]


def test_duckduckgo_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ddgs")

    def offline(*_a: Any, **_k: Any) -> Any:
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    from magray.tools import WebError

    with pytest.raises(WebError, match="web search is unavailable") as info:
        DuckDuckGoProvider().search("python", max_results=3, timeout=2)
    assert info.value.code == "tool.web.offline"


def test_duckduckgo_without_extra_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ddgs(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ddgs":
            raise ImportError("no ddgs")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ddgs)
    from magray.common.errors import DependencyMissingError

    with pytest.raises(DependencyMissingError) as info:
        DuckDuckGoProvider().search("python", max_results=3, timeout=2)
    assert info.value.hint == 'pip install "magray-tools[search]"'


def test_unknown_search_provider(registry: ToolRegistry, workspace: Path) -> None:
    ctx = ToolContext(policy=Policy.for_workspace(workspace, search_provider="nope"))
    result = registry.call("web_search", {"query": "x"}, ctx)
    assert result.error["code"] == "config.search_provider"  # type: ignore[index]
    assert "duckduckgo" in result.error["hint"]  # type: ignore[index]


# ---------------------------------------------------------------------- https
def _tls_ctx(workspace: Path, ca: Path | None) -> ToolContext:
    return ToolContext(
        policy=Policy.for_workspace(
            workspace, network_allowlist=("localhost",), allow_private_networks=["127.0.0.1/32"],
            ca_bundle=ca, timeout=10,
        )
    )  # fmt: skip


def test_https_pinned_address_keeps_name_for_sni_and_cert_check(
    registry: ToolRegistry, workspace: Path, tls_server: TlsServer
) -> None:
    # The connection goes to the checked IP, yet TLS verifies the certificate against the
    # host *name* (the cert has DNS:localhost only, no IP) and sends it as SNI.
    result = registry.call(
        "web_fetch", {"url": f"{tls_server.base}/x"}, _tls_ctx(workspace, tls_server.cert)
    )
    assert result.ok, result.content
    port = tls_server.base.rsplit(":", 1)[1]
    assert f"secure hello via localhost:{port}" in result.content
    assert tls_server.sni == ["localhost"]


def test_https_untrusted_certificate_is_refused(
    registry: ToolRegistry, workspace: Path, tls_server: TlsServer
) -> None:
    result = registry.call("web_fetch", {"url": f"{tls_server.base}/x"}, _tls_ctx(workspace, None))
    assert not result.ok
    assert result.error["code"] == "tool.web.connect"  # type: ignore[index]
    assert "CERTIFICATE_VERIFY_FAILED" in result.error["message"]  # type: ignore[index]
