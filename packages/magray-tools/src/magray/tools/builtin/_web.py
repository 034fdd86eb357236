"""web_fetch: HTTP(S) GET with an SSRF guard applied after DNS resolution.

For every hop (the first URL and each redirect) the host is resolved, every
address is checked against the policy (private, loopback, link-local,
multicast, reserved and cloud-metadata addresses are refused unless the
policy allows that network), and the connection is then made to the
checked address itself (the ``Host`` header and TLS SNI keep the name), so a
second DNS answer cannot swap in an internal address (DNS rebinding).
Redirects are followed by hand, at most :data:`MAX_REDIRECTS`, each one
checked again. Proxies and ``.netrc`` from the environment are ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from magray.tools._model import Assessment, ConfirmRequest, Risk, Tool, ToolContext, ToolResult
from magray.tools.builtin._html import html_to_text
from magray.tools.errors import PolicyDeniedError, WebError

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_REDIRECTS", "WebFetch", "check_url"]

MAX_REDIRECTS = 5
HARD_MAX_BYTES = 10 * 1024 * 1024
_TEXT_TYPES = (
    "text/", "application/json", "application/xml", "application/xhtml+xml",
    "application/rss+xml", "application/atom+xml", "application/javascript",
    "application/ld+json", "application/x-yaml", "application/yaml", "application/toml",
)  # fmt: skip
_USER_AGENT = "magray-tools (+https://github.com/magray; local assistant)"


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    host: str
    address: str  # the checked IP the connection goes to


def _parse(url: str) -> httpx.URL:
    import httpx

    if "\x00" in url or any(c in url for c in "\r\n\t"):
        raise PolicyDeniedError("URL contains control characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise PolicyDeniedError(f"invalid URL {url!r}: {exc}") from None
    if parsed.scheme not in {"http", "https"}:
        raise PolicyDeniedError(
            f"URL scheme {parsed.scheme or '(none)'!r} is not allowed",
            hint="only http:// and https:// URLs can be fetched",
        )
    if not parsed.host:
        raise PolicyDeniedError(f"URL {url!r} has no host")
    if parsed.userinfo:
        raise PolicyDeniedError(
            "URLs with embedded credentials are refused", hint="remove the user:password@ part"
        )
    return parsed


def _check_addresses(ctx: ToolContext, host: str, infos: list[Any]) -> str:
    if not infos:
        raise WebError(f"{host} did not resolve to any address", code="tool.web.dns")
    chosen = ""
    for info in infos:
        raw = info[4][0]
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        allowed, why = ctx.policy.address_allowed(address)
        if not allowed:
            hint = (
                "cloud metadata endpoints are never reachable from tools"
                if "metadata" in why
                else "if you really mean to reach it, add its network to "
                "tools.allow_private_networks"
            )
            raise PolicyDeniedError(
                f"{host} resolves to {address}: {why}; refusing to connect (SSRF guard)",
                hint=hint,
                code="permission.ssrf",
                details={"host": host, "address": str(address)},
            )
        chosen = chosen or str(address)
    return chosen


def _resolve_sync(ctx: ToolContext, url: httpx.URL) -> _Target:
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebError(
            f"cannot resolve {url.host}: {exc}",
            hint="check the host name and your network connection (offline?)",
            code="tool.web.dns",
            retriable=True,
        ) from None
    return _Target(url, url.host, _check_addresses(ctx, url.host, list(infos)))


def check_url(ctx: ToolContext, url: str) -> httpx.URL:
    """Parse ``url`` and resolve + check its host now (no request is made).

    Raises:
        PolicyDeniedError: Bad scheme, credentials, or a blocked address.
        WebError: The host does not resolve.
    """
    parsed = _parse(url)
    _resolve_sync(ctx, parsed)
    return parsed


def _request_parts(target: _Target) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    host_header = target.url.netloc.decode("ascii")
    ip = target.address
    pinned = target.url.copy_with(host=ip)
    headers = {
        "Host": host_header,
        "User-Agent": _USER_AGENT,
        "Accept": "text/html,text/*;q=0.9,*/*;q=0.5",
    }
    extensions: dict[str, Any] = {}
    if target.url.scheme == "https":
        extensions["sni_hostname"] = target.host
    return pinned, headers, extensions


def _next_hop(ctx: ToolContext, current: httpx.URL, response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise WebError(f"redirect {response.status_code} without a Location header")
    nxt = _parse(str(current.join(location)))
    if nxt.host != current.host and not ctx.policy.host_allowed(nxt.host):
        _resolve_sync(ctx, nxt)  # refuse internal targets outright instead of asking about them
        request = ConfirmRequest(
            "web_fetch", {"url": str(nxt)}, f"redirect from {current.host} to {nxt.host}"
        )
        if not (ctx.policy.assume_yes or ctx.confirm(request)):
            raise PolicyDeniedError(
                f"{current.host} redirects to {nxt.host}, which is not on the network allowlist",
                hint="fetch the new URL directly, or add its host to tools.network_allowlist",
                code="permission.unconfirmed",
            )
    return nxt


def _content_type_ok(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return not kind or kind.startswith(_TEXT_TYPES) or kind.endswith(("+json", "+xml"))


def _build_result(
    url: httpx.URL,
    response: httpx.Response,
    body: bytes,
    *,
    cut: bool,
    hops: list[str],
    raw: bool,
) -> ToolResult:
    content_type = response.headers.get("content-type", "")
    encoding = response.charset_encoding or "utf-8"
    try:
        text = body.decode(encoding, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    title, links = "", list[str]()
    if "html" in content_type.lower() and not raw:
        title, text, links = html_to_text(text, base_url=str(url))
    data = {
        "url": str(url),
        "status": response.status_code,
        "content_type": content_type,
        "title": title,
        "bytes": len(body),
        "redirects": hops,
        "links": links[:100],
    }
    header = f"{title}\n{url}\n\n" if title else f"{url}\n\n"
    if response.status_code >= 400:
        failed = ToolResult.failure(
            WebError(
                f"{url} answered HTTP {response.status_code}",
                code="tool.web.http_status",
                details={"status": response.status_code},
                retriable=response.status_code >= 500,
            ),
            data=data,
        )
        return failed.model_copy(update={"content": f"{failed.content}\n{text[:2000]}"})
    if cut:
        text += "\n[... body cut at the size limit]"
    return ToolResult(content=header + text, truncated=cut, data=data)


class WebFetchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, description="http:// or https:// URL to fetch.")
    max_bytes: int = Field(
        default=2_000_000, ge=1, le=HARD_MAX_BYTES, description="Stop reading the body here."
    )
    raw: bool = Field(default=False, description="Return HTML as-is instead of readable text.")


class WebFetch(Tool[WebFetchArgs]):
    name = "web_fetch"
    description = (
        "Fetch a public web page or text document (GET) and return it as readable text "
        "(HTML is converted; title and links are extracted). Only text content types. "
        "Private, loopback and cloud-metadata addresses are refused."
    )
    args_model = WebFetchArgs
    risk = Risk.NETWORK

    def assess(self, args: WebFetchArgs, ctx: ToolContext) -> Assessment:
        parsed = _parse(args.url)
        if ctx.policy.host_allowed(parsed.host):
            return Assessment.allow(f"{parsed.host} is on the network allowlist")
        return Assessment.ask(f"fetch {parsed.host}, which is not on tools.network_allowlist")

    def _client_options(self, ctx: ToolContext) -> dict[str, Any]:
        import httpx

        timeout = max(min(ctx.remaining(), 60.0), 0.001)
        return {
            "verify": _ssl_context(ctx),
            "timeout": httpx.Timeout(timeout),
            "follow_redirects": False,
            "trust_env": False,
            # No connection reuse: a pooled connection is keyed by the pinned IP only and
            # must never carry a request for another host name (TLS SNI / Host).
            "limits": httpx.Limits(max_keepalive_connections=0),
        }

    def run(self, args: WebFetchArgs, ctx: ToolContext) -> ToolResult:
        import httpx

        url = _parse(args.url)
        hops: list[str] = []
        try:
            with httpx.Client(**self._client_options(ctx)) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    ctx.check()
                    target = _resolve_sync(ctx, url)
                    pinned, headers, ext = _request_parts(target)
                    with client.stream("GET", pinned, headers=headers, extensions=ext) as resp:
                        if resp.is_redirect:
                            url = _next_hop(ctx, url, resp)
                            hops.append(str(url))
                            continue
                        _check_type(url, resp)
                        body, cut = bytearray(), False
                        for chunk in resp.iter_bytes():
                            body += chunk
                            if len(body) > args.max_bytes:
                                cut = True
                                break
                            ctx.check()
                        return _build_result(
                            url,
                            resp,
                            bytes(body[: args.max_bytes]),
                            cut=cut,
                            hops=hops,
                            raw=args.raw,
                        )
        except httpx.HTTPError as exc:
            raise _http_error(url, exc) from None
        raise WebError(f"more than {MAX_REDIRECTS} redirects", code="tool.web.redirects")

    async def arun(self, args: WebFetchArgs, ctx: ToolContext) -> ToolResult:
        """:meth:`run` in a worker thread: one implementation of the guarded fetch.

        The fetch is I/O-bound and checks ``ctx`` (deadline, cancel token) between hops and
        chunks, so a thread costs nothing the event loop would notice, and the SSRF checks,
        redirect pinning and size caps exist once.
        """
        return await asyncio.to_thread(self.run, args, ctx)


def _ssl_context(ctx: ToolContext) -> ssl.SSLContext:
    """certifi's CA bundle, as httpx uses by default, plus ``policy.ca_bundle``."""
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    bundle = ctx.policy.ca_bundle
    if bundle is not None:
        try:
            context.load_verify_locations(cafile=str(bundle))
        except (OSError, ssl.SSLError) as exc:
            raise WebError(
                f"cannot load tools.ca_bundle {bundle}: {exc}",
                hint="point tools.ca_bundle at a PEM file of CA certificates, or unset it",
                code="tool.web.ca_bundle",
            ) from None
    return context


def _check_type(url: httpx.URL, response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "")
    if not _content_type_ok(content_type):
        raise WebError(
            f"{url} is {content_type.split(';')[0]}, not text; not downloaded",
            hint="web_fetch only returns text, HTML, JSON and XML documents",
            code="tool.web.content_type",
            details={"content_type": content_type},
        )


def _http_error(url: httpx.URL, exc: Exception) -> WebError:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return WebError(f"timed out fetching {url}", code="tool.web.timeout", retriable=True)
    return WebError(
        f"fetching {url} failed: {type(exc).__name__}: {exc}",
        hint="check the URL and your network connection",
        code="tool.web.connect",
        retriable=True,
    )
