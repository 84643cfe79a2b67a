"""mirror's HTTP/1.1 transport under httpx: keep-alive connections on the standard library's http.client, every
socket held to mirror.netguard's pace and cancel(). See docs/development.md ("The HTTP transport").

Hand-written because no well-kept library pools http.client connections under httpx with a guard on every socket
read; httpx's own transport (httpcore + h11) costs about 0.7 ms of CPU more per small request, and a night of
HEADs and tag lists is bound by that.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from mirror import netguard
from mirror.limits import DEFAULT_LIMITS

_READ_PIECE = 64 * 1024  # what one read of a body asks for: a blob arrives in pieces of up to this size
_BUFFER = 16 * 1024  # the connection's read buffer (a response head, small bodies)
_SMALL_BODY = 64 * 1024  # a body of bytes up to this size goes out in one write with the head
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_MAX_LINE = 65536  # http.client's bounds on a response head
_MAX_HEADERS = 100
_POOL_WAIT_S = 0.5  # a thread waiting for a free connection looks at cancel() this often
# The grammar of RFC 9112, as h11 (httpx's own transport) holds answers to it.
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")  # what httpx makes of a URL's path and query: percent-encoded ASCII
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?\r\n")

Origin = tuple[bytes, bytes, int]  # scheme, host, port


class _TLSInTLS:
    """TLS to the upstream inside the TLS session with an https:// proxy: an ssl.SSLSocket cannot wrap another,
    so the inner session's records go through memory buffers over the outer socket."""

    def __init__(self, outer: ssl.SSLSocket, context: ssl.SSLContext, hostname: str) -> None:
        self._outer = outer
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=hostname)
        self._timeout: float | None = None
        self._until: float | None = None  # while a handshake runs: when its connect timeout ends, as a whole

    def settimeout(self, value: float | None) -> None:
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def fileno(self) -> int:
        return self._outer.fileno()

    def pending(self) -> int:
        """Bytes here that no read has taken yet: decrypted, still encrypted in the inner session's buffer, or in
        the outer session's (select() sees neither of the last two)."""
        return self._tls.pending() + self._incoming.pending + self._outer.pending()

    def shutdown(self, how: int) -> None:
        self._outer.shutdown(how)

    def close(self) -> None:
        self._outer.close()

    def _run(self, operation: Any, *args: Any) -> Any:
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                self._flush()
                self._outer.settimeout(self._wait())
                data = self._outer.recv(_READ_PIECE)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            self._flush()
            return result

    def _wait(self) -> float | None:
        if self._until is None:
            return self._timeout
        left = self._until - time.monotonic()
        if left <= 0:
            raise TimeoutError("_ssl.c: The handshake operation timed out")
        return left

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._outer.settimeout(self._wait())
            self._outer.sendall(data)

    def do_handshake(self) -> None:
        """Bounded by the timeout as a whole, as CPython bounds an SSLSocket's: an upstream dripping its
        certificate through the proxy is cut there."""
        if self._timeout is not None:
            self._until = time.monotonic() + self._timeout
        try:
            self._run(self._tls.do_handshake)
        finally:
            self._until = None

    def recv_into(self, buffer: Any) -> int:
        try:
            return int(self._run(self._tls.read, len(buffer), buffer))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return 0  # the end of the stream, as SSLSocket.recv_into says it (suppress_ragged_eofs)

    def sendall(self, data: Any) -> None:
        view = memoryview(data)
        while view:
            view = view[self._run(self._tls.write, view) :]


class _Reader(io.RawIOBase):
    """The connection's socket as http.client reads it: every read through netguard.receive."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        connection = self._connection
        if connection.probing:
            return None  # as a non-blocking socket with nothing to read: the reader's peek() returns its buffer only
        try:
            count = netguard.receive(connection.channel, buffer, connection.read_timeout)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc) or repr(exc)) from exc
        connection.received += count
        return count


class _Connection:
    """One keep-alive connection to an origin (directly, or through a proxy); cancel() shuts it down."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel  # a socket, a TLS socket, or _TLSInTLS
        self.read_timeout: float | None = None
        self.received = 0
        self.reused = False
        self.probing = False
        self.idle_since = 0.0
        self.reader = io.BufferedReader(_Reader(self), _BUFFER)
        netguard.watch(self)

    def makefile(self, mode: str) -> Any:
        return self.reader  # http.client.HTTPResponse reads the head and the body of every response here

    def shut_down(self) -> None:
        with contextlib.suppress(OSError):
            self.channel.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        netguard.unwatch(self)
        with contextlib.suppress(OSError):
            self.channel.close()

    def buffered(self) -> bool:
        """Whether the reader holds bytes past the response just read: an answer to no request, never read as the
        next one."""
        self.probing = True
        try:
            return bool(self.reader.peek(1))
        finally:
            self.probing = False

    def still_open(self) -> bool:
        """An idle connection has nothing to read: if it has, the server closed it (or sent what no request asked
        for), and it is not used again. httpcore looks the same way before reusing a connection."""
        pending = getattr(self.channel, "pending", None)
        if pending is not None and pending():
            return False
        # poll, not select: select refuses a descriptor above 1023, and every connection would look closed.
        poller = select.poll()
        try:
            poller.register(self.channel.fileno(), select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False


class _Response(http.client.HTTPResponse):
    fields: list[tuple[bytes, bytes]]

    def begin(self) -> None:
        """http.client's, without its email parser (a third of a small request's CPU in http.client), and as strict
        as h11 was: the status line (informational answers skipped), the header fields in order as bytes, and the
        body's framing, read one way only or refused (docs/development.md, "The HTTP transport")."""
        head = _HeadBound()  # interim answers count towards the head's bounds: a server cannot send them without end
        while True:
            version, status, reason = _status_line(self.fp, head)
            raw = _header_lines(self.fp, head)
            if status == 101:  # no request of mirror asks to switch protocols
                raise http.client.HTTPException("an unasked switch of protocols (101)")
            if not 100 <= status < 200:
                break
        self.code = self.status = status
        self.reason = reason
        self.version = version
        self.fields = fields = _fields(raw)
        encodings: list[bytes] = []
        connection = None
        lengths = set()
        keep_alive = False
        for name, value in fields:
            lower = name.lower()
            if lower == b"transfer-encoding":
                encodings += [coding.strip(b" \t").lower() for coding in value.split(b",")]
            elif lower == b"content-length":
                lengths.add(value)
            elif lower in (b"connection", b"proxy-connection"):
                connection = (connection or b"") + b"," + value.lower()
            elif lower == b"keep-alive":
                keep_alive = True
        if self.version == 11:
            self.will_close = connection is not None and b"close" in connection
        else:
            self.will_close = not (keep_alive or (connection is not None and b"keep-alive" in connection))
        if len(lengths) > 1:  # two bodies' worth of framing: the way a response is smuggled
            raise http.client.HTTPException("conflicting Content-Length fields")
        # Only chunked alone is read (as h11 did): any other coding, or chunked in an HTTP/1.0 answer, leaves the
        # body's end to a guess, which is how an answer is smuggled past a reader that guesses differently.
        if encodings and (encodings != [b"chunked"] or self.version != 11):
            raise http.client.HTTPException(f"Transfer-Encoding {b', '.join(encodings)[:40]!r} is not chunked alone")
        self.chunked = bool(encodings)
        self.chunk_left = None
        self.length = None
        if self.chunked and lengths:  # chunked wins (RFC 9112 6.3); the connection is not trusted with another
            self.will_close = True
        elif lengths:
            (length,) = lengths
            if not length.isdigit():
                raise http.client.HTTPException(f"Content-Length {length[:40]!r} is not a length")
            self.length = int(length)
        if status in (204, 304) or self._method == "HEAD":  # type: ignore[attr-defined]
            self.chunked, self.length = False, 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True

    def _get_chunk_left(self) -> int | None:
        """http.client's, strict: the line break after a chunk's data checked, the size hex digits only (int()
        would take "+3", "-1", "0x3", "3_0"), the trailer within the head's bounds."""
        chunk_left = self.chunk_left
        if not chunk_left:
            if chunk_left is not None and self._safe_read(2) != b"\r\n":  # type: ignore[attr-defined]
                raise http.client.HTTPException("chunk data not followed by its line break")
            line = self.fp.readline(_MAX_LINE + 1)
            if not line:
                raise http.client.IncompleteRead(b"")
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                raise http.client.HTTPException(f"malformed chunk size line {line[:40]!r}")
            chunk_left = int(match[1], 16)
            if chunk_left == 0:
                if self.fp.peek(1):
                    _header_lines(self.fp, _HeadBound())  # the trailer, read past
                else:  # the connection ended right after the last chunk, which http.client allows
                    self.will_close = True
                self._close_conn()
                chunk_left = None
            self.chunk_left = chunk_left
        return chunk_left

    def _close_conn(self) -> None:
        # http.client closes its file at the end of a body; here that file is the connection's reader, which
        # serves the connection's next response.
        self.fp = None  # type: ignore[assignment]


class _Body(httpx.SyncByteStream):
    """A response body as it arrives; the connection goes back to the pool only once the body was read to its end."""

    def __init__(self, pool: _Pool, origin: Origin, connection: _Connection, response: _Response) -> None:
        self._pool, self._origin, self._connection, self._response = pool, origin, connection, response
        self._released = False
        self._broken = False  # http.client marks a body cut short as ended: its connection must not be reused

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._pieces()
        except BaseException:
            self._broken = True
            raise

    def _pieces(self) -> Iterator[bytes]:
        response = self._response
        with _body_errors():
            while chunk := response.read1(_READ_PIECE):
                yield chunk
        _check_ended(response)

    def readinto(self, buffer: memoryview) -> int:
        """The body's next bytes straight into `buffer`, as many as have arrived up to its size; 0 at the end."""
        response = self._response
        try:
            with _body_errors():
                count = response.readinto(buffer)
            if not count:
                _check_ended(response)
        except BaseException:
            self._broken = True
            raise
        return count

    def close(self) -> None:
        if not self._released:
            self._released = True
            response = self._response
            reusable = (
                not self._broken and _complete(response) and not response.will_close and not self._connection.buffered()
            )
            self._pool.release(self._origin, self._connection, reusable)


@contextlib.contextmanager
def _body_errors() -> Iterator[None]:
    try:
        yield
    except http.client.IncompleteRead as exc:
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body: incomplete chunked read"
        ) from exc
    except (http.client.HTTPException, ValueError) as exc:
        raise httpx.RemoteProtocolError(f"broken response body: {exc!r}") from exc


def _check_ended(response: _Response) -> None:
    if response.length:  # http.client's reads end quietly when the connection ends before Content-Length said
        raise httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body (missing {response.length} bytes)"
        )


def read_into(response: httpx.Response, buffer: memoryview) -> Iterator[memoryview]:
    """A streamed response's body in pieces, each valid until the next is asked for.

    Straight from GuardedTransport (the registry client's requests), the socket's bytes land in `buffer` itself, no
    more than its size at a time: no bytes object per piece, a third less CPU for a blob's download than iterating
    it in 64 KiB pieces. Any other body (another transport, or one httpx.Client wrapped) comes as httpx iterates it.
    """
    stream = response.stream
    if isinstance(stream, _Body):
        while count := stream.readinto(buffer):
            yield buffer[:count]
        return
    for chunk in response.iter_raw():
        yield memoryview(chunk)


class _Pool:
    """Connections per origin, at most `max_connections` open in all (None: no bound), `max_idle` kept idle."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._max = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open = 0
        self._closed = False
        self._condition = threading.Condition()

    def acquire(self, origin: Origin, timeout: float | None) -> _Connection | None:
        """An idle connection to `origin`, or None: the caller opens one (and calls failed() if it cannot)."""
        until = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                if self._closed:  # httpx.Client refuses this itself; the registry client's requests bypass it
                    raise RuntimeError("a request on a closed transport")
                idle = self._idle.get(origin)
                now = time.monotonic()
                while idle:
                    connection = idle.pop()
                    if (self._expiry is None or now - connection.idle_since < self._expiry) and connection.still_open():
                        connection.reused = True
                        return connection
                    self._drop(connection)
                if self._max is None or self._open < self._max:
                    self._open += 1
                    return None
                others = next((waiting for waiting in self._idle.values() if waiting), None)
                if others:  # at the bound: an idle connection to another origin makes room
                    self._drop(others.pop(0))
                    continue
                netguard.check_cancelled()
                left = _POOL_WAIT_S if until is None else min(_POOL_WAIT_S, until - now)
                if left <= 0:
                    raise httpx.PoolTimeout("no connection free within the pool timeout")
                self._condition.wait(left)

    def failed(self) -> None:
        with self._condition:
            self._open -= 1
            self._condition.notify()

    def release(self, origin: Origin, connection: _Connection, reusable: bool) -> None:
        with self._condition:
            idle = sum(len(waiting) for waiting in self._idle.values())
            if (
                reusable
                and not self._closed
                and (self._max_idle is None or idle < self._max_idle)
                and not netguard.cancelled()
            ):
                connection.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(connection)
            else:
                self._drop(connection)
            self._condition.notify()

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._open -= 1

    def close(self) -> None:
        with self._condition:
            self._closed = True
            for waiting in self._idle.values():
                for connection in waiting:
                    self._drop(connection)
            self._idle.clear()


class GuardedTransport(httpx.BaseTransport):
    """HTTP/1.1 over http.client, pooled, each socket under mirror.netguard; optionally through one proxy
    (`proxy`: HTTPS through a CONNECT tunnel, plain HTTP forwarded in absolute form). Options as
    httpx.HTTPTransport's; errors are its exception classes, so the retry policy reads them the same."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool | Callable[[], ssl.SSLContext] = True,
        proxy: httpx.Proxy | None = None,
        limits: httpx.Limits | None = None,
        trust_env: bool = True,
    ) -> None:
        self._verify = verify
        self._trust_env = trust_env
        self._context: ssl.SSLContext | None = verify if isinstance(verify, ssl.SSLContext) else None
        self._pool = _Pool(limits or httpx.Limits(max_connections=100, max_keepalive_connections=20))
        self._proxy = proxy
        self._proxy_headers: list[tuple[bytes, bytes]] = []
        if proxy is not None:
            self._proxy_headers = list(proxy.headers.raw)
            if proxy.raw_auth is not None:
                user, password = proxy.raw_auth
                token = base64.b64encode(user + b":" + password)
                self._proxy_headers.append((b"Proxy-Authorization", b"Basic " + token))

    def _tls(self) -> ssl.SSLContext:
        """The TLS context for upstreams, made on the first https:// connection (`verify` may be a function that
        makes it: a plain-HTTP run never loads CA certificates)."""
        if self._context is None:
            verify = self._verify
            if callable(verify):
                self._context = verify()
            else:
                self._context = httpx.create_ssl_context(verify=verify, trust_env=self._trust_env)
        return self._context

    # -- requests ----------------------------------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        netguard.check_cancelled()
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme.decode()}://'.")
        origin = (scheme, url.raw_host, url.port or _DEFAULT_PORTS[scheme])
        timeouts = request.extensions.get("timeout", {})
        forwarded = self._proxy is not None and scheme == b"http"
        head, length, chunked = _head(request, forwarded, self._proxy_headers if forwarded else [])
        stream = request.stream
        replayable = isinstance(stream, httpx.ByteStream) and request.method in _IDEMPOTENT
        while True:
            connection = self._pool.acquire(origin, timeouts.get("pool"))
            if connection is None:
                try:
                    connection = self._connect(origin, timeouts.get("connect"))
                except BaseException:
                    self._pool.failed()
                    raise
            try:
                connection.read_timeout = timeouts.get("read")
                connection.received = 0
                try:
                    _write(connection, head, stream, length, chunked, timeouts.get("write"))
                except httpx.WriteError as failed:
                    response = _early_answer(connection, request.method, failed)
                else:
                    response = _Response(connection, method=request.method)  # type: ignore[arg-type]
                    _begin(response)
            except (httpx.WriteError, httpx.ReadError, httpx.RemoteProtocolError):
                self._pool.release(origin, connection, False)
                # A kept-alive connection the server closed as this request went out: once more on a new one, when
                # nothing came back and the request can be sent again unchanged.
                if connection.reused and not connection.received and replayable:
                    continue
                raise
            except BaseException:
                self._pool.release(origin, connection, False)
                raise
            body = _Body(self._pool, origin, connection, response)
            if _complete(response):  # no body: the connection is free already
                body.close()
            return httpx.Response(
                response.status,
                headers=response.fields,
                stream=body,
                extensions={
                    "http_version": b"HTTP/1.%d" % (response.version - 10),
                    "reason_phrase": response.reason.encode("latin-1"),
                },
            )

    def close(self) -> None:
        self._pool.close()

    # -- connections -------------------------------------------------------------------------------------------

    def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        netguard.check_cancelled()
        scheme, host, port = origin
        proxy = self._proxy
        if proxy is None:
            connection = _Connection(_tcp(host.decode("ascii"), port, timeout))
        else:
            proxy_url = proxy.url
            proxy_host = proxy_url.raw_host.decode("ascii")
            connection = _Connection(_tcp(proxy_host, proxy_url.port or _DEFAULT_PORTS[proxy_url.raw_scheme], timeout))
        try:
            if proxy is None:
                if scheme == b"https":
                    _start_tls(connection, self._tls(), host.decode("ascii"), timeout)
            elif proxy.url.raw_scheme == b"https":
                proxy_context = proxy.ssl_context or httpx.create_ssl_context(trust_env=self._trust_env)
                _start_tls(connection, proxy_context, proxy_host, timeout)
            if proxy is not None and scheme == b"https":
                self._tunnel(connection, origin, timeout)
                _start_tls(connection, self._tls(), host.decode("ascii"), timeout)
        except BaseException:
            connection.close()
            raise
        return connection

    def _tunnel(self, connection: _Connection, origin: Origin, timeout: float | None) -> None:
        """CONNECT host:port through the proxy; its credentials go to the proxy only, in this request."""
        _, host, port = origin
        authority = (b"[" + host + b"]" if b":" in host else host) + b":%d" % port
        lines = [b"CONNECT " + authority + b" HTTP/1.1", b"Host: " + authority]
        lines += [name + b": " + value for name, value in self._proxy_headers]
        connection.read_timeout = timeout
        _write(connection, b"\r\n".join(lines) + b"\r\n\r\n", httpx.ByteStream(b""), None, False, timeout)
        answer = _Response(connection, method="CONNECT")  # type: ignore[arg-type]
        _begin(answer)
        if not 200 <= answer.status < 300:
            raise httpx.ProxyError(f"{answer.status} {answer.reason}")


def _tcp(host: str, port: int, timeout: float | None) -> socket.socket:
    """socket.create_connection's: each address in turn, the last one's error raised; the handshake under
    netguard (cancel() wakes it). The name lookup is not: the resolver cannot be woken."""
    try:
        addresses = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except OSError as exc:
        raise httpx.ConnectError(str(exc) or repr(exc)) from exc
    failure: OSError = OSError(f"no address for {host}")
    for family, kind, protocol, _, address in addresses:
        sock = socket.socket(family, kind, protocol)
        try:
            netguard.connect(sock, address, timeout)
            break
        except OSError as exc:
            failure = exc
        except BaseException:
            sock.close()
            raise
        sock.close()
    else:
        if isinstance(failure, TimeoutError):
            raise httpx.ConnectTimeout(str(failure) or "timed out") from failure
        raise httpx.ConnectError(str(failure) or repr(failure)) from failure
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a head and a small body go out as one write
    return sock


def _start_tls(connection: _Connection, context: ssl.SSLContext, hostname: str, timeout: float | None) -> None:
    """TLS over the connection (SNI and the host name checked by `context`), registered before the handshake so
    cancel() reaches it; CPython bounds the whole handshake by `timeout`: a server dripping it is cut there."""
    netguard.check_cancelled()
    plain = connection.channel
    try:
        if isinstance(plain, ssl.SSLSocket):
            tls: Any = _TLSInTLS(plain, context, hostname)
        else:
            tls = context.wrap_socket(plain, server_hostname=hostname, do_handshake_on_connect=False)
        connection.channel = tls
        connection.reader = io.BufferedReader(_Reader(connection), _BUFFER)
        tls.settimeout(timeout)
        tls.do_handshake()
    except TimeoutError as exc:
        netguard.check_cancelled()
        raise httpx.ConnectTimeout(str(exc) or "timed out") from exc
    except OSError as exc:
        netguard.check_cancelled()
        raise httpx.ConnectError(str(exc) or repr(exc)) from exc


def _head(request: httpx.Request, forwarded: bool, extra: list[tuple[bytes, bytes]]) -> tuple[bytes, int | None, bool]:
    """The request line and headers as sent; the body's Content-Length (None: none stated) and whether it is
    chunked, as httpx stated them in the headers."""
    url = request.url
    target = url.raw_path
    if forwarded:  # a proxy forwarding plain HTTP reads the origin from an absolute-form target
        target = url.raw_scheme + b"://" + url.netloc + target
    method = request.method.encode("latin-1", "replace")
    # Held to the grammar as h11 held them: a CR, LF or NUL would start a header (or a request) of its own, a
    # colon or a space in a name would be read as another header by the server, a control character by some.
    if not _TOKEN.fullmatch(method) or not _TARGET.fullmatch(target):
        raise httpx.LocalProtocolError(f"a request method or target that HTTP/1.1 cannot carry: {method[:40]!r}")
    lines = [method + b" " + target + b" HTTP/1.1"]
    length: int | None = None
    chunked = False
    for name, value in (*extra, *request.headers.raw):
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise httpx.LocalProtocolError(f"a request header that HTTP/1.1 cannot carry: {name[:40]!r}")
        lower = name.lower()
        if lower == b"content-length":
            length = int(value)
        elif lower == b"transfer-encoding":
            chunked = value.lower() == b"chunked"
        lines.append(name + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n", length, chunked


def _write(
    connection: _Connection,
    head: bytes,
    stream: Any,
    length: int | None,
    chunked: bool,
    timeout: float | None,
) -> None:
    channel = connection.channel
    try:
        if isinstance(stream, httpx.ByteStream) and not chunked:
            body = b"".join(stream)
            if length is not None and len(body) != length:
                raise httpx.LocalProtocolError("the body is not as long as its Content-Length")
            if len(body) <= _SMALL_BODY:
                netguard.send(channel, head + body, timeout)
            else:
                netguard.send(channel, head, timeout)
                netguard.send(channel, body, timeout)
            return
        netguard.send(channel, head, timeout)
        sent = 0
        for piece in stream:
            if not piece:
                continue
            sent += len(piece)
            if chunked:
                netguard.send(channel, b"%x\r\n" % len(piece) + piece + b"\r\n", timeout)
            else:
                if length is not None and sent > length:
                    raise httpx.LocalProtocolError("Too much data for declared Content-Length")
                netguard.send(channel, piece, timeout)
        if chunked:
            netguard.send(channel, b"0\r\n\r\n", timeout)
        elif length is not None and sent != length:
            raise httpx.LocalProtocolError("Too little data for declared Content-Length")
    except TimeoutError as exc:
        raise httpx.WriteTimeout(str(exc) or "timed out") from exc
    except OSError as exc:
        raise httpx.WriteError(str(exc) or repr(exc)) from exc


def _begin(response: _Response) -> None:
    """Read the status line and the headers (1xx answers skipped)."""
    try:
        response.begin()
    except http.client.RemoteDisconnected as exc:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.") from exc
    except (http.client.HTTPException, ValueError) as exc:
        raise httpx.RemoteProtocolError(f"not an HTTP/1.1 response: {exc!r}") from exc


def _unbreak(line: bytes, what: str) -> bytes:
    """A line of a head as read, its line break (CRLF, or LF alone) taken off; a head cut short is an error."""
    if len(line) > _MAX_LINE:
        raise http.client.LineTooLong(what)
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    raise http.client.IncompleteRead(line)  # the connection ended inside the head


class _HeadBound:
    """The lines and bytes of one answer's heads so far, against http.client's count and max_response_head_bytes."""

    def __init__(self) -> None:
        self.lines = 0
        self.bytes = 0

    def count(self, line: bytes) -> None:
        self.lines += 1
        self.bytes += len(line)
        if self.lines > _MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {_MAX_HEADERS} header lines")
        if self.bytes > DEFAULT_LIMITS.max_response_head_bytes:
            raise http.client.HTTPException(
                f"a response head of more than {DEFAULT_LIMITS.max_response_head_bytes} bytes (max_response_head_bytes)"
            )


def _status_line(reader: Any, head: _HeadBound) -> tuple[int, int, str]:
    """HTTP/1.x, a status of three digits, a reason of visible characters: (10 or 11, status, reason)."""
    raw = reader.readline(_MAX_LINE + 1)
    if not raw:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    head.count(raw)
    match = _STATUS_LINE.fullmatch(_unbreak(raw, "status line"))
    if match is None:
        raise http.client.BadStatusLine(raw[:80].decode("latin-1"))
    return 10 + int(match[1]), int(match[2]), (match[3] or b"").decode("latin-1").strip()


def _early_answer(connection: _Connection, method: str, failed: httpx.WriteError) -> _Response:
    """The answer a server sent before it stopped reading the request's body and closed (a 413, a 401), as
    httpcore returned it; the write's error if there is none. The connection is not used again."""
    response = _Response(connection, method=method)  # type: ignore[arg-type]
    try:
        _begin(response)
    except httpx.TransportError:
        raise failed  # noqa: B904 (the write's failure is the error; the read's is its context)
    response.will_close = True
    return response


def _header_lines(reader: Any, head: _HeadBound) -> list[bytes]:
    """The lines of a head (or of a chunked body's trailer) up to the blank one, within `head`'s bounds."""
    lines: list[bytes] = []
    while True:
        raw = reader.readline(_MAX_LINE + 1)
        line = _unbreak(raw, "header line")
        if not line:
            return lines
        head.count(raw)
        lines.append(line)


def _fields(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """(name, value) pairs: a name a token, a value of visible characters, spaces and tabs; an obsolete folded
    line is part of the field before (RFC 9112 5.2)."""
    fields: list[tuple[bytes, bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + b" " + line.strip(b" \t"))
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise http.client.HTTPException(f"malformed header line {line[:80]!r}")
        fields.append((name, value))
    for index, (name, value) in enumerate(fields):
        value = value.strip(b" \t")
        if not _FIELD_VALUE.fullmatch(value):
            raise http.client.HTTPException(f"a control character in the value of {name[:40]!r}")
        fields[index] = (name, value)
    return fields


def _complete(response: _Response) -> bool:
    """The response was read to its end (http.client leaves a body of known length open after its last byte)."""
    return response.fp is None or (not response.chunked and response.length == 0)
