"""mirror.httptransport: what goes over the wire and when a connection is kept, against a raw loopback server that
answers exactly the bytes a test scripts (the registry, TLS, proxy and deadline behaviour is specified by the
registry client's, proxy and netguard tests, which run over this transport)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mirror.httptransport import GuardedTransport, read_into
from mirror.limits import DEFAULT_LIMITS
from tests.support.connectproxy import recording_proxy
from tests.support.tlsloopback import loopback_certificate, tls_front


@dataclass
class Seen:
    connection: int
    head: bytes
    body: bytes


@dataclass
class RawServer:
    """Each request's head and body are read (Content-Length or chunked); `script(n)` gives the bytes answered
    to the n-th request (from 0), and whether the connection is closed after them."""

    script: Callable[[int], tuple[bytes, bool]]
    tls: ssl.SSLContext | None = None  # serve HTTPS
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self._listener.accept()
                with self._lock:
                    self.connections += 1
                    number = self.connections
                threading.Thread(target=self._serve, args=(connection, number), daemon=True).start()

    def _serve(self, connection: socket.socket, number: int) -> None:
        if self.tls is not None:
            try:
                connection = self.tls.wrap_socket(connection, server_side=True)
            except OSError:
                return
        with connection, contextlib.suppress(OSError), connection.makefile("rb") as stream:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = stream.readline()
                    if not line:
                        return
                    head += line
                lower = head.lower()
                body = b""
                if b"transfer-encoding: chunked" in lower:
                    while size := int(stream.readline().strip(), 16):
                        body += stream.read(size)
                        stream.readline()
                    stream.readline()
                elif b"content-length:" in lower:
                    length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
                    body = stream.read(length)
                with self._lock:
                    index = len(self.seen)
                    self.seen.append(Seen(number, head, body))
                answer, close = self.script(index)
                connection.sendall(answer)
                if close:
                    return


def ok(body: bytes = b"hello") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


@contextlib.contextmanager
def serving(script: Callable[[int], tuple[bytes, bool]]) -> Iterator[tuple[RawServer, httpx.Client]]:
    server = RawServer(script)
    client = httpx.Client(transport=GuardedTransport(trust_env=False), timeout=10, trust_env=False)
    try:
        yield server, client
    finally:
        client.close()
        server.close()


def test_a_connection_is_reused_once_the_body_was_read_to_its_end() -> None:
    with serving(lambda _: (ok(), False)) as (server, client):
        for _ in range(3):
            assert client.get(server.url).content == b"hello"
    assert server.connections == 1


def test_a_connection_whose_body_was_left_unread_is_closed_not_reused() -> None:
    with serving(lambda _: (ok(b"x" * 100_000), False)) as (server, client):
        for _ in range(2):
            with client.stream("GET", server.url) as response:
                next(response.iter_raw())
        assert client.get(server.url).status_code == 200
    assert server.connections == 3


def test_head_answers_keep_the_connection() -> None:
    head_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    with serving(lambda _: (head_answer, False)) as (server, client):
        for _ in range(3):
            assert client.head(server.url).headers["content-length"] == "1234"
    assert server.connections == 1


def test_a_connection_the_server_closed_between_requests_is_replaced() -> None:
    with serving(lambda _: (ok(), True)) as (server, client):
        for _ in range(3):
            assert client.get(server.url).content == b"hello"
    assert server.connections == 3


def test_a_body_of_bytes_goes_with_its_content_length() -> None:
    with serving(lambda _: (ok(), False)) as (server, client):
        client.put(server.url, content=b"abc")
    assert b"content-length: 3" in server.seen[0].head.lower()
    assert b"transfer-encoding" not in server.seen[0].head.lower()
    assert server.seen[0].body == b"abc"


def test_an_iterated_body_with_a_stated_length_goes_as_it_is() -> None:
    with serving(lambda _: (ok(), False)) as (server, client):
        client.put(server.url, content=iter([b"ab", b"cd"]), headers={"Content-Length": "4"})
    assert b"transfer-encoding" not in server.seen[0].head.lower()
    assert server.seen[0].body == b"abcd"


def test_an_iterated_body_without_a_length_goes_chunked() -> None:
    with serving(lambda _: (ok(), False)) as (server, client):
        client.put(server.url, content=iter([b"ab", b"", b"cde"]))
    assert b"transfer-encoding: chunked" in server.seen[0].head.lower()
    assert server.seen[0].body == b"abcde"


def test_an_iterated_body_longer_than_its_content_length_is_refused() -> None:
    with serving(lambda _: (ok(), False)) as (server, client), pytest.raises(httpx.LocalProtocolError):
        client.put(server.url, content=iter([b"ab", b"cd"]), headers={"Content-Length": "3"})


def test_a_chunked_answer_is_read_whole_and_keeps_the_connection() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    with serving(lambda _: (chunked, False)) as (server, client):
        assert client.get(server.url).content == b"abcde"
        assert client.get(server.url).content == b"abcde"
    assert server.connections == 1


def test_a_body_cut_short_of_its_content_length_is_an_error() -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    with serving(lambda _: (cut, True)) as (server, client), pytest.raises(httpx.RemoteProtocolError):
        client.get(server.url)


def test_a_chunked_body_cut_short_is_an_error() -> None:
    cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"
    with serving(lambda _: (cut, True)) as (server, client), pytest.raises(httpx.RemoteProtocolError):
        client.get(server.url)


def test_bytes_beyond_the_content_length_are_never_read_as_the_next_answer() -> None:
    def script(index: int) -> tuple[bytes, bool]:
        return (ok(b"first") + ok(b"smuggled"), False) if index == 0 else (ok(b"second"), False)

    with serving(script) as (server, client):
        assert client.get(server.url).content == b"first"
        try:
            second = client.get(server.url).content
        except httpx.RemoteProtocolError:
            second = b"(refused)"
    assert second != b"smuggled"


def test_a_server_that_closes_without_answering_is_a_remote_protocol_error() -> None:
    with serving(lambda _: (b"", True)) as (server, client), pytest.raises(httpx.RemoteProtocolError):
        client.get(server.url)


def test_a_header_value_with_a_line_break_is_never_sent() -> None:
    with serving(lambda _: (ok(), False)) as (server, client), pytest.raises(httpx.LocalProtocolError):
        client.get(server.url, headers={"X-Evil": "a\r\nInjected: yes"})
    assert server.seen == []


def test_a_refused_connection_is_a_connect_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with (
        httpx.Client(transport=GuardedTransport(trust_env=False), trust_env=False) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(f"http://127.0.0.1:{port}/")


def test_the_pool_bound_holds_across_threads() -> None:
    transport = GuardedTransport(trust_env=False, limits=httpx.Limits(max_connections=2))
    with serving(lambda _: (ok(), False)) as (server, _):
        with httpx.Client(transport=transport, trust_env=False) as client:
            threads = [threading.Thread(target=lambda: [client.get(server.url) for _ in range(5)]) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        assert len(server.seen) == 30
        assert server.connections <= 2


def _closes_the_second_request_unanswered(index: int) -> tuple[bytes, bool]:
    return (b"", True) if index == 1 else (ok(), False)


def test_an_idempotent_request_a_kept_connection_dropped_unanswered_is_sent_once_more_on_a_new_one() -> None:
    with serving(_closes_the_second_request_unanswered) as (server, client):
        assert client.get(server.url).content == b"hello"
        assert client.get(server.url).content == b"hello"
    assert [seen.connection for seen in server.seen] == [1, 1, 2]


def test_a_post_a_kept_connection_dropped_unanswered_is_not_sent_again() -> None:
    with serving(_closes_the_second_request_unanswered) as (server, client):
        client.post(server.url, content=b"x")
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(server.url, content=b"x")
    assert len(server.seen) == 2


def test_an_answer_with_two_different_content_lengths_is_refused() -> None:
    double = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"
    with serving(lambda _: (double, True)) as (server, client), pytest.raises(httpx.RemoteProtocolError):
        client.get(server.url)


def test_header_fields_arrive_in_order_and_repeated() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Folded: one\r\n two\r\nContent-Length: 0\r\n\r\n"
    )
    with serving(lambda _: (answer, False)) as (server, client):
        response = client.get(server.url)
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.headers["x-folded"] == "one two"


# -- an https:// proxy: TLS to the proxy, and TLS to the upstream inside it ------------------------------------------


@pytest.fixture
def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(a server's context, a client's context that trusts it)"""
    cert, key = loopback_certificate(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


def test_https_through_an_https_proxy_runs_tls_inside_the_proxys_tls(tls_contexts) -> None:
    server_context, client_context = tls_contexts
    upstream = RawServer(lambda _: (ok(b"through"), False), tls=server_context)
    with recording_proxy(("u", "p")) as proxy, tls_front(server_context, proxy.address) as proxy_url:
        through = httpx.Proxy(proxy_url, auth=("u", "p"), ssl_context=client_context)
        transport = GuardedTransport(verify=client_context, proxy=through, trust_env=False)
        with httpx.Client(transport=transport, trust_env=False) as client:
            assert client.get(upstream.url).content == b"through"
            assert client.get(upstream.url).content == b"through"
        assert [seen.method for seen in proxy.seen] == ["CONNECT"]
        assert proxy.seen[0].header("proxy-authorization") == "Basic dTpw"
    assert b"proxy-authorization" not in upstream.seen[0].head.lower()
    upstream.close()


def test_an_https_proxy_whose_certificate_is_not_trusted_is_refused(tls_contexts) -> None:
    server_context, _ = tls_contexts
    with recording_proxy() as proxy, tls_front(server_context, proxy.address) as proxy_url:
        transport = GuardedTransport(proxy=httpx.Proxy(proxy_url, ssl_context=ssl.create_default_context()))
        with (
            httpx.Client(transport=transport, trust_env=False) as client,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.get("https://127.0.0.1:1/")
        assert proxy.seen == []


def test_a_connect_the_proxy_refuses_is_a_proxy_error_starting_with_its_status() -> None:
    with recording_proxy(("u", "p")) as proxy:
        transport = GuardedTransport(proxy=httpx.Proxy(proxy.url), trust_env=False)
        with (
            httpx.Client(transport=transport, trust_env=False) as client,
            pytest.raises(httpx.ProxyError, match=r"^407 Proxy Authentication Required"),
        ):
            client.get("https://127.0.0.1:1/")


# -- bodies read into a caller's buffer (blob downloads) -----------------------------------------------------------


@contextlib.contextmanager
def answered(script: Callable[[int], tuple[bytes, bool]]) -> Iterator[tuple[RawServer, Callable[[], httpx.Response]]]:
    """Requests straight to the transport, as the registry client sends them (httpx.Client wraps the body)."""
    server = RawServer(script)
    transport = GuardedTransport(trust_env=False)
    responses: list[httpx.Response] = []

    def get() -> httpx.Response:
        responses.append(transport.handle_request(httpx.Request("GET", server.url, extensions={"timeout": {}})))
        return responses[-1]

    try:
        yield server, get
    finally:
        for response in responses:
            response.close()
        transport.close()
        server.close()


def _read_into(response: httpx.Response, size: int) -> tuple[bytes, list[int]]:
    """The body as read_into hands it over, and the size of each piece."""
    buffer = memoryview(bytearray(size))
    body, pieces = b"", []
    for piece in read_into(response, buffer):
        assert piece.obj is buffer.obj  # each piece is a view of the caller's buffer, not a new bytes object
        body += piece
        pieces.append(len(piece))
    return body, pieces


def test_a_body_read_into_a_buffer_arrives_whole_in_pieces_no_larger_than_it() -> None:
    body = bytes(range(256)) * 1000
    with answered(lambda _: (ok(body), False)) as (_, get):
        read, pieces = _read_into(get(), 4096)
    assert read == body
    assert max(pieces) <= 4096


def test_a_chunked_body_read_into_a_buffer_arrives_whole() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    with answered(lambda _: (chunked, False)) as (_, get):
        assert _read_into(get(), 4)[0] == b"abcde"


def test_a_connection_is_reused_once_a_body_was_read_into_a_buffer_to_its_end() -> None:
    with answered(lambda _: (ok(b"x" * 50_000), False)) as (server, get):
        for _ in range(3):
            response = get()
            _read_into(response, 8192)
            response.close()
    assert server.connections == 1


def test_a_body_cut_short_of_its_content_length_read_into_a_buffer_is_an_error() -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    with answered(lambda _: (cut, True)) as (_, get), pytest.raises(httpx.RemoteProtocolError):
        _read_into(get(), 4096)


def test_a_chunked_body_cut_short_read_into_a_buffer_is_an_error() -> None:
    cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"
    with answered(lambda _: (cut, True)) as (_, get), pytest.raises(httpx.RemoteProtocolError):
        _read_into(get(), 4096)


def test_a_response_from_another_transport_is_read_as_httpx_iterates_it() -> None:
    client = httpx.Client(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, stream=httpx.ByteStream(b"mocked")))
    )
    with client, client.stream("GET", "http://registry.test/") as response:
        assert b"".join(bytes(piece) for piece in read_into(response, memoryview(bytearray(2)))) == b"mocked"


# -- the bound on a response head ------------------------------------------------------------------------------------


def _head_of(lines: int, line_bytes: int) -> bytes:
    fields = b"".join(b"X-Padding-%d: %s\r\n" % (n, b"a" * line_bytes) for n in range(lines))
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + fields + b"\r\nok"


def test_a_response_head_larger_than_max_response_head_bytes_is_refused() -> None:
    assert DEFAULT_LIMITS.max_response_head_bytes < 3 * 40_000  # each line within http.client's, all three not
    with serving(lambda _: (_head_of(3, 40_000), True)) as (server, client), pytest.raises(httpx.RemoteProtocolError):
        client.get(server.url)


def test_a_response_head_within_max_response_head_bytes_is_read() -> None:
    with serving(lambda _: (_head_of(2, 40_000), False)) as (server, client):
        assert client.get(server.url).content == b"ok"


def test_interim_heads_count_towards_max_response_head_bytes() -> None:
    interim = b"HTTP/1.1 100 Continue\r\nX-Padding: " + b"a" * 60_000 + b"\r\n\r\n"
    with (
        serving(lambda _: (interim + _head_of(1, 60_000), True)) as (server, client),
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get(server.url)


def test_a_closed_transport_refuses_requests_and_opens_no_connection() -> None:
    transport = GuardedTransport(trust_env=False)
    with serving(lambda _: (ok(), False)) as (server, _):
        transport.close()
        with pytest.raises(RuntimeError, match="closed"):
            transport.handle_request(httpx.Request("GET", server.url))
        assert server.connections == 0
