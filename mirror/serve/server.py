"""HTTP for `mirror serve`: the standard library's ThreadingHTTPServer (HTTP/1.1, keep-alive), a thread per
connection up to Limits.serve_max_connections, TLS when given a certificate, one log line per request.

http.server parses the requests (no hand-written parser here); this module only maps them to api.Registry and
writes the answers, streaming blobs through content.stream_verified. See docs/serve.md.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from mirror.errors import MirrorError, UsageError
from mirror.limits import Limits
from mirror.logs import format_line
from mirror.serve.api import Answer, BlobSlice, Registry, changed_on_disk, error
from mirror.serve.content import ContentChanged, stream_verified

_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (an IPv6 address in brackets) as (host, port); port 0 picks a free one."""
    host, colon, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            valid = isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
        except ValueError:
            valid = False
    else:
        valid = _HOST.fullmatch(host) is not None
    if not colon or not valid or not _PORT.fullmatch(port) or int(port) > 65535:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT", hint="for instance 127.0.0.1:5000, or [::1]:5000")
    return host, int(port)


def tls_context(certificate: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context from PEM files (TLS 1.2 at least); None without them."""
    if certificate is None and key is None:
        return None
    if certificate is None or key is None:
        raise UsageError("--tls-cert and --tls-key go together", hint="give the certificate chain and its key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # No password prompt on the terminal for an encrypted key: it fails to load instead.
        context.load_cert_chain(certificate, key, password=lambda: b"")
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(
            f"--tls-cert {certificate}, --tls-key {key}: cannot load them: {exc}",
            hint="PEM files: the certificate (chain) and its unencrypted private key",
        ) from None
    return context


class RequestLog:
    """Log lines on stderr: one per request (method, path, status, bytes), and errors. Thread-safe."""

    def __init__(self, *, stream: TextIO | None = None, log_format: str = "text", quiet: bool = False) -> None:
        self._stream = stream or sys.stderr
        self._format = log_format
        self._quiet = quiet
        self._lock = threading.Lock()

    def _emit(self, level: str, event: str, message: str, fields: dict[str, object]) -> None:
        line = format_line(self._format, level, event, message, fields)
        with self._lock:
            print(line, file=self._stream, flush=True)

    def request(self, method: str, path: str, status: int, sent: int, seconds: float, client: str) -> None:
        if not self._quiet:
            message = f"{method} {path} {status} {sent} bytes {seconds:.3f} s {client}"
            fields: dict[str, object] = {"method": method, "path": path, "status": status, "bytes": sent}
            self._emit("info", "request", message, {**fields, "seconds": round(seconds, 3), "client": client})

    def error(self, message: str, event: str, **fields: object) -> None:
        self._emit("error", event, message, fields)

    def note(self, message: str, event: str, **fields: object) -> None:
        if not self._quiet:
            self._emit("info", event, message, fields)


class _ClientGone(Exception):
    """Writing to the client failed: it closed the connection, or stopped reading until the idle timeout."""


class _Handler(BaseHTTPRequestHandler):
    server: RegistryServer
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries Content-Length
    server_version = "mirror-serve"

    def version_string(self) -> str:
        return self.server_version  # the Server header names no Python version

    def setup(self) -> None:
        # Every read and write of the connection, the TLS handshake first, waits at most the idle timeout.
        self.request.settimeout(self.server.limits.serve_idle_timeout_s)
        if isinstance(self.request, ssl.SSLSocket):  # the handshake runs here, in this connection's thread
            self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # -- writing

    def _write(self, data: bytes | memoryview) -> None:
        try:
            self.wfile.write(data)
        except OSError as exc:
            raise _ClientGone(str(exc)) from exc

    def _head(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(answer.length))
        if self.close_connection:
            self.send_header("Connection", "close")
        try:
            self.end_headers()
        except OSError as exc:
            raise _ClientGone(str(exc)) from exc

    def _send(self, answer: Answer) -> int:
        self._head(answer)
        if self.command == "HEAD" or not answer.body:
            return 0
        self._write(answer.body)
        return len(answer.body)

    def _stream(self, answer: Answer, blob: BlobSlice) -> tuple[int, int]:
        """The blob's bytes, hashed as they go; (status, bytes written). An error before the first byte is an
        error answer; after it, the connection is cut, so the client can never take the answer for complete."""
        store, log = self.server.registry.store, self.server.log
        try:
            handle = store.open(blob.digest)
        except (MirrorError, OSError) as exc:  # a link or a FIFO swapped in, a file gone: not the verified one
            store.mark_changed(blob.digest)
            log.error(
                f"blob {blob.digest}: cannot be read from the bundle: {exc}", "blob.unreadable", digest=blob.digest
            )
            return 500, self._send(changed_on_disk(blob.digest))
        begun = False

        def begin() -> None:
            nonlocal begun
            begun = True
            self._head(answer)

        with handle:
            try:
                sent = stream_verified(
                    handle,
                    blob.digest,
                    blob.size,
                    blob.first,
                    blob.last,
                    self._write,
                    begin,
                    self.server.limits.copy_chunk_bytes,
                )
                return answer.status, sent
            except (ContentChanged, MirrorError, OSError) as exc:  # OSError of a read: writes raise _ClientGone
                store.mark_changed(blob.digest)
                written = exc.written if isinstance(exc, ContentChanged) else 0
                if begun:  # headers went out: only a short body can tell the client "not this"
                    self.close_connection = True
                outcome = f"connection cut after {written} bytes" if begun else "answered 500"
                log.error(
                    f"blob {blob.digest}: {exc}; {outcome}, and refused from now on (restart serve on an intact "
                    "bundle)",
                    "blob.changed",
                    digest=blob.digest,
                )
                if begun:
                    return answer.status, written
                return 500, self._send(changed_on_disk(blob.digest))

    # -- one request

    def _serve(self) -> None:
        started = time.monotonic()
        if (
            self.command not in ("GET", "HEAD")
            or "Content-Length" in self.headers
            or "Transfer-Encoding" in self.headers
        ):
            self.close_connection = True  # a body is never read, so the connection cannot carry another request
        answer = self.server.registry.answer(self.command, self.path, self.headers.get("Range"))
        status, sent = answer.status, 0
        try:
            if answer.blob is not None and self.command == "GET":
                status, sent = self._stream(answer, answer.blob)
            else:
                sent = self._send(answer)
        except _ClientGone:
            self.close_connection = True
        self._log(status, sent, started)

    def _log(self, status: int, sent: int, started: float) -> None:
        limit = self.server.limits.serve_max_path_chars
        path = self.path if len(self.path) <= limit else self.path[:limit] + "..."
        client = self.client_address[0] if self.client_address else "-"
        self.server.log.request(self.command or "-", path, status, sent, time.monotonic() - started, str(client))

    # -- http.server's own refusals and messages

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A request http.server refused to parse (bad request line, headers too long, unknown method): the
        error as the distribution API writes errors, and the connection closed."""
        started = time.monotonic()
        self.close_connection = True
        answer = error(code, "UNSUPPORTED", message or self.responses.get(code, ("error",))[0])
        sent = 0
        with contextlib.suppress(_ClientGone):
            sent = self._send(answer) if code >= 200 and code not in (204, 304) else 0
        words = (getattr(self, "requestline", "") or "").split()
        self.path = words[1] if len(words) > 1 else " ".join(words)
        self._log(code, sent, started)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # each request is logged once it is answered, with the bytes sent (_log)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # what reaches here is an idle connection timing out: closed, nothing to tell


class RegistryServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer for one Registry: a daemon thread per connection, at most
    limits.serve_max_connections at once (the accept loop waits for a free one; the kernel queues the rest)."""

    daemon_threads = True

    def __init__(
        self,
        registry: Registry,
        address: tuple[str, int],
        *,
        limits: Limits,
        log: RequestLog,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.registry = registry
        self.limits = limits
        self.log = log
        self.tls = tls
        self._slots = threading.BoundedSemaphore(limits.serve_max_connections)
        self._stopping = threading.Event()
        self.request_queue_size = limits.serve_max_connections
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{port}"

    def server_bind(self) -> None:
        # TCPServer's, not HTTPServer's: that one looks the host's name up (getfqdn), which can wait on a DNS
        # server an air-gapped host does not have.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        if self.tls is not None:  # the handshake waits for the connection's own thread (_Handler.setup)
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def process_request(self, request: Any, client_address: Any) -> None:
        while not self._slots.acquire(timeout=0.5):
            if self._stopping.is_set():
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown(self) -> None:
        self._stopping.set()
        super().shutdown()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """An exception out of a connection's thread: a failed TLS handshake, a reset, or a defect; one line."""
        kind, value, _ = sys.exc_info()
        client = client_address[0] if client_address else "-"
        if isinstance(value, OSError):  # ssl.SSLError included
            self.log.note(f"connection from {client} ended: {value}", "connection.error", client=str(client))
            return
        self.log.error(
            f"connection from {client}: internal error: {kind.__name__ if kind else '?'}: {value}",
            "internal",
            client=str(client),
        )
        if os.environ.get("MIRROR_DEBUG"):
            traceback.print_exc()
