"""The distribution API client: one instance per registry endpoint, shared by worker threads.

See docs/collector.md ("Images").
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, suppress
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

import httpx

from mirror.credentials import Credentials
from mirror.egress import EgressPolicy, redirect_target
from mirror.errors import (
    DigestMismatchError,
    IntegrityError,
    InvalidDocumentError,
    MirrorError,
    RegistryHTTPError,
    SlowTransferError,
    TransferError,
    UsageError,
)
from mirror.httptransport import read_into
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.netguard import Pace, paced
from mirror.netguard import sleep as cancellable_sleep
from mirror.oci import mediatypes as mt
from mirror.oci.digest import DigestingCounter, check_digest, is_digest, sha256_digest
from mirror.oci.document import Descriptor, bounded_json, parse_manifest
from mirror.oci.reference import DOCKER_HUB
from mirror.proxy import ProxyServer, ProxySettings, network_transport
from mirror.registry.auth import Authenticator, CredentialLookup, Scope
from mirror.registry.endpoint import Endpoint
from mirror.registry.known import ManifestStore
from mirror.registry.quota import QuotaWatch
from mirror.registry.retry import RETRY_STATUSES, Retryable, retry_answer, retry_slow, retryable_failure, with_retries

T = TypeVar("T")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Answers to a mount POST from a registry that takes no mount parameters at all (the spec says 202, an upload
# session, for one that cannot mount): push_blob then starts a plain upload.
_MOUNT_DECLINED = frozenset({400, 404, 405})

OnBytes = Callable[[int], None]
OpenSource = Callable[[], AbstractContextManager[BinaryIO]]
Body = Callable[[], bytes | Iterator[bytes]]


def _no_progress(_: int) -> None:
    pass


@dataclass(frozen=True)
class FetchedManifest:
    raw: bytes
    media_type: str | None
    digest: str


@dataclass(frozen=True)
class ManifestHead:
    digest: str
    media_type: str | None


@dataclass(frozen=True)
class StreamedUpload:
    """An upload session holding a blob's bytes, not finished: the registry shows nothing of it yet."""

    repository: str
    digest: str  # what the bytes must hash to; the session is finished under this digest
    location: httpx.URL
    sha256: str  # hex, of the bytes sent


@dataclass(frozen=True)
class PushedManifest:
    digest: str
    oci_subject: str | None  # the OCI-Subject header: the registry indexed the manifest's subject for referrers


def _header_int(response: httpx.Response, name: str) -> int | None:
    """A header's non-negative integer value, or None; ASCII digits only, since str.isdigit() also takes "²"."""
    value = response.headers.get(name, "").strip()
    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else None


def _states_media_type(raw: bytes, max_depth: int) -> bool:
    """Whether manifest bytes carry their own `mediaType` (then no Content-Type is needed to read them)."""
    try:
        return isinstance(bounded_json(raw, max_depth=max_depth).get("mediaType"), str)
    except (ValueError, AttributeError):
        return False


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def release(response: httpx.Response, limit: int) -> None:
    """Close a response whose body does not matter, reading what little is left of it first.

    The transport hands a connection back to the pool only once the response has been read to its end; closing one
    unread (even a HEAD or an empty 201) drops the connection, and the next request pays a new TCP and TLS
    handshake. A body larger than `limit` is not worth reading: that connection is dropped.
    """
    try:
        read = 0
        for chunk in response.iter_raw():
            read += len(chunk)
            if read > limit:
                break
    except (httpx.HTTPError, httpx.StreamError):
        pass  # already closed, or broken: closing is all that is left
    finally:
        response.close()


_buffers = threading.local()


def _download_buffer(size: int) -> memoryview:
    """This thread's buffer for blob downloads, allocated once. Page-aligned (an anonymous mapping): the kernel's
    copy into a buffer that malloc put 16 bytes past a 64-byte boundary ran several times slower (see verify)."""
    buffer: memoryview | None = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) != size:
        buffer = _buffers.buffer = memoryview(mmap.mmap(-1, size))
    return buffer


_tls_contexts: dict[str | None, ssl.SSLContext] = {}
_tls_lock = threading.Lock()


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The process's one TLS context for `ca_file` (None: the roots httpx itself would load).

    Loading CA certificates takes tens of milliseconds; every client of a run shares the context instead.
    """
    with _tls_lock:
        context = _tls_contexts.get(ca_file or None)
        if context is None:
            try:
                if ca_file:
                    context = ssl.create_default_context(cafile=ca_file)
                else:
                    context = httpx.create_ssl_context(trust_env=False)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"{ca_file}: cannot load CA certificates: {exc}") from exc
            _tls_contexts[ca_file or None] = context
        return context


class _ResponseCookies(httpx.Cookies):
    """httpx's cookie jar, skipped for a response that sets no cookie.

    httpx wraps every response and its request for http.cookiejar, Set-Cookie or not: 4-7 % of an import's CPU
    (about 60 us a request), for registries that set no cookie. One that does (a load balancer's sticky session)
    still has it sent back.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class RegistryClient:
    def __init__(
        self,
        endpoint: Endpoint,
        credentials: Credentials | CredentialLookup | None = None,
        limits: Limits = DEFAULT_LIMITS,
        *,
        max_connections: int = 16,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = cancellable_sleep,
        log: Callable[[str], None] | None = None,
        egress: EgressPolicy | None = None,
        proxy: ProxySettings | None = None,
        manifests: ManifestStore | None = None,
    ) -> None:
        """proxy: the upstream proxies (mirror.proxy), connected side only; None: every host directly.
        manifests: where collect keeps manifests by digest; with it, tags on a registry that counts pulls are
        resolved with HEAD first."""
        self.endpoint = endpoint
        self._manifests = manifests
        self._log = log
        self._egress = egress
        self._limits = limits
        self._sleep = sleep
        verify: ssl.SSLContext | Callable[[], ssl.SSLContext]
        ca_file = endpoint.ca_file
        if endpoint.scheme == "http" and proxy is None and (ca_file is None or os.access(ca_file, os.R_OK)):
            # TLS only if the registry redirects to https: loading the CA certificates (tens of milliseconds, a
            # tenth of a nothing-changed night) waits until then. A CA file that cannot be read is refused now,
            # before anything is written.
            verify = lambda: tls_context(ca_file)  # noqa: E731
        else:
            verify = tls_context(endpoint.ca_file)  # a CA file that cannot be loaded is refused before any request
        pool_limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.Client(  # its own transport is never made (`transport` below), so it needs no `verify`
            trust_env=False,  # proxies come from mirror.proxy only, never from the environment (threat 29)
            follow_redirects=False,
            timeout=httpx.Timeout(limits.read_timeout_s, connect=limits.connect_timeout_s),
            limits=pool_limits,
            # Every socket keeps to the pace of its request and stops at cancel() (mirror.netguard).
            transport=transport
            or network_transport(proxy, on_proxy=self._used_proxy, verify=verify, trust_env=False, limits=pool_limits),
        )
        # httpx.Client has no setting for its jar's type, and its `cookies` setter makes a plain one.
        self._http._cookies = _ResponseCookies()
        # The registry's own requests skip httpx.Client.build_request/send (a fifth of a small request's CPU: URL
        # merging, the auth and redirect generators, hooks): _send makes the request as the client would, with its
        # default headers, timeouts and cookie jar, and hands it to the client's transport. Token fetches (auth.py)
        # still go through the client.
        self._transport = self._http._transport
        self._timeouts = {"timeout": self._http.timeout.as_dict()}
        self._auth = Authenticator(endpoint, credentials, self._http, limits, egress)
        self._origin = _origin(httpx.URL(endpoint.base_url))
        self.quota = QuotaWatch(
            endpoint.host, limits.min_ratelimit_remaining, endpoint=endpoint.url if endpoint.configured else None
        )

    def _used_proxy(self, server: ProxyServer) -> None:
        if self._egress is not None:  # the officer's list of hosts contacted names the proxy too
            self._egress.record(server.netloc, "proxy")

    # -- lifecycle -----------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def token_requests(self) -> int:
        return self._auth.token_requests

    @property
    def anticipated_token_failures(self) -> int:
        """Token requests made before a new scope's first request that failed (the request then met its 401)."""
        return self._auth.anticipated_token_failures

    # -- access --------------------------------------------------------------------------------------------

    def check_push_access(self, repository: str) -> None:
        """That the registry answers, takes the credentials, and lets them push to `repository`; writes nothing.

        GET /v2/ (reached, authenticated), then an upload started in `repository` and cancelled at once: the one
        check of push rights every auth scheme answers (a token service may grant less than asked, silently).
        """

        def registry_answers() -> None:
            response = self._send("GET", f"{self.endpoint.base_url}/v2/", ())
            if response.status_code != 200:
                raise self._error(response, "GET /v2/")
            self._release(response)

        def push_allowed() -> None:
            location = self._start_upload(repository)
            self._cancel_upload(repository, location)

        self._retrying(registry_answers, self._document(f"registry check of {self.endpoint.netloc}"))
        self._retrying(push_allowed, self._document(f"push check of {self.endpoint.host}/{repository}"))

    # -- plumbing ------------------------------------------------------------------------------------------

    def _url(self, repository: str, kind: str, reference: str = "") -> str:
        return f"{self.endpoint.base_url}/v2/{self.endpoint.repository(repository)}/{kind}/{reference}"

    def _scope(self, repository: str, actions: str) -> str:
        return f"repository:{self.endpoint.repository(repository)}:{actions}"

    def _send(
        self,
        method: str,
        url: str | httpx.URL,
        scope: Scope,
        *,
        headers: dict[str, str] | None = None,
        body: Body | None = None,
    ) -> httpx.Response:
        """Send one request, answering auth challenges and following redirects; returns a streaming response.

        Raises Retryable for statuses and transport failures worth another attempt.
        """
        target = httpx.URL(url)
        if self._egress is not None:
            self._egress.record(self.endpoint.netloc, plain_http=self.endpoint.scheme == "http")
        authorization = self._auth.first_header(scope)
        auth_answered = False
        for _ in range(self._limits.max_redirects + 1):
            request_headers = dict(headers or {})
            same_origin = _origin(target) == self._origin
            if authorization and same_origin:
                request_headers["Authorization"] = authorization
            try:
                response = self._exchange(method, target, request_headers, body() if body is not None else None)
            except httpx.TransportError as exc:
                hint = "check the host, port and scheme (plainHTTP), and that the registry is running"
                raise retryable_failure(exc, f"registry {target.netloc.decode()}", hint=hint) from exc
            self.quota.observe(response.headers)  # every answer: a 401, a redirect and a 429 state it too

            if response.status_code == 401 and same_origin:
                self._release(response)  # only the challenge header matters
                if auth_answered:
                    raise self._auth.refused(response)
                authorization = self._auth.answer(response, scope, request_headers.get("Authorization"))
                auth_answered = True
                continue
            if response.status_code in _REDIRECTS and "location" in response.headers:
                self._release(response)
                # Followed without Authorization unless it stays on the registry's origin (see above); never to a
                # scheme other than http(s), nor, under the egress policy, into an internal address.
                followed = redirect_target(str(target), response.headers["location"])
                if self._egress is not None:
                    self._egress.check_followed(str(target), followed, "redirect")
                target = httpx.URL(followed)
                if response.status_code == 303:
                    method, body = "GET", None
                continue
            if response.status_code in RETRY_STATUSES:
                retry = retry_answer(response, self._error(response, f"{method} {target.path}"))
                assert retry is not None
                raise retry
            return response
        raise TransferError(f"too many redirects from {self.endpoint.host}")

    def _exchange(
        self, method: str, url: httpx.URL, headers: dict[str, str], content: bytes | Iterator[bytes] | None
    ) -> httpx.Response:
        """One request as httpx.Client.send(stream=True) would send it, without following anything."""
        merged = self._http.headers.copy()
        merged.update(headers)
        request = httpx.Request(method, url, headers=merged, content=content, extensions=self._timeouts)
        cookies = self._http.cookies
        if cookies:  # a registry that set one (a load balancer's sticky session) has it sent back
            cookies.set_cookie_header(request)
        response = self._transport.handle_request(request)
        response.request = request
        cookies.extract_cookies(response)
        return response

    def _read_page(self, response: httpx.Response, where: str) -> bytes:
        """A JSON answer (a tag list, catalog or referrers page) read whole, closed, and no larger than a manifest."""
        limit = self._limits.max_manifest_bytes
        with closing(response):
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise DigestMismatchError(f"{where}: an answer larger than {limit} bytes (max_manifest_bytes)")
        return bytes(body)

    def _release(self, response: httpx.Response) -> None:
        release(response, self._limits.max_error_body_bytes)

    def _retrying(self, attempt: Callable[[], T], pace: Pace) -> T:
        """Run `attempt` with retries; each attempt (request and body) is held to `pace` on its own."""

        def timed() -> T:
            try:
                with paced(pace):
                    return attempt()
            except SlowTransferError as exc:
                raise retry_slow(exc) from exc

        return with_retries(timed, self._limits, sleep=self._sleep, on_retry=self._report_retry)

    def _document(self, what: str) -> Pace:
        return Pace.document(what + self._via(), self._limits)

    def _stream(self, what: str) -> Pace:
        return Pace.stream(what + self._via(), self._limits)

    def _via(self) -> str:
        # A proxy endpoint is named too: it is the host that was slow.
        return f" (from {self.endpoint.netloc})" if self.endpoint.netloc != self.endpoint.host else ""

    def _report_retry(self, failure: Retryable, delay: float) -> None:
        if self._log is not None:
            self._log(f"{failure.final.message}; retrying in {delay:.1f} s")

    def _error(self, response: httpx.Response, what: str) -> RegistryHTTPError:
        """Build the error for a failed response, reading a bounded part of its body."""
        body = b""
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self._limits.max_error_body_bytes:
                    break
        except (httpx.HTTPError, httpx.StreamError):
            pass  # a HEAD response, or one already closed: the status alone says enough
        finally:
            response.close()
        codes: tuple[str, ...] = ()
        detail = ""
        try:
            errors = bounded_json(body, max_depth=self._limits.max_json_depth).get("errors") or []
            codes = tuple(str(e.get("code", "")) for e in errors if isinstance(e, dict))
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        except (ValueError, AttributeError):
            pass
        text = f"{self.endpoint.host}: {what} answered {response.status_code}"
        if detail:
            text += f" ({detail})"
        return RegistryHTTPError(text, status=response.status_code, codes=codes)

    # -- manifests -----------------------------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str, size: int | None = None) -> FetchedManifest:
        """A manifest's exact bytes, checked against the digest asked for or the one the registry states.

        With `size` (from the referring descriptor), the size is checked first, while the bytes stream. With a
        manifest store (collect), a tag is resolved with HEAD first where pulls are counted, and a digest held
        locally is not fetched: pull quotas count manifest GETs (docs/collector.md, "Pull quotas"); what was
        fetched is kept there.
        """
        if self._manifests is None:
            return self._fetch_manifest(repository, reference, size)
        media_type = None
        if not is_digest(reference) and self._counts_pulls():
            head = self.head_manifest(repository, reference)
            if head is not None:
                reference, media_type = head.digest, head.media_type
        if is_digest(reference):
            known = self._known_manifest(reference, size, media_type)
            if known is not None:
                return known
        fetched = self._fetch_manifest(repository, reference, size)
        self._manifests.put(fetched.digest, fetched.raw)
        return fetched

    def _counts_pulls(self) -> bool:
        """Whether a tag is resolved with a HEAD first: where manifest GETs may be counted (Docker Hub; any other
        registry until one of its manifest GETs is answered without a quota). Elsewhere a GET by tag is one request
        either way, where a HEAD costs a second one for every manifest not held locally (docs/collector.md, "Pull
        quotas").
        """
        return self.endpoint.host == DOCKER_HUB or self.quota.counts_pulls

    def _known_manifest(self, digest: str, size: int | None, media_type: str | None) -> FetchedManifest | None:
        assert self._manifests is not None
        limit = self._limits.max_manifest_bytes if size is None else min(size, self._limits.max_manifest_bytes)
        raw = self._manifests.get(digest, limit)
        if raw is None or sha256_digest(raw) != digest or (size is not None and len(raw) != size):
            return None  # absent, or not these bytes: fetched instead
        if media_type is None and not _states_media_type(raw, self._limits.max_json_depth):
            return None  # only a GET's Content-Type would say what it is
        return FetchedManifest(raw, media_type, digest)

    def _fetch_manifest(self, repository: str, reference: str, size: int | None = None) -> FetchedManifest:
        limit = self._limits.max_manifest_bytes if size is None else min(size, self._limits.max_manifest_bytes)
        url = self._url(repository, "manifests", reference)
        scope = (self._scope(repository, "pull"),)
        where = (
            f"{self.endpoint.host}/{repository}:{reference}"
            if not is_digest(reference)
            else (f"{self.endpoint.host}/{repository}@{reference}")
        )

        def attempt() -> FetchedManifest:
            self.quota.before_pull(f"manifest {where}")  # each attempt is a pull to a registry that counts them
            response = self._send("GET", url, scope, headers={"Accept": mt.ACCEPT, "Accept-Encoding": "identity"})
            if response.status_code != 200:
                raise self._error(response, f"manifest {where}")
            self.quota.get_answered(response.headers)
            with closing(response):
                declared = _header_int(response, "content-length")
                if declared is not None and declared > limit:
                    raise DigestMismatchError(f"{where}: manifest of {declared} bytes, more than {limit}")
                raw = bytearray()
                try:
                    for chunk in response.iter_raw():
                        raw += chunk
                        if len(raw) > limit:
                            raise DigestMismatchError(f"{where}: manifest larger than {limit} bytes")
                except httpx.TransportError as exc:
                    raise Retryable(TransferError(f"{where}: manifest transfer failed: {exc!r}")) from exc
            data = bytes(raw)
            if size is not None and len(data) != size:
                raise DigestMismatchError(f"{where}: manifest of {len(data)} bytes, its descriptor says {size}")
            actual = sha256_digest(data)
            stated = response.headers.get("docker-content-digest")
            expected = reference if is_digest(reference) else stated
            if expected is not None and expected != actual:
                raise DigestMismatchError(
                    f"{where}: manifest hashes to {actual}, but the registry "
                    f"{'was asked for' if is_digest(reference) else 'states'} {expected}"
                )
            content_type = response.headers.get("content-type", "").split(";")[0].strip() or None
            return FetchedManifest(data, content_type, actual)

        return self._retrying(attempt, self._document(f"manifest {where}"))

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag or digest currently names on the registry, or None when it does not exist."""
        url = self._url(repository, "manifests", reference)
        scope = (self._scope(repository, "pull"),)

        def attempt() -> str | None:
            self.quota.counted_head()
            response = self._send("HEAD", url, scope, headers={"Accept": mt.ACCEPT})
            self._release(response)
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise self._error(response, f"HEAD manifest {repository}:{reference}")
            stated = response.headers.get("docker-content-digest")
            if stated is None:
                return self.get_manifest(repository, reference).digest
            if not is_digest(stated) or (is_digest(reference) and stated != reference):
                raise DigestMismatchError(
                    f"{self.endpoint.host}/{repository}:{reference}: the registry states digest {stated!r}"
                )
            return stated

        what = f"manifest {self.endpoint.host}/{repository}:{reference}"
        return self._retrying(attempt, self._document(what))

    def head_manifest(self, repository: str, reference: str) -> ManifestHead | None:
        """What a tag (or digest) names, from a HEAD's Docker-Content-Digest: pull quotas count GETs only.

        None when the registry states no digest on HEAD, or does not take HEAD for manifests (405, 501): the
        caller GETs instead. A manifest the registry does not have raises RegistryHTTPError (404) as GET does.
        """
        url = self._url(repository, "manifests", reference)
        scope = (self._scope(repository, "pull"),)
        where = f"{self.endpoint.host}/{repository}{'@' if is_digest(reference) else ':'}{reference}"

        def attempt() -> ManifestHead | None:
            self.quota.counted_head()
            response = self._send("HEAD", url, scope, headers={"Accept": mt.ACCEPT})
            if response.status_code in (405, 501):
                self._release(response)
                return None
            if response.status_code != 200:
                raise self._error(response, f"manifest {where}")
            self._release(response)
            stated = response.headers.get("docker-content-digest")
            if stated is None:
                return None
            if not is_digest(stated) or (is_digest(reference) and stated != reference):
                raise DigestMismatchError(f"{where}: the registry states digest {stated!r:.100}")
            content_type = response.headers.get("content-type", "").split(";")[0].strip() or None
            return ManifestHead(stated, content_type)

        return self._retrying(attempt, self._document(f"manifest {where}"))

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> PushedManifest:
        """PUT a manifest's exact bytes under a digest or tag; says whether the registry indexed its `subject`."""
        url = self._url(repository, "manifests", reference)
        scope = (self._scope(repository, "pull,push"),)
        expected = sha256_digest(raw)

        def attempt() -> PushedManifest:
            response = self._send("PUT", url, scope, headers={"Content-Type": media_type}, body=lambda: raw)
            if response.status_code not in (200, 201):
                raise self._error(response, f"PUT manifest {repository}:{reference}")
            self._release(response)
            stated = response.headers.get("docker-content-digest")
            if stated is not None and stated != expected:
                raise DigestMismatchError(
                    f"{self.endpoint.host}/{repository}: stored manifest as {stated}, but its bytes hash to {expected}"
                )
            return PushedManifest(expected, response.headers.get("oci-subject") or None)

        return self._retrying(attempt, self._document(f"manifest upload {self.endpoint.host}/{repository}:{reference}"))

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """DELETE a manifest by digest (the tags on it go with it): True once deleted, False when the registry does
        not have it. Anything else raises RegistryHTTPError: 405 UNSUPPORTED is a registry whose deletes are off.

        Asks for the `delete` action, which distribution's token auth grants apart from push.
        """
        url = self._url(repository, "manifests", check_digest(digest, "manifest digest"))
        scope = (self._scope(repository, "delete"),)

        def attempt() -> bool:
            response = self._send("DELETE", url, scope)
            if response.status_code not in (200, 202, 404):
                raise self._error(response, f"DELETE manifest {repository}@{digest}")
            self._release(response)
            return response.status_code != 404

        return self._retrying(attempt, self._document(f"manifest delete {self.endpoint.host}/{repository}@{digest}"))

    def referrers(
        self, repository: str, digest: str, artifact_type: str | None = None, *, max_count: int | None = None
    ) -> list[Descriptor] | None:
        """The manifests whose `subject` is `digest`, as the OCI 1.1 referrers API lists them; None when the
        registry has no such API (distribution 2.8 answers 404: an implementation must never answer 404).

        `artifact_type` is sent as the API's filter, and applied here too when the registry says it did not
        (no `OCI-Filters-Applied: artifactType`). The answer must be an OCI image index; pages are followed
        like a tag list's, bounded alike, and no further once they list more than `max_count` manifests
        (InvalidDocumentError): a list the caller refuses anyway is not read to its last page.
        """
        params = {"artifactType": artifact_type} if artifact_type else {}
        url: str | None = str(
            httpx.URL(self._url(repository, "referrers", check_digest(digest, "digest")), params=params)
        )
        scope = (self._scope(repository, "pull"),)
        where = f"{self.endpoint.host}/{repository} referrers of {digest}"
        found: list[Descriptor] = []
        read: set[str] = set()
        while url is not None:
            if url in read or len(read) >= self._limits.max_tag_pages:
                raise TransferError(f"{where}: the list loops or has more than {self._limits.max_tag_pages} pages")
            read.add(url)

            def attempt(page: str = url, first: bool = len(read) == 1) -> tuple[list[Descriptor], str | None] | None:
                response = self._send("GET", page, scope, headers={"Accept": mt.OCI_INDEX})
                if response.status_code == 404 and first:
                    self._release(response)
                    return None
                if response.status_code != 200:
                    raise self._error(response, where)
                body = self._read_page(response, where)
                index = parse_manifest(body, declared_type=mt.OCI_INDEX, where=where)
                if index.media_type != mt.OCI_INDEX:
                    raise InvalidDocumentError(f"{where}: answered a {index.media_type}, not an OCI image index")
                listed = list(index.manifests)
                if artifact_type and "artifactType" not in response.headers.get("oci-filters-applied", ""):
                    listed = [d for d in listed if d.artifact_type == artifact_type]
                return listed, self._next_page(page, response.links.get("next", {}).get("url"))

            answer = self._retrying(attempt, self._document(where))
            if answer is None:
                return None
            page_found, url = answer
            found += page_found
            if max_count is not None and len(found) > max_count:
                raise InvalidDocumentError(
                    f"{where}: more than {max_count} manifests are attached to it (limit max_attached_per_subject)"
                )
        return found

    def iter_tags(self, repository: str) -> Iterator[str]:
        """The tags of a repository, page by page, following `Link: <…>; rel="next"`; one page in memory at a time.

        Bounded in bytes per page, in pages and in tags; a `Link` back to a page already read (a loop) stops
        the listing with an error instead of reading it again.
        """
        url: str | None = self._url(repository, "tags", "list")
        scope = (self._scope(repository, "pull"),)
        where = f"{self.endpoint.host}/{repository}"
        read: set[str] = set()
        count = 0
        while url is not None:
            if url in read:
                raise TransferError(f"{where}: the tag list links back to a page already read ({url})")
            if len(read) >= self._limits.max_tag_pages:
                raise TransferError(
                    f"{where}: more than {self._limits.max_tag_pages} pages of tags (limit max_tag_pages)"
                )
            read.add(url)

            def attempt(page: str = url) -> tuple[list[str], str | None]:
                response = self._send("GET", page, scope, headers={"Accept": "application/json"})
                if response.status_code != 200:
                    raise self._error(response, f"tags of {repository}")
                body = self._read_page(response, where)
                try:
                    names = bounded_json(body, max_depth=self._limits.max_json_depth).get("tags") or []
                    if not isinstance(names, list):  # a string would be read as its characters, each a "tag"
                        raise ValueError("tags is not a list")
                except (ValueError, AttributeError) as exc:
                    raise RegistryHTTPError(f"{where}: unreadable tag list", status=200) from exc
                following = response.links.get("next", {}).get("url")
                return [t for t in names if isinstance(t, str)], self._next_page(page, following)

            page_tags, url = self._retrying(attempt, self._document(f"tag list of {where}"))
            count += len(page_tags)
            if count > self._limits.max_tags:
                raise TransferError(f"{where}: more than {self._limits.max_tags} tags (limit max_tags)")
            yield from page_tags

    def iter_repositories(self, after: str = "") -> Iterator[str] | None:
        """The registry's repositories (`GET /v2/_catalog`), page by page; None when the registry does not list
        them to these credentials (401, 403, 404 or 405 on the first page: many keep the catalog to administrators).
        `after`: start after this name (`last=`; the catalog is in lexical order), a hint a registry may ignore.

        Bounded as a tag list is: bytes per page, `Limits.max_tag_pages` pages and `Limits.max_repositories`
        names; a `Link` back to a page already read stops the listing with an error.
        """
        where = f"{self.endpoint.host} repository catalog"
        read: set[str] = set()
        params = {"n": "1000", **({"last": after} if after else {})}
        url = str(httpx.URL(f"{self.endpoint.base_url}/v2/_catalog", params=params))
        first = self._catalog_page(url, read, where, first=True)
        return None if first is None else self._catalog_rest(first, read, where)

    def _catalog_rest(self, first: tuple[list[str], str | None], read: set[str], where: str) -> Iterator[str]:
        names, url = first
        count = 0
        while True:
            count += len(names)
            if count > self._limits.max_repositories:
                raise TransferError(f"{where}: more than {self._limits.max_repositories} (limit max_repositories)")
            yield from names
            if url is None:
                return
            page = self._catalog_page(url, read, where)
            assert page is not None  # only the first page may answer that there is no catalog
            names, url = page

    def _catalog_page(
        self, url: str, read: set[str], where: str, *, first: bool = False
    ) -> tuple[list[str], str | None] | None:
        if url in read:
            raise TransferError(f"{where}: the list links back to a page already read ({url})")
        if len(read) >= self._limits.max_tag_pages:
            raise TransferError(f"{where}: more than {self._limits.max_tag_pages} pages (limit max_tag_pages)")
        read.add(url)

        def attempt() -> tuple[list[str], str | None] | None:
            response = self._send("GET", url, ("registry:catalog:*",), headers={"Accept": "application/json"})
            if first and response.status_code in (401, 403, 404, 405):
                self._release(response)
                return None
            if response.status_code != 200:
                raise self._error(response, where)
            body = self._read_page(response, where)
            try:
                names = bounded_json(body, max_depth=self._limits.max_json_depth).get("repositories") or []
            except (ValueError, AttributeError) as exc:
                raise RegistryHTTPError(f"{where}: unreadable repository list", status=200) from exc
            following = self._next_page(url, response.links.get("next", {}).get("url"))
            return [n for n in names if isinstance(n, str)], following

        try:
            return self._retrying(attempt, self._document(where))
        except RegistryHTTPError as exc:
            if first and exc.status in (401, 403):  # the token service or the registry refused the catalog scope
                return None
            raise

    def _next_page(self, page: str, link: str | None) -> str | None:
        """The page a `Link: rel="next"` names, checked like a redirect: the registry chose that URL, not the user.

        http(s) only; under the egress policy, another host at an internal address is refused and the host is
        recorded. Authorization still goes only to the registry's own origin (`_send`).
        """
        if not link:
            return None
        following = redirect_target(page, link)
        if self._egress is not None:
            self._egress.check_followed(page, following, "tag list link")
        return following

    # -- blobs ---------------------------------------------------------------------------------------------

    def blob_size(self, repository: str, digest: str) -> int | None:
        """The size of a blob the repository holds, or None when it does not hold it."""
        url = self._url(repository, "blobs", check_digest(digest, "blob digest"))
        scope = (self._scope(repository, "pull"),)

        def attempt() -> int | None:
            response = self._send("HEAD", url, scope)
            self._release(response)
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise self._error(response, f"HEAD blob {repository}@{digest}")
            return _header_int(response, "content-length")

        what = f"blob {self.endpoint.host}/{repository}@{digest}"
        return self._retrying(attempt, self._document(what))

    def download_blob(
        self, repository: str, digest: str, size: int, dest: BinaryIO, on_bytes: OnBytes = _no_progress
    ) -> None:
        """Stream a blob into `dest` (an empty, seekable file), resuming with Range after a broken transfer."""
        url = self._url(repository, "blobs", check_digest(digest, "blob digest"))
        scope = (self._scope(repository, "pull"),)
        counter = DigestingCounter(digest, size, f"{self.endpoint.host}/{repository}@{digest}")

        def attempt() -> None:
            # identity: a CDN's Content-Encoding must not be undone before the digest is checked.
            headers = {"Accept-Encoding": "identity"}
            if 0 < counter.size < size:
                headers["Range"] = f"bytes={counter.size}-"
            response = self._send("GET", url, scope, headers=headers)
            if response.status_code not in (200, 206):
                raise self._error(response, f"blob {repository}@{digest}")
            with closing(response):
                if response.status_code == 200 and counter.size:
                    dest.seek(0)
                    dest.truncate()
                    on_bytes(-counter.size)
                    counter.reset()
                elif response.status_code == 206 and not response.headers.get("content-range", "").startswith(
                    f"bytes {counter.size}-"
                ):
                    raise DigestMismatchError(f"{counter.what}: the registry resumed at the wrong offset")
                length = _header_int(response, "content-length")
                if length is not None and length != size - counter.size:
                    raise DigestMismatchError(
                        f"{counter.what}: the registry announces {length + counter.size} bytes, "
                        f"the descriptor says {size}"
                    )
                # Read into this thread's buffer, no further than one byte past the size: a body longer than
                # its descriptor is caught at that byte, never written.
                buffer = _download_buffer(self._limits.copy_chunk_bytes)
                try:
                    for piece in read_into(response, buffer[: size - counter.size + 1]):
                        counter.update(piece)
                        dest.write(piece)
                        on_bytes(len(piece))
                except httpx.TransportError as exc:
                    raise Retryable(TransferError(f"{counter.what}: transfer broke off: {exc!r}")) from exc
            if counter.size < size:
                raise Retryable(TransferError(f"{counter.what}: transfer ended after {counter.size} of {size} bytes"))

        self._retrying(attempt, self._stream(f"blob {counter.what}"))
        counter.verify()

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Ask the registry to link a blob from another of its repositories; False when it declines."""
        url = self._url(repository, "blobs", "uploads/")
        scope = (self._scope(repository, "pull,push"), self._scope(from_repository, "pull"))
        params = {"mount": check_digest(digest, "blob digest"), "from": self.endpoint.repository(from_repository)}

        def attempt() -> bool:
            response = self._send("POST", httpx.URL(url, params=params), scope)
            if response.status_code == 201:
                self._release(response)
                return True
            if response.status_code == 202:
                # The registry opened an upload session instead; leave it to expire.
                self._release(response)
                return False
            raise self._error(response, f"mount {digest} into {repository}")

        what = f"mount of {digest} into {self.endpoint.host}/{repository}"
        return self._retrying(attempt, self._document(what))

    def push_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        open_source: OpenSource,
        on_bytes: OnBytes = _no_progress,
        *,
        holder: str | None = None,
    ) -> bool:
        """Place a blob in `repository`: True when the registry linked it (a mount from `holder`, or, without one,
        from `repository` itself: it held the blob already), False when it was uploaded.

        The mount POST is also the upload's start: a registry that cannot mount opens an upload session (202) and
        the blob goes into it, so a blob costs one request when it is there and two when it is not, never a HEAD.
        """
        location = self.offer_blob(repository, digest, holder=holder)
        if location is None:
            return True
        self.upload_blob(repository, digest, size, open_source, on_bytes, location=location)
        return False

    def offer_blob(self, repository: str, digest: str, *, holder: str | None = None) -> httpx.URL | None:
        """Offer a blob to `repository` as a mount from `holder` (default: from `repository` itself): None when the
        registry linked it (or held it already), else the upload session it opened instead."""
        check_digest(digest, "blob digest")
        source = holder or repository
        url = self._url(repository, "blobs", "uploads/")
        # From itself: the scope of a plain upload, so the token that the upload would fetch serves both.
        scope = (self._scope(repository, "pull,push"),) + (
            () if source == repository else (self._scope(source, "pull"),)
        )
        params = {"mount": digest, "from": self.endpoint.repository(source)}
        what = f"blob {self.endpoint.host}/{repository}@{digest}"

        def offer() -> httpx.URL | None:
            response = self._send("POST", httpx.URL(url, params=params), scope)
            self._release(response)
            if response.status_code == 201:
                return None
            if response.status_code == 202 and "location" in response.headers:
                return httpx.URL(url).join(response.headers["location"])
            if response.status_code in _MOUNT_DECLINED:
                return self._start_upload(repository)  # a registry that refuses the mount parameters outright
            raise self._error(response, f"mount {digest} into {repository}")

        return self._retrying(offer, self._document(f"mount of {what}"))

    def stream_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        open_source: OpenSource,
        on_bytes: OnBytes = _no_progress,
    ) -> StreamedUpload | None:
        """Send a blob's bytes into an upload session, hashing them on the way, and leave the session unfinished:
        nothing is visible on the registry until finish_streamed. None when the registry holds the blob already.

        The caller compares `StreamedUpload.sha256` with what it expects before it finishes the session."""
        location = self.offer_blob(repository, digest)
        if location is None:
            return None
        latest = [location]
        try:
            location, sha256 = self._send_chunks(
                repository, digest, size, open_source, on_bytes, location, moved=latest.append
            )
        except Exception:  # a local file that changed size, a refused chunk: the session is of no further use
            self.abandon_streamed(StreamedUpload(repository, digest, latest[-1], ""))
            raise
        return StreamedUpload(repository, digest, location, sha256)

    def finish_streamed(self, upload: StreamedUpload) -> None:
        """Commit a streamed upload whose bytes were checked: the PUT with its digest and an empty body."""
        what = f"blob upload {self.endpoint.host}/{upload.repository}@{upload.digest}"
        self._retrying(
            lambda: self._finish_upload(upload.repository, upload.location, upload.digest, None, 0),
            self._document(what),
        )

    def abandon_streamed(self, upload: StreamedUpload) -> None:
        """Cancel an upload session that will never be finished; one the registry cannot cancel expires."""
        with suppress(MirrorError, Retryable, httpx.HTTPError):
            self._cancel_upload(upload.repository, upload.location)

    def _cancel_upload(self, repository: str, location: str | httpx.URL) -> None:
        """DELETE an upload session; one the registry cannot cancel (404, 405) or will not let these credentials
        cancel expires on its own. distribution asks for the `delete` action on any DELETE, and token services
        (Docker Hub's among them) grant pull and push only: mirror never asks for delete rights to import."""
        try:
            self._release(self._send("DELETE", location, (self._scope(repository, "pull,push"),)))
        except RegistryHTTPError as exc:
            if exc.status not in (401, 403):
                raise

    def upload_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        open_source: OpenSource,
        on_bytes: OnBytes = _no_progress,
        *,
        location: httpx.URL | None = None,
    ) -> None:
        """Upload a blob, hashing it on the way out; chunked, and resumable per chunk, above a size threshold.

        location: an upload session already open (push_blob's); a retry opens a new one."""
        check_digest(digest, "blob digest")
        if size > self._limits.monolithic_upload_max_bytes:
            self._upload_chunked(repository, digest, size, open_source, on_bytes, location)
        else:
            sent = 0
            opened = [location] if location is not None else []

            def counted(n: int) -> None:
                nonlocal sent
                sent += n
                on_bytes(n)

            def attempt() -> None:
                # A retried upload starts again from byte 0: take back what the failed attempt reported.
                counted(-sent)
                self._upload_monolithic(
                    repository, digest, size, open_source, counted, opened.pop() if opened else None
                )

            self._retrying(attempt, self._stream(f"blob upload {self.endpoint.host}/{repository}@{digest}"))

    def _start_upload(self, repository: str) -> httpx.URL:
        url = self._url(repository, "blobs", "uploads/")
        response = self._send("POST", url, (self._scope(repository, "pull,push"),))
        if response.status_code != 202 or "location" not in response.headers:
            raise self._error(response, f"start upload to {repository}")
        self._release(response)
        return httpx.URL(url).join(response.headers["location"])

    def _finish_upload(self, repository: str, location: httpx.URL, digest: str, body: Body | None, size: int) -> None:
        # Merge, never replace, the query: distribution keeps its upload state (_state) there.
        url = location.copy_merge_params({"digest": digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size if body else 0)}
        response = self._send("PUT", url, (self._scope(repository, "pull,push"),), headers=headers, body=body)
        if response.status_code != 201:
            raise self._error(response, f"finish upload of {digest} to {repository}")
        self._release(response)
        stated = response.headers.get("docker-content-digest")
        if stated is not None and stated != digest:
            raise DigestMismatchError(f"{self.endpoint.host}/{repository}: stored blob as {stated}, expected {digest}")

    def _upload_monolithic(
        self,
        repository: str,
        digest: str,
        size: int,
        open_source: OpenSource,
        on_bytes: OnBytes,
        location: httpx.URL | None = None,
    ) -> None:
        location = location or self._start_upload(repository)
        sent = 0

        def body() -> Iterator[bytes]:
            nonlocal sent
            on_bytes(-sent)
            sent = 0
            counter = DigestingCounter(digest, size, f"local content of {digest}", IntegrityError)
            with open_source() as source:
                while chunk := source.read(min(self._limits.copy_chunk_bytes, size - counter.size + 1)):
                    counter.update(chunk)
                    sent += len(chunk)
                    on_bytes(len(chunk))
                    yield chunk
            counter.verify()

        self._finish_upload(repository, location, digest, body, size)

    def _upload_chunked(
        self,
        repository: str,
        digest: str,
        size: int,
        open_source: OpenSource,
        on_bytes: OnBytes,
        opened: httpx.URL | None = None,
    ) -> None:
        what = f"blob upload {self.endpoint.host}/{repository}@{digest}"
        location: httpx.URL = opened or self._retrying(lambda: self._start_upload(repository), self._document(what))
        location, sha256 = self._send_chunks(repository, digest, size, open_source, on_bytes, location)
        if "sha256:" + sha256 != digest:
            raise IntegrityError(f"local content of {digest} hashes to sha256:{sha256}")
        self._retrying(lambda: self._finish_upload(repository, location, digest, None, 0), self._document(what))

    def _send_chunks(
        self,
        repository: str,
        digest: str,
        size: int,
        open_source: OpenSource,
        on_bytes: OnBytes,
        location: httpx.URL,
        *,
        moved: Callable[[httpx.URL], None] = lambda _: None,
    ) -> tuple[httpx.URL, str]:
        """PATCH the source into the session in resumable chunks; the session's last location and the sha256
        (hex) of the bytes sent, each hashed once however often a chunk is resent. `moved` hears of each new
        location, so a caller can cancel the session where it is when this fails."""
        what = f"blob upload {self.endpoint.host}/{repository}@{digest}"
        scope = (self._scope(repository, "pull,push"),)
        hasher = hashlib.sha256()
        hashed = 0  # bytes of the source hashed so far; a resent range is not hashed twice
        offset = 0
        with open_source() as source:

            def body(start: int, end: int) -> Iterator[bytes]:
                nonlocal hashed
                source.seek(start)
                position = start
                while position < end:
                    piece = source.read(min(self._limits.copy_chunk_bytes, end - position))
                    if not piece:
                        raise IntegrityError(f"local content of {digest} is shorter than {size} bytes")
                    if position + len(piece) > hashed:
                        hasher.update(piece[max(0, hashed - position) :])
                        hashed = position + len(piece)
                    position += len(piece)
                    yield piece

            def send_chunk() -> None:
                nonlocal location, offset
                start, end = offset, min(offset + self._limits.upload_chunk_bytes, size)
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(end - start),
                    "Content-Range": f"{start}-{end - 1}",
                }
                try:
                    response = self._send("PATCH", location, scope, headers=headers, body=lambda: body(start, end))
                except Retryable:
                    location, offset = self._upload_status(location, scope, start)
                    moved(location)
                    on_bytes(offset - start)  # the part of the broken chunk the registry kept
                    raise
                if response.status_code == 416:
                    self._release(response)
                    location, offset = self._upload_status(location, scope, start)
                    moved(location)
                    on_bytes(offset - start)
                    raise Retryable(TransferError(f"registry refused the chunk range of {digest}"))
                if response.status_code != 202 or "location" not in response.headers:
                    raise self._error(response, f"upload chunk of {digest} to {repository}")
                self._release(response)
                location = location.join(response.headers["location"])
                moved(location)
                offset = end
                on_bytes(end - start)

            while offset < size:
                self._retrying(send_chunk, self._stream(what))
            source.seek(size)
            if source.read(1):
                raise IntegrityError(f"local content of {digest} is longer than {size} bytes")
        return location, hasher.hexdigest()

    def _upload_status(self, location: httpx.URL, scope: Scope, fallback: int) -> tuple[httpx.URL, int]:
        """Ask how much of an interrupted upload the registry kept, so the next chunk starts exactly there."""
        try:
            response = self._send("GET", location, scope)
        except Retryable:
            return location, fallback
        self._release(response)
        if response.status_code != 204:
            return location, fallback
        new_location = location.join(response.headers.get("location", str(location)))
        _, _, end = response.headers.get("range", "").partition("-")
        end = end if re.fullmatch(r"[0-9]{1,18}", end) else ""
        # distribution answers "0-0" for an empty upload as well as for a one-byte one: resume from 0 then.
        # (Had it kept one byte, the final PUT is refused with DIGEST_INVALID; a wrong blob is never committed.)
        return new_location, int(end) + 1 if end and int(end) > 0 else 0
