"""The bounds on a response head (mirror.httptransport): max_response_head_bytes counts every byte of the status
line and the header lines as they arrive, interim (1xx) heads included, and http.client's line count holds as
http.client holds it (its status line and the fields: 99 fields at most). Exactly at a bound is read; one byte or
one line past it is refused. A chunked body's trailer has bounds of its own."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from mirror.httptransport import GuardedTransport
from mirror.limits import DEFAULT_LIMITS

BOUND = DEFAULT_LIMITS.max_response_head_bytes
STATUS = b"HTTP/1.1 200 OK\r\n"
LENGTH = b"Content-Length: 2\r\n"


@contextlib.contextmanager
def answering(answer: bytes) -> Iterator[str]:
    """A loopback server answering every request with `answer`, then closing."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                with connection, connection.makefile("rb") as stream:
                    while stream.readline() not in (b"\r\n", b""):
                        pass
                    connection.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        listener.close()


def get(answer: bytes) -> bytes:
    transport = GuardedTransport(trust_env=False)
    try:
        with answering(answer) as url:
            response = transport.handle_request(httpx.Request("GET", url, extensions={"timeout": {}}))
            with contextlib.closing(response):
                return b"".join(response.stream)
    finally:
        transport.close()


def padding(size: int) -> bytes:
    """Header lines of `size` bytes in all (line breaks included), each within http.client's line length."""
    lines, number = [], 0
    while size:
        line = min(size, 60_000)
        prefix = b"X-Pad-%d: " % number
        lines.append(prefix + b"a" * (line - len(prefix) - 2) + b"\r\n")
        size -= line
        number += 1
    return b"".join(lines)


INTERIM = b"HTTP/1.1 100 Continue\r\n" + padding(30_000) + b"\r\n"


@pytest.mark.parametrize("interim", [b"", INTERIM], ids=["one-head", "with-an-interim-head"])
def test_a_head_of_exactly_max_response_head_bytes_is_read(interim: bytes) -> None:
    head = STATUS + LENGTH + padding(BOUND - len(STATUS) - len(LENGTH) - (len(interim) - 2 if interim else 0))
    assert len(head) + (len(interim) - 2 if interim else 0) == BOUND  # the blank line ending a head is not counted
    assert get(interim + head + b"\r\nok") == b"ok"


@pytest.mark.parametrize("interim", [b"", INTERIM], ids=["one-head", "with-an-interim-head"])
def test_a_head_one_byte_past_max_response_head_bytes_is_refused(interim: bytes) -> None:
    head = STATUS + LENGTH + padding(BOUND + 1 - len(STATUS) - len(LENGTH) - (len(interim) - 2 if interim else 0))
    with pytest.raises(httpx.RemoteProtocolError, match="max_response_head_bytes"):
        get(interim + head + b"\r\nok")


def test_99_header_fields_are_read_and_100_are_refused_as_http_client_counts_them() -> None:
    def fields(count: int) -> bytes:
        return STATUS + LENGTH + b"".join(b"X-%d: 1\r\n" % n for n in range(count - 1)) + b"\r\nok"

    assert get(fields(99)) == b"ok"
    with pytest.raises(httpx.RemoteProtocolError, match="more than 100 header lines"):
        get(fields(100))


def test_folded_continuation_lines_count_as_lines_of_the_head() -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="more than 100 header lines"):
        get(STATUS + LENGTH + b"X-Folded: a\r\n" + b" more\r\n" * 100 + b"\r\nok")


def test_many_small_interim_heads_are_refused_by_their_count_before_their_bytes() -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="more than 100 header lines"):
        get(b"HTTP/1.1 100 Continue\r\n\r\n" * 101 + STATUS + LENGTH + b"\r\nok")


def test_a_trailer_larger_than_max_response_head_bytes_is_refused() -> None:
    trailer = padding(BOUND + 1)
    answer = STATUS + b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" + trailer + b"\r\n"
    with pytest.raises(httpx.RemoteProtocolError, match="max_response_head_bytes"):
        get(answer)
