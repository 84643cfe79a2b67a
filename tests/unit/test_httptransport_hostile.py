"""mirror.httptransport against a hostile origin, proxy or network: every answer's framing is read one way only
(or refused), nothing beyond an answer is read as the next one, a connection is reused only when that is safe,
TLS is checked on every path, and cancel() reaches every wait. The servers here write exactly the bytes a test
scripts, in the writes it scripts."""

from __future__ import annotations

import contextlib
import hashlib
import io
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mirror import netguard
from mirror.errors import SlowTransferError
from mirror.httptransport import GuardedTransport
from mirror.limits import Limits
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from tests.support.connectproxy import recording_proxy
from tests.support.hostile import Answer, HostileServer, Request
from tests.support.scriptedhttp import Peer, Server
from tests.support.tlsloopback import loopback_certificate, tls_front


@pytest.fixture(autouse=True)
def fresh_run() -> Iterator[None]:
    netguard.reset()
    yield
    netguard.reset()


def answering(*answers: bytes) -> Callable[[Peer], None]:
    """Every request on every connection answered with the next of `answers` (the last one repeated), one write
    each; the connection stays open."""
    count = [0]
    lock = threading.Lock()

    def serve(peer: Peer) -> None:
        while peer.request() is not None:
            with lock:
                answer = answers[min(count[0], len(answers) - 1)]
                count[0] += 1
            peer.send(answer)

    return serve


def ok(body: bytes = b"hello", version: bytes = b"HTTP/1.1") -> bytes:
    return version + b" 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


@contextlib.contextmanager
def client_of(server: Server, **options: Any) -> Iterator[httpx.Client]:
    timeout = options.pop("timeout", 5)
    transport = GuardedTransport(trust_env=False, **options)
    try:
        with httpx.Client(transport=transport, timeout=timeout, trust_env=False) as client:
            yield client
    finally:
        server.close()


def get_all(server: Server, count: int = 2) -> list[bytes | str]:
    """`count` GETs in a row on one client: each body, or the name of the error it raised."""
    outcomes: list[bytes | str] = []
    with client_of(server) as client:
        for _ in range(count):
            try:
                outcomes.append(client.get(server.url).content)
            except httpx.HTTPError as exc:
                outcomes.append(type(exc).__name__)
    return outcomes


# -- framing: one reading of every answer, or a refusal --------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        b"Transfer-Encoding: gzip, chunked\r\nContent-Length: 3",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\nContent-Length: 3",
        b"Transfer-Encoding: chunked, chunked",
        b"Transfer-Encoding: identity\r\nContent-Length: 3",
        b"Transfer-Encoding: xchunked\r\nContent-Length: 3",
    ],
)
def test_a_transfer_encoding_other_than_chunked_alone_is_refused(fields: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


def test_a_transfer_encoding_in_an_http_1_0_answer_is_refused() -> None:
    answer = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


def test_chunked_wins_over_content_length_and_the_connection_is_not_reused() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    server = Server(answering(answer))
    assert get_all(server) == [b"abc", b"abc"]
    assert server.connections == 2


def test_a_folded_transfer_encoding_is_read_unfolded() -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n5\r\nabcde\r\n0\r\n\r\n"
    assert get_all(Server(answering(answer)), 1) in ([b"abcde"], ["RemoteProtocolError"])


@pytest.mark.parametrize("length", [b"+3", b"-3", b"3 3", b"0x3", b"", b"3,3", b"\xd9\xa3", b"1e1"])
def test_a_content_length_that_is_not_digits_is_refused(length: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nabc"
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


def test_a_content_length_with_leading_zeros_and_spaces_is_its_number() -> None:
    server = Server(answering(b"HTTP/1.1 200 OK\r\nContent-Length:   003  \r\n\r\nabc"))
    assert get_all(server) == [b"abc", b"abc"]
    assert server.connections == 1


def test_a_huge_content_length_then_a_close_is_an_error_not_a_short_body() -> None:
    def serve(peer: Peer) -> None:
        peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nabc")

    assert get_all(Server(serve), 1) == ["RemoteProtocolError"]


@pytest.mark.parametrize("size", [b"+3", b"-1", b"0x3", b"3_0", b"", b"g", b"\xd9\xa3", b"3 3"])
def test_a_chunk_size_that_is_not_hex_digits_is_refused(size: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nabc\r\n0\r\n\r\n"
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


def test_chunk_data_not_followed_by_its_line_break_is_refused() -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n"
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


def test_chunk_extensions_and_trailers_are_read_past_and_the_connection_kept() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;name=value\r\nabc\r\n2 ; x\r\nde\r\n0;last\r\nX-Checksum: 1\r\nX-More: 2\r\n\r\n"
    )
    server = Server(answering(answer))
    assert get_all(server) == [b"abcde", b"abcde"]
    assert server.connections == 1


def test_endless_trailers_are_refused() -> None:
    trailers = b"X-T: 1\r\n" * 1000
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n" + trailers + b"\r\n"
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


@pytest.mark.parametrize(
    "status_line",
    [
        b"SSH-2.0-OpenSSH_9.6",
        b"HTTP/2 200 OK",
        b"HTTP/1.1 +200 OK",
        b"HTTP/1.1 2_00 OK",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.10 200 OK",
        b"http/1.1 200 OK",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 200 OK\x00",
    ],
)
def test_a_status_line_that_is_not_http_1_is_refused(status_line: bytes) -> None:
    answer = status_line + b"\r\nContent-Length: 3\r\n\r\nabc"
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


def test_a_status_line_without_a_reason_is_read() -> None:
    assert get_all(Server(answering(b"HTTP/1.1 200\r\nContent-Length: 3\r\n\r\nabc")), 1) == [b"abc"]


def test_informational_answers_before_the_final_one_are_skipped() -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + early + b"HTTP/1.1 102 Processing\r\n\r\n" + ok(b"final")
    server = Server(answering(answer))
    with client_of(server) as client:
        response = client.get(server.url)
    assert (response.status_code, response.content) == (200, b"final")


def test_informational_answers_without_end_are_refused() -> None:
    def serve(peer: Peer) -> None:
        peer.request()
        with contextlib.suppress(OSError):
            peer.send(b"HTTP/1.1 100 Continue\r\n\r\n" * 20_000 + ok())

    assert get_all(Server(serve), 1) == ["RemoteProtocolError"]


def test_an_unasked_switch_of_protocols_is_refused() -> None:
    answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + ok()
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


def test_header_lines_ending_in_a_bare_line_feed_are_read() -> None:
    server = Server(answering(b"HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 3\n\nabc"))
    assert get_all(server) == [b"abc", b"abc"]


@pytest.mark.parametrize(
    "line",
    [
        b"X-Evil: a\x00b",
        b"X-Evil: a\rb",
        b"X-Evil: a\x7fb",
        b"X-Evil: a\x1bb",
        b"X Evil: a",
        b"X-Evil\x00: a",
        b"X-(Evil): a",
        b": a",
        b"Content-Length : 3",
        b" folded-first: a",
    ],
)
def test_a_header_line_with_a_control_character_or_a_bad_name_is_refused(line: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + line + b"\r\nContent-Length: 3\r\n\r\nabc"
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


def test_a_header_value_may_hold_tabs_and_latin_1() -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Text: a\tb \xe9\r\nContent-Length: 3\r\n\r\nabc"
    server = Server(answering(answer))
    with client_of(server) as client:
        assert client.get(server.url).headers["x-text"] == "a\tb \xe9"


def test_too_many_header_lines_are_refused() -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 200 + b"Content-Length: 3\r\n\r\nabc"
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


def test_a_header_line_too_long_is_refused() -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 70_000 + b"\r\nContent-Length: 3\r\n\r\nabc"
    assert get_all(Server(answering(answer)), 1) == ["RemoteProtocolError"]


def test_a_head_answer_with_a_body_is_never_read_as_the_next_answer() -> None:
    def serve(peer: Peer) -> None:
        while (head := peer.request()) is not None:
            if head.startswith(b"HEAD"):
                peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 33\r\n\r\n" + ok(b"smuggled"))
            else:
                peer.send(ok(b"real"))

    server = Server(serve)
    with client_of(server) as client:
        assert client.head(server.url).status_code == 200
        assert client.get(server.url).content == b"real"


def test_a_no_content_answer_with_a_body_is_never_read_as_the_next_answer() -> None:
    server = Server(answering(b"HTTP/1.1 204 No Content\r\n\r\n" + ok(b"smuggled"), ok(b"real")))
    assert get_all(server) == [b"", b"real"]


def test_an_http_1_0_answer_says_so() -> None:
    server = Server(answering(ok(version=b"HTTP/1.0")))
    with client_of(server) as client:
        assert client.get(server.url).http_version == "HTTP/1.0"


def test_a_body_cut_short_mid_chunk_size_is_an_error() -> None:
    def serve(peer: Peer) -> None:
        peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1")

    assert get_all(Server(serve), 1) == ["RemoteProtocolError"]


# -- connection reuse -----------------------------------------------------------------------------------------


def test_a_connection_whose_body_failed_to_parse_is_not_reused() -> None:
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    server = Server(answering(bad, ok()))
    assert get_all(server) == ["RemoteProtocolError", b"hello"]
    assert server.connections == 2


def test_a_streamed_put_a_kept_connection_dropped_unanswered_is_not_sent_again() -> None:
    requests = []

    def serve(peer: Peer) -> None:
        while (head := peer.request()) is not None:
            requests.append(head)
            if len(requests) == 2:
                return
            peer.send(ok())

    server = Server(serve)
    with client_of(server) as client:
        client.get(server.url)
        with pytest.raises(httpx.RemoteProtocolError):
            client.put(server.url, content=iter([b"ab", b"cd"]))
    assert len(requests) == 2


def test_a_patch_a_kept_connection_dropped_unanswered_is_not_sent_again() -> None:
    requests = []

    def serve(peer: Peer) -> None:
        while (head := peer.request()) is not None:
            requests.append(head)
            if len(requests) == 2:
                return
            peer.send(ok())

    server = Server(serve)
    with client_of(server) as client:
        client.get(server.url)
        with pytest.raises(httpx.RemoteProtocolError):
            client.patch(server.url, content=b"x")
    assert len(requests) == 2


def test_a_request_waiting_for_a_connection_past_the_pool_timeout_is_a_pool_timeout() -> None:
    server = Server(answering(ok(b"x" * 100_000)))
    timeout = httpx.Timeout(5, pool=0.3)
    with client_of(server, limits=httpx.Limits(max_connections=1), timeout=timeout) as client:
        with client.stream("GET", server.url), pytest.raises(httpx.PoolTimeout):
            client.get(server.url)
        assert client.get(server.url).status_code == 200


def test_an_idle_connection_past_its_keepalive_expiry_is_not_reused() -> None:
    server = Server(answering(ok()))
    with client_of(server, limits=httpx.Limits(keepalive_expiry=0.2)) as client:
        client.get(server.url)
        time.sleep(0.4)
        client.get(server.url)
    assert server.connections == 2


def test_a_connection_in_use_when_the_transport_closes_is_closed_after_its_answer() -> None:
    server = Server(answering(ok()))
    transport = GuardedTransport(trust_env=False)
    client = httpx.Client(transport=transport, trust_env=False, timeout=5)
    with client.stream("GET", server.url) as response:
        transport.close()
        response.read()
    assert transport._pool._idle == {}  # type: ignore[attr-defined]
    assert transport._pool._open == 0  # type: ignore[attr-defined]
    server.close()


def test_a_connection_cancelled_mid_body_is_not_reused() -> None:
    def serve(peer: Peer) -> None:
        peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        time.sleep(10)

    server = Server(serve)
    transport = GuardedTransport(trust_env=False)
    with httpx.Client(transport=transport, trust_env=False, timeout=20) as client:
        with client.stream("GET", server.url) as response:
            threading.Timer(0.3, netguard.cancel).start()
            with pytest.raises(netguard.Cancelled):
                response.read()
        assert transport._pool._open == 0  # type: ignore[attr-defined]
    server.close()


def test_a_connection_is_reused_with_more_than_1024_files_open() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("the process may not open more than 1200 files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held: list[socket.socket] = []
    try:
        while not held or held[-1].fileno() < 1100:
            held.append(socket.socket())
        server = Server(answering(ok()))
        assert get_all(server, 3) == [b"hello"] * 3
        assert server.connections == 1
    finally:
        for sock in held:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- what the transport sends ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Evil": "a\nInjected: yes"},
        {"X-Evil": "a\rb"},
        {"X-Evil": "a\x00b"},
        {"X-Ev\x00il": "a"},
        {"X-Evil": "a\x1bb"},
        {"X-Evil": "a\x7fb"},
        {"X-Evil: injected": "a"},
        {"X Evil": "a"},
        {"": "a"},
    ],
)
def test_a_header_whose_name_is_not_a_token_or_whose_value_has_a_control_character_is_never_sent(
    headers: dict[str, str],
) -> None:
    heads: list[bytes] = []

    def serve(peer: Peer) -> None:
        while (head := peer.request()) is not None:
            heads.append(head)
            peer.send(ok())

    server = Server(serve)
    with client_of(server) as client, pytest.raises((httpx.LocalProtocolError, httpx.InvalidURL, ValueError)):
        client.get(server.url, headers=headers)
    assert heads == []


@pytest.mark.parametrize("method", ["GET / HTTP/1.1\r\nX: y\r\n\r\nGET", "GET /x", ""])
def test_a_method_that_is_not_a_token_is_never_sent(method: str) -> None:
    heads: list[bytes] = []

    def serve(peer: Peer) -> None:
        while (head := peer.request()) is not None:
            heads.append(head)
            peer.send(ok())

    server = Server(serve)
    with client_of(server) as client, pytest.raises(httpx.LocalProtocolError):
        client.request(method, server.url)
    assert heads == []


def test_an_early_answer_to_an_upload_the_server_stopped_reading_is_returned() -> None:
    def serve(peer: Peer) -> None:
        peer.request(read_body=False)
        peer.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!")
        peer.sock.shutdown(socket.SHUT_WR)
        time.sleep(0.3)

    server = Server(serve)
    with client_of(server) as client:
        response = client.put(server.url, content=b"x" * (32 * 1024 * 1024))
    assert (response.status_code, response.content) == (413, b"big!")


# -- TLS ------------------------------------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(a server's context for 127.0.0.1, a client's context that trusts it)"""
    cert, key = loopback_certificate(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


def _by_name(server: Server) -> str:
    return f"https://localhost:{server.port}/"  # the certificate names 127.0.0.1 only


def test_a_certificate_for_another_name_is_refused_directly(tls) -> None:
    server_context, client_context = tls
    server = Server(answering(ok()), tls=server_context)
    with client_of(server, verify=client_context) as client:
        assert client.get(server.url).content == b"hello"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get(_by_name(server))


def test_an_untrusted_certificate_is_refused(tls) -> None:
    server_context, _ = tls
    server = Server(answering(ok()), tls=server_context)
    with (
        client_of(server, verify=ssl.create_default_context()) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(server.url)


def test_a_certificate_for_another_name_is_refused_through_a_connect_tunnel(tls) -> None:
    server_context, client_context = tls
    server = Server(answering(ok()), tls=server_context)
    with recording_proxy() as proxy, client_of(server, verify=client_context, proxy=httpx.Proxy(proxy.url)) as client:
        assert client.get(server.url).content == b"hello"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get(_by_name(server))


def test_a_certificate_for_another_name_is_refused_inside_an_https_proxys_tls(tls) -> None:
    server_context, client_context = tls
    server = Server(answering(ok()), tls=server_context)
    with recording_proxy() as proxy, tls_front(server_context, proxy.address) as proxy_url:
        through = httpx.Proxy(proxy_url, ssl_context=client_context)
        with client_of(server, verify=client_context, proxy=through) as client:
            assert client.get(server.url).content == b"hello"
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                client.get(_by_name(server))


def test_the_server_name_is_sent_for_a_host_name(tls) -> None:
    server_context, client_context = tls
    names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment]
    server = Server(answering(ok()), tls=server_context)
    client_context.check_hostname = False  # only what the server is told is looked at here
    with client_of(server, verify=client_context) as client:
        client.get(_by_name(server))
    assert names == ["localhost"]


def _two_records(peer: Peer) -> None:
    while peer.request() is not None:
        peer.send(ok(b"first"), ok(b"smuggled"), pause_s=0.01)


def test_a_second_tls_record_beyond_an_answer_is_never_read_as_the_next_answer(tls) -> None:
    server_context, client_context = tls
    server = Server(_two_records, tls=server_context)
    with client_of(server, verify=client_context) as client:
        assert client.get(server.url).content == b"first"
        time.sleep(0.1)
        assert client.get(server.url).content == b"first"


def test_a_second_tls_record_beyond_an_answer_inside_an_https_proxys_tls_is_never_read_as_the_next_answer(
    tls,
) -> None:
    server_context, client_context = tls
    server = Server(_two_records, tls=server_context)
    with recording_proxy() as proxy, tls_front(server_context, proxy.address) as proxy_url:
        through = httpx.Proxy(proxy_url, ssl_context=client_context)
        with client_of(server, verify=client_context, proxy=through) as client:
            assert client.get(server.url).content == b"first"
            time.sleep(0.1)
            assert client.get(server.url).content == b"first"


def _dripping_handshake(peer: Peer) -> None:
    peer.sock.recv(65536)  # the ClientHello
    with contextlib.suppress(OSError):
        for byte in b"\x16\x03\x03\x3f\xff" + b"\x00" * 16000:
            time.sleep(0.1)
            peer.sock.sendall(bytes([byte]))


def _within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
    """What `call` raised, run in a thread that must end within `seconds`."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return outcome[0]


def test_a_dripping_tls_handshake_inside_an_https_proxys_tls_is_bounded_by_the_connect_timeout(tls) -> None:
    server_context, client_context = tls
    server = Server(_dripping_handshake)
    with recording_proxy() as proxy, tls_front(server_context, proxy.address) as proxy_url:
        through = httpx.Proxy(proxy_url, ssl_context=client_context)
        with client_of(server, verify=client_context, proxy=through, timeout=httpx.Timeout(30, connect=1)) as client:
            error = _within(8, lambda: client.get(f"https://127.0.0.1:{server.port}/"))
    assert isinstance(error, httpx.ConnectTimeout)


# -- cancel() -------------------------------------------------------------------------------------------------


def _silent(peer: Peer) -> None:
    time.sleep(20)


def test_cancel_wakes_a_thread_in_a_tls_handshake(tls) -> None:
    _, client_context = tls
    server = Server(_silent)
    with client_of(server, verify=client_context, timeout=30) as client:
        threading.Timer(0.3, netguard.cancel).start()
        error = _within(5, lambda: client.get(f"https://127.0.0.1:{server.port}/"))
    assert isinstance(error, netguard.Cancelled)


def test_cancel_wakes_a_thread_in_a_write_the_server_does_not_read() -> None:
    server = Server(_silent)
    with client_of(server, timeout=30) as client:
        threading.Timer(0.5, netguard.cancel).start()
        error = _within(5, lambda: client.put(server.url, content=b"x" * (64 * 1024 * 1024)))
    assert isinstance(error, netguard.Cancelled)


def test_cancel_wakes_a_thread_waiting_for_a_connection() -> None:
    server = Server(answering(ok(b"x" * 100_000)))
    with (
        client_of(server, limits=httpx.Limits(max_connections=1), timeout=30) as client,
        client.stream("GET", server.url),
    ):
        threading.Timer(0.3, netguard.cancel).start()
        error = _within(5, lambda: client.get(server.url))
    assert isinstance(error, netguard.Cancelled)


def test_a_read_timeout_is_per_read_not_for_the_whole_body() -> None:
    def serve(peer: Peer) -> None:
        peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n", *[b"x"] * 6, pause_s=0.3)

    server = Server(serve)
    with client_of(server, timeout=1) as client:
        assert client.get(server.url).content == b"xxxxxx"


@pytest.mark.parametrize(
    "cut", [b"HTTP/1.1 200 OK\r\nX-A: 1\r\n", b"HTTP/1.1 200 OK\r\nX-A: 1", b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK\r\n"]
)
def test_a_head_cut_short_by_a_close_is_an_error_not_an_empty_answer(cut: bytes) -> None:
    def serve(peer: Peer) -> None:
        peer.request()
        peer.send(cut)

    assert get_all(Server(serve), 1) == ["RemoteProtocolError"]


# -- the registry client's own requests (RegistryClient._exchange) -----------------------------------------------


def test_a_registrys_cookie_goes_back_to_it_and_never_to_the_host_it_redirects_to() -> None:
    blob = b"layer bytes\n"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()

    def registry_route(store_url: str) -> Callable[[Request], Answer]:
        def route(request: Request) -> Answer:
            return Answer(307, {"Location": store_url + request.path, "Set-Cookie": "sticky=node-2; Path=/"})

        return route

    with (
        HostileServer(lambda _: Answer(200, {}, blob), host="127.0.0.2") as store,
        HostileServer(registry_route(store.url)) as registry,
        RegistryClient(Endpoint(registry.netloc, "http", registry.netloc), None, Limits()) as client,
    ):
        for _ in range(2):
            client.download_blob("team/app", digest, len(blob), io.BytesIO())
    assert [r.headers.get("cookie") for r in registry.requests] == [None, "sticky=node-2"]
    assert [r.headers.get("cookie") for r in store.requests] == [None, None]


def test_the_registry_client_sends_its_default_headers_and_a_host() -> None:
    with (
        HostileServer(lambda _: Answer(200, {"Content-Type": "application/json"}, b'{"tags": []}')) as registry,
        RegistryClient(Endpoint(registry.netloc, "http", registry.netloc), None, Limits()) as client,
    ):
        list(client.iter_tags("team/app"))
    headers = registry.requests[0].headers
    assert headers["host"] == registry.netloc
    assert "user-agent" in headers
    assert "authorization" not in headers


def test_a_forwarding_proxy_gets_its_credentials_in_the_absolute_form_request_and_the_origin_none() -> None:
    with (
        HostileServer(lambda _: Answer(200, {}, b"plain")) as origin,
        recording_proxy(("u", "p")) as proxy,
        client_of(Server(_silent), proxy=httpx.Proxy(proxy.url, auth=("u", "p"))) as client,
    ):
        assert client.get(origin.url + "/path?q=1").content == b"plain"
    assert proxy.seen[0].target == origin.url + "/path?q=1"
    assert proxy.seen[0].header("proxy-authorization") == "Basic dTpw"
    assert "proxy-authorization" not in origin.requests[0].headers


def test_the_speed_floor_cuts_an_upload_the_server_stopped_reading() -> None:
    server = Server(_silent)
    pace = netguard.Pace("upload to example", min_bytes_per_s=100_000, window_s=1)

    def upload() -> None:
        with netguard.paced(pace):
            client.put(server.url, content=b"x" * (256 * 1024 * 1024))

    with client_of(server, timeout=30) as client:
        error = _within(10, upload)
    assert isinstance(error, SlowTransferError)


def test_a_request_a_kept_connection_cut_short_mid_answer_is_not_sent_again() -> None:
    requests = []

    def serve(peer: Peer) -> None:
        while peer.request() is not None:
            requests.append(peer.number)
            if len(requests) == 2:
                peer.send(b"HTTP/1.1 200 OK\r\nContent-Le")
                return
            peer.send(ok())

    assert get_all(Server(serve)) == [b"hello", "RemoteProtocolError"]
    assert requests == [1, 1]


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose connections hang in the handshake: a listener with a full queue that accepts none."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        yield port
    finally:
        filler.close()
        listener.close()


def test_cancel_wakes_a_thread_in_a_tcp_connect(unanswered_port: int) -> None:
    transport = GuardedTransport(trust_env=False)
    with httpx.Client(transport=transport, trust_env=False, timeout=30) as client:
        threading.Timer(0.3, netguard.cancel).start()
        error = _within(5, lambda: client.get(f"http://127.0.0.1:{unanswered_port}/"))
    assert isinstance(error, netguard.Cancelled)


def test_a_tcp_connect_is_bounded_by_the_connect_timeout(unanswered_port: int) -> None:
    transport = GuardedTransport(trust_env=False)
    with httpx.Client(transport=transport, trust_env=False, timeout=httpx.Timeout(30, connect=0.5)) as client:
        error = _within(5, lambda: client.get(f"http://127.0.0.1:{unanswered_port}/"))
    assert isinstance(error, httpx.ConnectTimeout)
