"""The registry client keeps its connections: answers whose bodies do not matter are read out, not dropped.

httpx's mock transport has no connection pool, so these tests run a tiny HTTP/1.1 server on a loopback port
that counts the TCP connections it accepts.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import certifi
import httpx
import pytest

from mirror.credentials import Credentials
from mirror.errors import UsageError
from mirror.httptransport import GuardedTransport
from mirror.registry.client import RegistryClient, tls_context
from mirror.registry.endpoint import Endpoint

DIGEST = "sha256:" + "ab" * 32
ERROR_BODY = b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _CountingServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        if self.server.basic and self.headers.get("authorization") is None:
            status, body, headers = 401, b'{"errors":[]}', {"WWW-Authenticate": 'Basic realm="test"'}
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._answer(404, ERROR_BODY)

    def do_POST(self) -> None:
        # A mount the registry declines: it opens an upload session instead, with a small body.
        self._answer(202, b"{}", {"Location": "/v2/app/blobs/uploads/u1?_state=x"})

    def log_message(self, *_: object) -> None:
        pass


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, basic: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.basic = basic


@pytest.fixture(params=[False, True], ids=["anonymous", "basic-auth"])
def server(request) -> Iterator[_CountingServer]:
    server = _CountingServer(basic=request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _client(server: _CountingServer, ca_file: str | None = None) -> RegistryClient:
    netloc = f"127.0.0.1:{server.server_address[1]}"
    endpoint = Endpoint(netloc, "http", netloc, ca_file=ca_file)
    return RegistryClient(endpoint, Credentials("user", "secret"), max_connections=1)


def test_successive_head_requests_share_one_connection(server):
    with _client(server) as client:
        for _ in range(5):
            assert client.blob_size("app", DIGEST) is None
    assert server.connections == 1


def test_an_answer_with_an_unread_body_does_not_cost_a_new_connection(server):
    with _client(server) as client:
        for _ in range(3):
            assert client.mount_blob("app", DIGEST, "other") is False
    assert server.connections == 1


def test_the_tls_context_of_a_ca_file_is_loaded_once_and_shared():
    bundle = certifi.where()
    assert tls_context(None) is tls_context(None)
    assert tls_context(bundle) is tls_context(bundle)
    assert tls_context(bundle) is not tls_context(None)


def test_an_unreadable_ca_file_is_still_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot load CA certificates"):
        tls_context(str(tmp_path / "missing.pem"))


@pytest.mark.parametrize("ca_file", [None, certifi.where()], ids=["default CAs", "a CA file ($SSL_CERT_FILE)"])
def test_a_plain_http_registry_loads_no_ca_certificates(server, monkeypatch, ca_file):
    loaded: list[str | None] = []
    monkeypatch.setattr("mirror.registry.client.tls_context", lambda ca_file: loaded.append(ca_file))
    with _client(server, ca_file) as client:
        assert client.blob_size("app", DIGEST) is None
    assert loaded == []


def test_an_https_registry_loads_its_ca_certificates_before_its_first_request(monkeypatch):
    loaded: list[str | None] = []
    monkeypatch.setattr(
        "mirror.registry.client.tls_context", lambda ca_file: loaded.append(ca_file) or tls_context(None)
    )
    RegistryClient(Endpoint("registry.example", "https", "registry.example", ca_file=certifi.where())).close()
    assert loaded == [certifi.where()]


def test_the_transport_makes_its_tls_context_on_its_first_https_connection(server):
    made: list[ssl.SSLContext] = []

    def make() -> ssl.SSLContext:
        made.append(ssl.create_default_context())
        return made[-1]

    address = f"127.0.0.1:{server.server_address[1]}"
    with httpx.Client(transport=GuardedTransport(verify=make), trust_env=False) as client:
        client.head(f"http://{address}/v2/")
        assert made == []
        with pytest.raises(httpx.ConnectError):  # an HTTP server answering a TLS handshake
            client.head(f"https://{address}/v2/")
    assert len(made) == 1


def test_a_plain_http_registry_with_a_missing_ca_file_is_refused_before_any_request(tmp_path):
    endpoint = Endpoint("registry.example", "http", "registry.example", ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(UsageError, match="cannot load CA certificates"):
        RegistryClient(endpoint)
