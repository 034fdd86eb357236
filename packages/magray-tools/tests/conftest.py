"""Fixtures: a workspace with a sibling 'outside' dir, policies, contexts, git and HTTP."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from magray.tools import Policy, ToolContext, ToolRegistry


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the workspace whose name starts like it (ws -> wsx)."""
    out = tmp_path / "wsx"
    out.mkdir()
    (out / "secret.txt").write_text("top secret\n")
    return out


@pytest.fixture
def policy(workspace: Path) -> Policy:
    return Policy.for_workspace(workspace, timeout=20.0)


@pytest.fixture
def ctx(policy: Policy) -> ToolContext:
    return ToolContext(policy=policy)


@pytest.fixture(scope="session")
def registry() -> ToolRegistry:
    return ToolRegistry.from_entry_points()


def snapshot(root: Path) -> dict[str, Any]:
    """Every path under ``root`` with its content (files) or kind, to prove nothing changed."""
    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = ("link", str(path.readlink()))
        elif path.is_file():
            out[rel] = ("file", path.read_bytes())
        else:
            out[rel] = ("dir",)
    return out


# ---------------------------------------------------------------------- git
@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.org")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.org")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.fixture
def repo(workspace: Path, git_env: None) -> Path:
    git(workspace, "init", "-q", "-b", "main")
    (workspace / "README.md").write_text("hello\n")
    (workspace / "src").mkdir()
    (workspace / "src" / "app.py").write_text("print('hi')\n")
    git(workspace, "add", ".")
    git(workspace, "commit", "-q", "-m", "initial commit")
    return workspace


# ---------------------------------------------------------------------- http
@dataclass
class Server:
    base: str
    hits: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/page.html": (
        200,
        {"Content-Type": "text/html; charset=utf-8"},
        b"<html><head><title>Test Page</title><style>p{}</style></head><body>"
        b"<h1>Hello</h1><script>alert(1)</script><p>First <b>para</b>.</p>"
        b"<ul><li>one</li><li>two</li></ul><a href='/text'>link</a></body></html>",
    ),
    "/text": (200, {"Content-Type": "text/plain"}, b"plain text body\n"),
    "/json": (200, {"Content-Type": "application/json"}, json.dumps({"a": 1}).encode()),
    "/big": (200, {"Content-Type": "text/plain"}, b"x" * 300_000),
    "/image.png": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n" + b"\0" * 100),
    "/missing": (404, {"Content-Type": "text/plain"}, b"not here"),
    "/to-page": (302, {"Location": "/page.html"}, b""),
    "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
    "/to-private": (301, {"Location": "http://10.0.0.1/admin"}, b""),
    "/to-ipv6-loopback": (302, {"Location": "http://[::1]/"}, b""),
    "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
    "/loop": (302, {"Location": "/loop"}, b""),
}


@pytest.fixture
def http_server() -> Iterator[Server]:
    server_state = Server(base="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server_state.hits.append(self.path)
            if self.path == "/hang":
                server_state.release.wait(10)
                self.send_response(200)
                self.end_headers()
                return
            if self.path == "/echo-host":
                body = (self.headers.get("Host") or "").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            status, headers, body = ROUTES.get(self.path, (404, {}, b"no route"))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    server_state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield server_state
    finally:
        server_state.release.set()
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------- https
@dataclass
class TlsServer:
    base: str  # https://localhost:PORT
    cert: Path
    sni: list[str | None] = field(default_factory=list)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for DNS:localhost only."""
    import shutil
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        capture_output=True, check=True,
    )  # fmt: skip
    state = TlsServer(base="", cert=cert)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: state.sni.append(name)  # type: ignore[assignment,misc,return-value]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"secure hello via {self.headers.get('Host')}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class TlsHTTPServer(http.server.ThreadingHTTPServer):
        def get_request(self) -> Any:
            sock, addr = super().get_request()
            return context.wrap_socket(sock, server_side=True), addr

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # failed handshakes are the point of some tests

    server = TlsHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.base = f"https://localhost:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
