"""Plain HTTP(S) downloads (chart repositories): streamed, capped, retried, and checked while they stream.

Basic-auth credentials go to the origin they are bound to only, never after a redirect to another origin; every
redirect is checked before it is followed. See docs/collector.md.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Generator
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx

from mirror.credentials import BoundCredentials, ChartCredentials, url_origin
from mirror.egress import EgressPolicy, redirect_target
from mirror.errors import DigestMismatchError, RegistryHTTPError, SlowTransferError
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.netguard import Pace, paced
from mirror.netguard import sleep as cancellable_sleep
from mirror.proxy import ProxyServer, ProxySettings, network_transport
from mirror.registry.auth import basic_header
from mirror.registry.client import tls_context
from mirror.registry.retry import Retryable, retry_answer, retryable_failure, with_retries


def _host(url: str) -> str:
    return urlsplit(url).netloc


class _OriginBasicAuth(httpx.Auth):
    """Basic auth on the first request of a fetch, when it goes to the origin the credentials are bound to."""

    def __init__(self, credentials: BoundCredentials) -> None:
        self._credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if url_origin(str(request.url)) in self._credentials.origins:
            request.headers["Authorization"] = basic_header(self._credentials)
        yield request


class HttpFetcher:
    def __init__(
        self,
        *,
        ca_file: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        log: Callable[[str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = cancellable_sleep,
        egress: EgressPolicy | None = None,
        credentials: ChartCredentials | None = None,
        proxy: ProxySettings | None = None,
    ) -> None:
        self.ca_file = ca_file
        self.proxy = proxy  # also what git is given (mirror.git.runner.Transport)
        self.egress = egress
        self._credentials = credentials
        self._limits = limits
        self._log = log
        self._sleep = sleep
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        # Made on first use: loading CA certificates costs tens of milliseconds, wasted on a run with no chart
        # repository to fetch from.
        with self._client_lock:
            if self._client is None:
                verify = tls_context(self.ca_file)
                self._client = httpx.Client(
                    verify=verify,
                    trust_env=False,
                    follow_redirects=True,
                    max_redirects=self._limits.max_redirects,
                    timeout=httpx.Timeout(self._limits.read_timeout_s, connect=self._limits.connect_timeout_s),
                    # Every socket keeps to the pace of its request and stops at cancel() (mirror.netguard).
                    transport=self._transport
                    or network_transport(self.proxy, on_proxy=self._used_proxy, verify=verify, trust_env=False),
                    event_hooks={"request": [self._record], "response": [self._check_redirect]},
                )
            return self._client

    def _used_proxy(self, server: ProxyServer) -> None:
        if self.egress is not None:
            self.egress.record(server.netloc, "proxy")

    def _record(self, request: httpx.Request) -> None:
        if self.egress is not None:
            self.egress.record(request.url.netloc.decode("ascii", "replace"), plain_http=request.url.scheme == "http")
        self._keep_authorization_on_its_origin(request)

    def _keep_authorization_on_its_origin(self, request: httpx.Request) -> None:
        """Before every request, redirects included: an Authorization header that is not the request origin's own
        is dropped (httpx keeps one across an http-to-https upgrade, and a same-origin redirect keeps it)."""
        header = request.headers.get("authorization")
        if header is None:
            return
        own = self._credentials.for_url(str(request.url)) if self._credentials is not None else None
        if own is None or header != basic_header(own):
            del request.headers["authorization"]

    def _check_redirect(self, response: httpx.Response) -> None:
        """Before httpx follows a redirect: refuse a scheme other than http(s), and what the egress policy refuses."""
        if not response.is_redirect:
            return
        current = str(response.request.url)
        followed = redirect_target(current, response.headers["location"])
        if self.egress is not None:
            self.egress.check_followed(current, followed, "redirect")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> HttpFetcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _stream(
        self,
        url: str,
        sink: Callable[[bytes], None],
        reset: Callable[[], None],
        pace: Pace,
        credentials_origin: str | None = None,
    ) -> None:
        bound = self._credentials.for_url(url) if self._credentials is not None else None
        if credentials_origin is not None and url_origin(url) != url_origin(credentials_origin):
            bound = None  # a URL another document named (an archive an index lists): only on that document's origin
        auth = _OriginBasicAuth(bound) if bound is not None else None

        def attempt() -> None:
            reset()
            try:
                with (
                    paced(pace),
                    self._http.stream("GET", url, headers={"Accept-Encoding": "identity"}, auth=auth) as response,
                ):
                    retry = retry_answer(
                        response,
                        RegistryHTTPError(f"{url}: answered {response.status_code}", status=response.status_code),
                    )
                    if retry is not None:
                        raise retry
                    if response.status_code == 404:
                        raise RegistryHTTPError(f"{url}: not found (404)", status=404)
                    if response.status_code in (401, 403):
                        raise _denied(url, response.status_code, bound is not None)
                    if response.status_code != 200:
                        raise RegistryHTTPError(f"{url}: answered {response.status_code}", status=response.status_code)
                    for chunk in response.iter_raw():
                        sink(chunk)
            except (httpx.TransportError, SlowTransferError) as exc:
                raise retryable_failure(exc, _host(url)) from exc

        def report(failure: Retryable, delay: float) -> None:
            if self._log:
                self._log(f"{failure.final.message}; retrying in {delay:.1f} s")

        with_retries(attempt, self._limits, sleep=self._sleep, on_retry=report)

    def get_bytes(self, url: str, limit: int) -> bytes:
        """A small document (an index.yaml), refused as soon as it grows past `limit`."""
        body = bytearray()

        def sink(chunk: bytes) -> None:
            body.extend(chunk)
            if len(body) > limit:
                raise DigestMismatchError(f"{url}: larger than the limit of {limit} bytes")

        self._stream(url, sink, body.clear, Pace.document(url, self._limits))
        return bytes(body)

    def download(
        self,
        url: str,
        dest: BinaryIO,
        *,
        expected_sha256: tuple[str, ...],
        max_bytes: int,
        on_bytes: Callable[[int], None],
        document: bool = False,
        credentials_origin: str | None = None,
    ) -> tuple[str, int]:
        """Stream `url` into `dest`, hashing on the way; returns (sha256 hex, size).

        With `expected_sha256`, the content must hash to one of them, or it is refused. `document`: a small
        document (an index.yaml), held to the document deadline as well as to the speed floor.
        `credentials_origin`: a URL (the chart repository) whose origin alone gets credentials: an archive its index
        names on another origin (another host, or http:// on the same one) is fetched without any.
        """
        digest, size = hashlib.sha256(), 0

        def reset() -> None:
            nonlocal digest, size
            on_bytes(-size)
            dest.seek(0)
            dest.truncate()
            digest, size = hashlib.sha256(), 0

        def sink(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            if size > max_bytes:
                raise DigestMismatchError(f"{url}: larger than the limit of {max_bytes} bytes")
            digest.update(chunk)
            dest.write(chunk)
            on_bytes(len(chunk))

        pace = Pace.document(url, self._limits) if document else Pace.stream(url, self._limits)
        self._stream(url, sink, reset, pace, credentials_origin)
        actual = digest.hexdigest()
        if expected_sha256 and actual not in expected_sha256:
            raise DigestMismatchError(
                f"{url}: sha256 {actual}, but the repository index says {' or '.join(expected_sha256)}",
                hint="the chart repository serves an archive other than the one its index describes",
            )
        return actual, size


def _denied(url: str, status: int, offered: bool) -> RegistryHTTPError:
    if offered:
        hint = "the credentials given for this origin were refused, or lack access to it"
    else:
        hint = (
            "the server asks for credentials: an entry for its host in a containers auth file, or for a chart "
            "repository MIRROR_CHARTS_USERNAME/MIRROR_CHARTS_PASSWORD (docs/collector.md, Credentials)"
        )
    return RegistryHTTPError(f"{url}: access denied ({status})", status=status, codes=("UNAUTHORIZED",), hint=hint)


_SHA256_HEX = re.compile(r"[a-f0-9]{64}")


def is_sha256_hex(value: object) -> bool:
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None
