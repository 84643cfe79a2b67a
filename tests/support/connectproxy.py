"""A recording HTTP proxy on loopback, for the proxy tests: what a corporate proxy would see, written down.

``RecordingProxy`` listens on a free loopback port (threads, stdlib only). ``CONNECT host:port`` opens a tunnel
and moves bytes both ways without reading them; an absolute-form request (``GET http://host:port/path``, plain
HTTP through a proxy) is forwarded to its origin with ``Connection: close`` on both legs. Every request line and
every header the proxy received is recorded (``seen``), before anything else is done with it. With
``credentials`` set, a request without the matching ``Proxy-Authorization: Basic`` header is answered 407.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass

_HEADER_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Seen:
    line: str  # the request line: "CONNECT host:port HTTP/1.1", "GET http://host/path HTTP/1.1"
    headers: tuple[tuple[str, str], ...]

    @property
    def method(self) -> str:
        return self.line.split(" ", 1)[0]

    @property
    def target(self) -> str:
        return self.line.split(" ")[1] if " " in self.line else ""

    def header_names(self) -> set[str]:
        return {name.lower() for name, _ in self.headers}

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


def _read_head(stream: socket.socket) -> bytes:
    """Bytes up to and including the blank line that ends a request's or a response's head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = stream.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > _HEADER_LIMIT:
            raise ValueError("head too large")
    return data


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _split_head(head: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    text, _, rest = head.partition(b"\r\n\r\n")
    lines = text.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers, rest


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        try:
            head = _read_head(client)
        except (OSError, ValueError):
            return
        if not head:
            return
        line, headers, rest = _split_head(head)
        proxy = self.server.owner
        proxy.record(Seen(line, tuple(headers)))
        if not proxy.authorised(headers):
            client.sendall(
                b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n'
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            return
        method, target = line.split(" ")[:2]
        if method == "CONNECT":
            self._tunnel(client, target, rest)
        else:
            self._forward(client, line, headers, rest)

    def _tunnel(self, client: socket.socket, target: str, rest: bytes) -> None:
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            self._both_ways(client, upstream)

    def _forward(self, client: socket.socket, line: str, headers: list[tuple[str, str]], rest: bytes) -> None:
        method, target, version = line.split(" ", 2)
        if not target.startswith("http://"):
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        authority, slash, path = target[len("http://") :].partition("/")
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with upstream:
            kept = [
                (n, v) for n, v in headers if n.lower() not in ("proxy-authorization", "proxy-connection", "connection")
            ]
            out = [f"{method} {slash}{path} {version}", *(f"{n}: {v}" for n, v in kept), "Connection: close"]
            upstream.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + rest)
            sender = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
            sender.start()
            # The answer's head gets Connection: close, so the client opens a new connection (recorded) next time.
            answer = _read_head(upstream)
            status, answer_headers, body = _split_head(answer)
            kept_answer = [(n, v) for n, v in answer_headers if n.lower() != "connection"]
            lines = [status, *(f"{n}: {v}" for n, v in kept_answer), "Connection: close"]
            with contextlib.suppress(OSError):
                client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
                _pump(upstream, client)

    @staticmethod
    def _both_ways(client: socket.socket, upstream: socket.socket) -> None:
        client.settimeout(None)
        upstream.settimeout(None)
        other = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        other.start()
        _pump(client, upstream)
        other.join(timeout=60)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: RecordingProxy


class RecordingProxy:
    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self._credentials = credentials
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def authorised(self, headers: list[tuple[str, str]]) -> bool:
        if self._credentials is None:
            return True
        expected = "Basic " + base64.b64encode(":".join(self._credentials).encode()).decode()
        return any(n.lower() == "proxy-authorization" and v == expected for n, v in headers)

    def start(self) -> RecordingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def recording_proxy(credentials: tuple[str, str] | None = None) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(credentials).start()
    try:
        yield proxy
    finally:
        proxy.stop()
