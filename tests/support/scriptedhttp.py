"""Loopback HTTP servers that write exactly the bytes a test scripts, in the writes it scripts (TLS optional):
for tests of how mirror reads answers it cannot trust."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable


class Peer:
    """One accepted connection, as the server's script sees it."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number  # 1 for the server's first connection
        self._stream = sock.makefile("rb")

    def request(self, read_body: bool = True) -> bytes | None:
        """The next request's head (its body read and dropped), None at the end of the connection."""
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = self._stream.readline()
            if not line:
                return None
            head += line
        lower = head.lower()
        if read_body and b"content-length:" in lower:
            self._stream.read(int(lower.split(b"content-length:")[1].split(b"\r\n")[0]))
        elif read_body and b"transfer-encoding: chunked" in lower:
            while size := int(self._stream.readline().strip(), 16):
                self._stream.read(size + 2)
            self._stream.readline()
        return head

    def send(self, *pieces: bytes, pause_s: float = 0.0) -> None:
        """Each piece in a write of its own (over TLS: a record of its own)."""
        for piece in pieces:
            self.sock.sendall(piece)
            if pause_s:
                time.sleep(pause_s)


class Server:
    """`serve(peer)` runs for every connection; `heads` is every request head read through Peer.request."""

    def __init__(self, serve: Callable[[Peer], None], tls: ssl.SSLContext | None = None) -> None:
        self._serve, self._tls = serve, tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.connections = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                sock, _ = self._listener.accept()
                with self._lock:
                    self.connections += 1
                    number = self.connections
                threading.Thread(target=self._run, args=(sock, number), daemon=True).start()

    def _run(self, sock: socket.socket, number: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True)
            with sock:
                self._serve(Peer(sock, number))
