"""Upstreams that misbehave on purpose, on loopback, for the collector's hostile-upstream tests.

``HostileServer`` is a threaded HTTP server on ``127.0.0.1`` (an ephemeral port) whose every request goes to a
``route(request) -> Answer`` function that a test chooses and may switch while the server runs. Each
request is recorded (method, path, headers) so a test can assert what another host received, for example
that no ``Authorization`` header ever reached it. The behaviour modules beside this file (registry, charts,
git, tokens) build routes from it; a server stops by itself when its context ends.

Only the standard library is used, so a misbehaviour is exactly what the route says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # the raw request target, query included, exactly as sent
    headers: dict[str, str]  # lower-case names
    body: bytes = b""


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""  # an iterable is sent piece by piece (a drip), without Content-Length
    delay_s: float = 0.0  # before the status line
    piece_delay_s: float = 0.0  # between the pieces of an iterable body


Route = Callable[[Request], Answer]


def not_found(_: Request) -> Answer:
    return Answer(404, {"Content-Type": "text/plain"}, b"not found\n")


class HostileServer:
    """``with HostileServer(route) as server:`` serves ``server.url``; ``server.requests`` is what arrived."""

    def __init__(
        self, route: Route = not_found, host: str = "127.0.0.1", max_body_bytes: int = 16 * 1024 * 1024
    ) -> None:
        # Request bodies are read whole, up to this: a forwarding proxy in front of a registry needs the largest
        # blob an upload sends in one request (a body cut short would leave the registry waiting for the rest).
        self.route = route
        self.max_body_bytes = max_body_bytes
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, owner.max_body_bytes)) if length else b""
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with owner._lock:
                    owner.requests.append(request)
                answer = owner.route(request)
                if answer.delay_s and owner._stopping.wait(answer.delay_s):
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if isinstance(answer.body, bytes | bytearray):
                    if "content-length" not in {n.lower() for n in answer.headers}:
                        self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(answer.body)
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for piece in answer.body:
                    if owner._stopping.is_set():
                        return
                    try:
                        self.wfile.write(piece)
                        self.wfile.flush()
                    except OSError:
                        return
                    if answer.piece_delay_s and owner._stopping.wait(answer.piece_delay_s):
                        return

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="hostile-upstream", daemon=True)

    @property
    def netloc(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    def seen(self, predicate: Callable[[Request], bool] = lambda _: True) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if predicate(r)]

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()


def drip(data: bytes, piece: int = 1) -> Iterator[bytes]:
    """`data` in pieces of `piece` bytes (pair with ``Answer.piece_delay_s`` for a slow upstream)."""
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


def endless(piece: bytes = b"x") -> Iterator[bytes]:
    """A body that never ends."""
    while True:
        yield piece


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
