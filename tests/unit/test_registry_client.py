"""Unit tests of the registry client against the in-process simulator: auth, redirects, retries, integrity,
resumable transfers and uploads, plus the credential lookup and the small parsers they rely on.

No test touches the network or sleeps: the client gets the simulator's MockTransport and a recording sleep.
"""

from __future__ import annotations

import base64
import email.utils
import gzip
import hashlib
import io
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from registry_sim import RegistrySim

from mirror.credentials import Credentials, credentials_from_auth_file
from mirror.errors import (
    DigestMismatchError,
    IntegrityError,
    MirrorError,
    RateLimitedError,
    RegistryHTTPError,
    TransferError,
    UnreachableError,
    UsageError,
)
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci import mediatypes as mt
from mirror.oci.digest import sha256_digest
from mirror.registry import auth as auth_module
from mirror.registry.auth import parse_challenge
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from mirror.registry.pool import _auth_file_lookup
from mirror.registry.retry import parse_retry_after

REPO = "team/app"
USER, PASSWORD = "alice", "pa55-w0rd-secret"
CREDS = Credentials(USER, PASSWORD)
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "a" * 64, "size": 2},
        "layers": [],
    },
    separators=(",", ":"),
).encode()
BLOB = bytes(range(256)) * 4 + b"tail"  # 1028 bytes, not a multiple of any chunk size used below
SMALL = Limits(copy_chunk_bytes=4)
CHUNKED = Limits(monolithic_upload_max_bytes=10, upload_chunk_bytes=7, copy_chunk_bytes=3)


# -- harness ---------------------------------------------------------------------------------------------------


@pytest.fixture
def sim() -> RegistrySim:
    return RegistrySim()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connect(sleeps: list[float]) -> Iterator[Callable[..., RegistryClient]]:
    clients: list[RegistryClient] = []

    def make(
        sim: RegistrySim,
        credentials: Credentials | None = None,
        limits: Limits = DEFAULT_LIMITS,
        endpoint: Endpoint | None = None,
    ) -> RegistryClient:
        client = RegistryClient(
            endpoint or Endpoint(sim.host, sim.scheme, sim.host),
            credentials,
            limits,
            transport=sim.transport(),
            sleep=sleeps.append,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def bearer(sim: RegistrySim, *, anonymous_pull: bool = True) -> RegistrySim:
    sim.auth = "bearer"
    sim.users = {USER: PASSWORD}
    sim.anonymous_pull = anonymous_pull
    return sim


def basic(sim: RegistrySim) -> RegistrySim:
    sim.auth = "basic"
    sim.users = {USER: PASSWORD}
    return sim


def opener(data: bytes) -> Callable[[], AbstractContextManager[BinaryIO]]:
    @contextmanager
    def open_source() -> Iterator[BinaryIO]:
        yield io.BytesIO(data)

    return open_source


def scopes(request: httpx.Request) -> list[str]:
    return request.url.params.get_list("scope")


def progress() -> tuple[list[int], Callable[[int], None]]:
    seen: list[int] = []
    return seen, seen.append


# -- bearer tokens ---------------------------------------------------------------------------------------------


def test_bearer_challenge_fetches_token_with_pull_scope_and_service(sim, connect):
    bearer(sim)
    digest = sim.add_manifest(REPO, MANIFEST, tag="v1")
    fetched = connect(sim, CREDS).get_manifest(REPO, "v1")
    assert fetched.digest == digest
    [token_request] = sim.token_requests
    assert token_request.url.host == "auth.test"
    assert token_request.url.params["service"] == "reg.test"
    assert scopes(token_request) == [f"repository:{REPO}:pull"]
    first, second = sim.registry_requests("GET", "manifests")
    assert "authorization" not in first.headers
    assert second.headers["authorization"].startswith("Bearer tok")


def test_bearer_token_is_reused_for_the_same_scope(sim, connect):
    bearer(sim)
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    client = connect(sim, CREDS)
    client.get_manifest(REPO, "v1")
    client.get_manifest(REPO, "v1")
    assert len(sim.token_requests) == 1
    assert client.token_requests == 1
    # 401, 200, then straight to 200 with the cached token.
    assert len(sim.registry_requests("GET", "manifests")) == 3


def test_bearer_push_asks_for_pull_push_scope(sim, connect):
    bearer(sim)
    data = b"layer bytes"
    connect(sim, CREDS).upload_blob(REPO, sha256_digest(data), len(data), opener(data))
    assert [scopes(r) for r in sim.token_requests] == [[f"repository:{REPO}:pull,push"]]
    assert sim.blobs[REPO][sha256_digest(data)] == data


def test_bearer_mount_sends_two_scope_parameters(sim, connect):
    bearer(sim)
    digest = sim.add_blob("team/base", BLOB)
    assert connect(sim, CREDS).mount_blob(REPO, digest, "team/base") is True
    [token_request] = sim.token_requests
    assert scopes(token_request) == [f"repository:{REPO}:pull,push", "repository:team/base:pull"]
    assert sim.blobs[REPO][digest] == BLOB


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_bearer_expired_token_is_fetched_again(sim, connect, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(auth_module, "time", clock)
    bearer(sim).token_expires_in = 300
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    client = connect(sim, CREDS)
    client.get_manifest(REPO, "v1")
    clock.now += 200
    client.get_manifest(REPO, "v1")
    assert len(sim.token_requests) == 1
    clock.now += 100  # past expires_in (and well past the renewal margin)
    client.get_manifest(REPO, "v1")
    assert len(sim.token_requests) == 2


def test_bearer_token_refused_mid_session_is_fetched_again(sim, connect):
    bearer(sim)
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    client = connect(sim, CREDS)
    client.get_manifest(REPO, "v1")
    sim.revoke_tokens()  # the registry no longer honours the cached token, though it has not expired
    client.get_manifest(REPO, "v1")
    assert len(sim.token_requests) == 2


def test_bearer_credentials_go_to_the_realm_as_basic_and_never_to_the_registry(sim, connect):
    bearer(sim)
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    connect(sim, CREDS).get_manifest(REPO, "v1")
    [token_request] = sim.token_requests
    assert token_request.headers["authorization"] == BASIC
    assert all(not r.headers.get("authorization", "").startswith("Basic") for r in sim.registry_requests())


def test_bearer_anonymous_token_without_credentials(sim, connect):
    bearer(sim)
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    connect(sim).get_manifest(REPO, "v1")
    [token_request] = sim.token_requests
    assert "authorization" not in token_request.headers


def test_bearer_credentials_are_not_sent_to_a_plain_http_realm_on_another_host(sim, connect):
    bearer(sim).token_scheme = "http"  # an https registry pointing its token realm at cleartext HTTP
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    connect(sim, CREDS).get_manifest(REPO, "v1")  # anonymous pull still works
    [token_request] = sim.token_requests
    assert token_request.url.scheme == "http"
    assert "authorization" not in token_request.headers


def test_bearer_access_token_field_is_accepted(sim, connect):
    bearer(sim).token_key = "access_token"
    sim.token_expires_in = None  # absent: the default lifetime applies
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    client = connect(sim, CREDS)
    client.get_manifest(REPO, "v1")
    client.get_manifest(REPO, "v1")
    assert len(sim.token_requests) == 1


def test_bearer_token_service_refusing_credentials_is_exit_4_with_hint(sim, connect):
    bearer(sim)
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    wrong = Credentials(USER, "not-the-password")
    with pytest.raises(RegistryHTTPError) as info:
        connect(sim, wrong).get_manifest(REPO, "v1")
    assert info.value.exit_code == 4
    assert info.value.status == 401
    assert info.value.hint
    assert "not-the-password" not in str(info.value) + info.value.hint


def test_bearer_realm_that_is_not_http_is_refused(sim, connect):
    bearer(sim).token_scheme = "file"
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    with pytest.raises(RegistryHTTPError, match="not an http"):
        connect(sim, CREDS).get_manifest(REPO, "v1")
    assert sim.token_requests == []


def test_bearer_oversized_token_answer_is_refused(sim, connect):
    bearer(sim).token_body = b'{"token": "' + b"x" * 5000 + b'"}'
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    with pytest.raises(RegistryHTTPError, match="oversized"):
        connect(sim, CREDS, Limits(max_token_response_bytes=1000)).get_manifest(REPO, "v1")


def test_bearer_deeply_nested_token_answer_is_refused_as_unreadable(sim, connect):
    bearer(sim).token_body = b"[" * 100_000 + b"]" * 100_000
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    with pytest.raises(RegistryHTTPError, match="unreadable answer") as caught:
        connect(sim, CREDS).get_manifest(REPO, "v1")
    assert caught.value.exit_code == 4


@pytest.mark.parametrize(
    "expires_in",
    [b"1" + b"0" * 400, b"1e400", b"-1e400", b"NaN", b"Infinity"],
    ids=["integer-too-large-for-a-float", "overflowing-exponent", "negative-overflow", "nan", "infinity"],
)
def test_bearer_token_answer_whose_expires_in_is_not_a_finite_number_is_refused_as_unreadable(sim, connect, expires_in):
    bearer(sim).token_body = b'{"token": "abc", "expires_in": ' + expires_in + b"}"
    sim.tokens["abc"] = {(REPO, "pull")}  # a token the registry honours: only its lifetime is wrong
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    with pytest.raises(RegistryHTTPError, match=r"unreadable answer.*expires_in") as caught:
        connect(sim, CREDS).get_manifest(REPO, "v1")
    assert caught.value.exit_code == 4


def test_bearer_token_answer_without_token_is_refused(sim, connect):
    bearer(sim).token_body = b'{"expires_in": 300}'
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    with pytest.raises(RegistryHTTPError, match="no token"):
        connect(sim, CREDS).get_manifest(REPO, "v1")


@pytest.mark.parametrize("token", ["t\u00f6ken", "tok en", "tok\r\nX-Injected: 1"], ids=["non-ascii", "space", "crlf"])
def test_bearer_token_that_is_not_a_bearer_token_is_refused_as_a_transfer_error(sim, connect, token):
    bearer(sim).token_body = json.dumps({"token": token}).encode()
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    with pytest.raises(RegistryHTTPError, match="not a valid bearer token"):
        connect(sim, CREDS).get_manifest(REPO, "v1")


def test_bearer_token_without_the_needed_access_gives_exit_4_with_hint(sim, connect):
    # Anonymous callers get pull only; the registry keeps answering 401 to a push.
    bearer(sim)
    data = b"layer"
    with pytest.raises(RegistryHTTPError) as info:
        connect(sim).upload_blob(REPO, sha256_digest(data), len(data), opener(data))
    assert info.value.exit_code == 4
    assert info.value.status == 401
    assert info.value.hint, "a refused login should tell the user where credentials come from"


# -- basic -----------------------------------------------------------------------------------------------------


def test_basic_challenge_is_answered_and_then_sent_up_front(sim, connect):
    basic(sim)
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    client = connect(sim, CREDS)
    client.get_manifest(REPO, "v1")
    client.get_manifest(REPO, "v1")
    first, second, third = sim.registry_requests("GET", "manifests")
    assert "authorization" not in first.headers
    assert second.headers["authorization"] == BASIC
    assert third.headers["authorization"] == BASIC
    assert sim.token_requests == []


def test_basic_refused_credentials_are_exit_4_with_hint_and_no_password(sim, connect):
    basic(sim)
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    wrong = Credentials(USER, "hunter2-wrong")
    with pytest.raises(RegistryHTTPError) as info:
        connect(sim, wrong).get_manifest(REPO, "v1")
    error = info.value
    assert error.exit_code == 4
    assert error.status == 401
    assert error.hint, "a refused login should tell the user where credentials come from"
    assert "hunter2-wrong" not in f"{error} {error!r} {error.hint}"
    assert "hunter2-wrong" not in repr(wrong) and "hunter2-wrong" not in str(wrong)


def test_basic_refused_credentials_are_not_retried(sim, connect, sleeps):
    basic(sim)
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    with pytest.raises(RegistryHTTPError):
        connect(sim, Credentials(USER, "wrong")).get_manifest(REPO, "v1")
    assert sleeps == []
    assert len(sim.registry_requests()) == 2


def test_basic_challenge_without_credentials_is_exit_4_with_hint(sim, connect):
    basic(sim)
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    with pytest.raises(RegistryHTTPError, match="none are configured") as info:
        connect(sim).get_manifest(REPO, "v1")
    assert info.value.exit_code == 4
    assert info.value.hint


def test_unsupported_auth_scheme_is_refused(sim, connect):
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.fail(1, 401, match=lambda r: True)
    sim.faults[0].headers = {"WWW-Authenticate": 'Negotiate realm="x"'}
    with pytest.raises(RegistryHTTPError, match="does not support"):
        connect(sim, CREDS).get_manifest(REPO, "v1")


def test_credentials_repr_and_str_never_show_the_password():
    assert PASSWORD not in repr(CREDS)
    assert PASSWORD not in str(CREDS)
    assert USER in repr(CREDS)


# -- redirects (threat 28) -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_blob_redirect_to_another_host_drops_authorization(sim, connect, scheme, status):
    (basic if scheme == "basic" else bearer)(sim)
    digest = sim.add_blob(REPO, BLOB)
    sim.redirect_blobs = (status, "https://cdn.test/blobs/{digest}?signature=abc")
    dest = io.BytesIO()
    connect(sim, CREDS).download_blob(REPO, digest, len(BLOB), dest)
    assert dest.getvalue() == BLOB
    [cdn_request] = sim.to_host("cdn.test")
    assert "authorization" not in cdn_request.headers
    assert cdn_request.url.params["signature"] == "abc"
    assert sim.registry_requests("GET", "blobs")[-1].headers["authorization"]  # the registry itself got it


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_upload_put_redirected_to_another_host_drops_authorization(sim, connect, scheme):
    (basic if scheme == "basic" else bearer)(sim)
    sim.redirect_uploads = (307, "https://cdn.test/upload?digest={digest}")
    data = b"pushed layer"
    connect(sim, CREDS).upload_blob(REPO, sha256_digest(data), len(data), opener(data))
    [cdn_request] = sim.to_host("cdn.test")
    assert cdn_request.method == "PUT"
    assert cdn_request.content == data
    assert "authorization" not in cdn_request.headers


def test_same_origin_redirect_keeps_authorization(sim, connect):
    basic(sim)
    digest = sim.add_blob(REPO, BLOB)
    sim.redirect_blobs = (307, "/same-origin/{name}/{digest}")
    dest = io.BytesIO()
    connect(sim, CREDS).download_blob(REPO, digest, len(BLOB), dest)
    assert dest.getvalue() == BLOB
    followed = sim.registry_requests()[-1]
    assert followed.url.path.startswith("/same-origin/")
    assert followed.headers["authorization"] == BASIC


def test_redirect_to_plain_http_on_the_same_host_drops_authorization(sim, connect):
    basic(sim)
    digest = sim.add_blob(REPO, BLOB)
    sim.redirect_blobs = (307, "http://reg.test/same-origin/{name}/{digest}")
    dest = io.BytesIO()
    connect(sim, CREDS).download_blob(REPO, digest, len(BLOB), dest)
    downgraded = sim.registry_requests()[-1]
    assert downgraded.url.scheme == "http"
    assert "authorization" not in downgraded.headers


def test_redirect_loop_is_a_transfer_error(sim, connect):
    digest = sim.add_blob(REPO, BLOB)
    sim.redirect_blobs = (307, "/v2/{name}/blobs/{digest}")
    with pytest.raises(TransferError, match="too many redirects"):
        connect(sim).download_blob(REPO, digest, len(BLOB), io.BytesIO())
    assert len(sim.registry_requests()) == DEFAULT_LIMITS.max_redirects + 1


# -- retries ---------------------------------------------------------------------------------------------------


def test_429_retry_after_is_honoured(sim, connect, sleeps):
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.fail(1, 429, retry_after="3")
    connect(sim).get_manifest(REPO, "v1")
    assert len(sleeps) == 1
    assert sleeps[0] >= 3


def test_a_retry_after_at_the_ceiling_is_waited_then_retried(sim, connect, sleeps):
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.fail(1, 429, retry_after=str(int(DEFAULT_LIMITS.retry_after_max_s)))
    connect(sim).get_manifest(REPO, "v1")
    assert sleeps == [DEFAULT_LIMITS.retry_after_max_s]


def test_a_retry_after_beyond_the_ceiling_is_not_waited_for_and_says_when_to_run_again(sim, connect, sleeps):
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.fail(1, 429, retry_after="86400")
    with pytest.raises(RateLimitedError) as caught:
        connect(sim).get_manifest(REPO, "v1")
    assert sleeps == []
    assert len(sim.registry_requests("GET", "manifests")) == 1
    assert caught.value.exit_code == 4
    assert "86400 s (Retry-After)" in caught.value.message and "retry_after_max_s" in caught.value.message
    assert caught.value.rate_limit["retryAfterS"] == 86400
    assert f"after {caught.value.rate_limit['retryAt']}" in (caught.value.hint or "")


def test_503_is_retried_then_succeeds(sim, connect, sleeps):
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.fail(2, 503)
    connect(sim).get_manifest(REPO, "v1")
    assert len(sleeps) == 2
    assert all(0 < s <= DEFAULT_LIMITS.backoff_max_s for s in sleeps)


def test_exhausted_retries_raise_the_final_error_naming_the_host(sim, connect, sleeps):
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.fail(100, 503)
    with pytest.raises(RegistryHTTPError) as info:
        connect(sim).get_manifest(REPO, "v1")
    assert info.value.exit_code == 4
    assert info.value.status == 503
    assert "reg.test" in str(info.value)
    assert len(sim.registry_requests()) == DEFAULT_LIMITS.max_attempts
    assert len(sleeps) == DEFAULT_LIMITS.max_attempts - 1


def test_connection_refused_is_unreachable_naming_host_and_port(connect, sleeps):
    sim = RegistrySim("reg.test:5000")
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.fail(100, error=httpx.ConnectError)
    with pytest.raises(UnreachableError) as info:
        connect(sim).get_manifest(REPO, "v1")
    assert info.value.exit_code == 4
    assert "reg.test:5000" in str(info.value)
    assert info.value.hint
    assert len(sim.requests) == DEFAULT_LIMITS.max_attempts
    assert len(sleeps) == DEFAULT_LIMITS.max_attempts - 1


def test_timeout_is_retried(sim, connect, sleeps):
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.fail(1, error=httpx.ReadTimeout)
    connect(sim).get_manifest(REPO, "v1")
    assert len(sleeps) == 1


def test_404_is_not_retried(sim, connect, sleeps):
    with pytest.raises(RegistryHTTPError) as info:
        connect(sim).get_manifest(REPO, "missing")
    assert info.value.status == 404
    assert info.value.codes == ("MANIFEST_UNKNOWN",)
    assert sleeps == []
    assert len(sim.requests) == 1


def test_head_404_means_absent(sim, connect):
    client = connect(sim)
    assert client.manifest_digest(REPO, "missing") is None
    assert client.blob_size(REPO, sha256_digest(b"nothing")) is None


# -- manifests and integrity (threat 27) -----------------------------------------------------------------------


def test_get_manifest_sends_all_four_manifest_types(sim, connect):
    sim.add_manifest(REPO, MANIFEST, media_type=mt.DOCKER_LIST, tag="v1")
    fetched = connect(sim).get_manifest(REPO, "v1")
    assert fetched.raw == MANIFEST
    assert fetched.media_type == mt.DOCKER_LIST
    accept = sim.requests[0].headers["accept"]
    assert all(t in accept for t in (mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_LIST, mt.DOCKER_MANIFEST))


def test_manifest_by_digest_with_other_bytes_is_refused(sim, connect):
    asked = sha256_digest(MANIFEST)
    sim.manifests[REPO][asked] = (MANIFEST + b" ", mt.OCI_MANIFEST)
    with pytest.raises(DigestMismatchError, match=asked) as info:
        connect(sim).get_manifest(REPO, asked)
    assert info.value.exit_code == 4


def test_manifest_by_tag_with_lying_docker_content_digest_is_refused(sim, connect):
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.manifest_digest_header = sha256_digest(b"something else")
    with pytest.raises(DigestMismatchError) as info:
        connect(sim).get_manifest(REPO, "v1")
    assert info.value.exit_code == 4


def test_manifest_by_tag_without_digest_header_gets_the_computed_digest(sim, connect):
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.manifest_send_digest = False
    assert connect(sim).get_manifest(REPO, "v1").digest == sha256_digest(MANIFEST)


def test_oversized_manifest_is_refused_from_content_length_without_reading(sim, connect):
    sim.add_manifest(REPO, b"{" + b" " * 10_000 + b"}", tag="big")
    with pytest.raises(DigestMismatchError, match="more than 1024"):
        connect(sim, limits=Limits(max_manifest_bytes=1024)).get_manifest(REPO, "big")
    assert sim.streams[0].yielded == 0
    assert len(sim.requests) == 1


def test_oversized_manifest_without_content_length_stops_at_the_limit(sim, connect):
    sim.add_manifest(REPO, b"{" + b" " * 100_000 + b"}", tag="big")
    sim.manifest_chunked = True
    sim.manifest_piece = 256
    with pytest.raises(DigestMismatchError, match="larger than"):
        connect(sim, limits=Limits(max_manifest_bytes=1024)).get_manifest(REPO, "big")
    assert sim.streams[0].yielded <= 1024 + 256
    assert len(sim.requests) == 1


def test_manifest_digest_from_head(sim, connect):
    digest = sim.add_manifest(REPO, MANIFEST, tag="v1")
    assert connect(sim).manifest_digest(REPO, "v1") == digest
    assert [r.method for r in sim.requests] == ["HEAD"]


def test_manifest_digest_with_malformed_header_is_refused(sim, connect):
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    sim.manifest_digest_header = "sha256:../../etc/passwd"
    with pytest.raises(MirrorError):
        connect(sim).manifest_digest(REPO, "v1")


def test_put_manifest_sends_its_media_type_as_content_type(sim, connect):
    connect(sim).put_manifest(REPO, "v1", MANIFEST, mt.DOCKER_MANIFEST)
    [put] = sim.registry_requests("PUT")
    assert put.headers["content-type"] == mt.DOCKER_MANIFEST
    assert put.content == MANIFEST
    assert sim.manifests[REPO]["v1"] == (MANIFEST, mt.DOCKER_MANIFEST)


def test_put_manifest_refuses_a_lying_docker_content_digest(sim, connect):
    sim.put_manifest_digest_header = sha256_digest(b"not the manifest")
    with pytest.raises(DigestMismatchError) as info:
        connect(sim).put_manifest(REPO, "v1", MANIFEST, mt.OCI_MANIFEST)
    assert info.value.exit_code == 4


# -- blob downloads --------------------------------------------------------------------------------------------


def test_blob_size_from_head(sim, connect):
    digest = sim.add_blob(REPO, BLOB)
    assert connect(sim).blob_size(REPO, digest) == len(BLOB)


def test_download_blob_streams_exact_bytes(sim, connect):
    digest = sim.add_blob(REPO, BLOB)
    dest = io.BytesIO()
    seen, on_bytes = progress()
    connect(sim, limits=SMALL).download_blob(REPO, digest, len(BLOB), dest, on_bytes)
    assert dest.getvalue() == BLOB
    assert sum(seen) == len(BLOB)


def test_blob_with_extra_bytes_is_refused_at_the_first_byte_past_the_size(sim, connect):
    digest = sim.add_blob(REPO, BLOB)
    sim.blob_extra = b"EVIL"
    sim.blob_chunked = True  # no Content-Length to give it away
    dest = io.BytesIO()
    with pytest.raises(DigestMismatchError, match="more than the declared"):
        connect(sim, limits=SMALL).download_blob(REPO, digest, len(BLOB), dest)
    assert len(dest.getvalue()) <= len(BLOB)
    assert BLOB.startswith(dest.getvalue())


def test_endless_blob_is_cut_off(sim, connect):
    digest = sim.add_blob(REPO, BLOB)
    sim.blob_endless = True
    with pytest.raises(DigestMismatchError):
        connect(sim, limits=SMALL).download_blob(REPO, digest, len(BLOB), io.BytesIO())
    assert sim.streams[0].yielded <= len(BLOB) + 2 * sim.blob_piece


def test_blob_with_wrong_content_is_a_digest_mismatch(sim, connect):
    digest = sha256_digest(BLOB)
    sim.blobs[REPO][digest] = BLOB[:-1] + b"X"  # same size, other bytes
    with pytest.raises(DigestMismatchError, match=digest) as info:
        connect(sim).download_blob(REPO, digest, len(BLOB), io.BytesIO())
    assert info.value.exit_code == 4


def test_blob_content_length_announcing_another_size_is_refused(sim, connect):
    digest = sim.add_blob(REPO, BLOB)
    sim.blob_content_length = len(BLOB) + 5
    dest = io.BytesIO()
    with pytest.raises(DigestMismatchError, match="announces"):
        connect(sim).download_blob(REPO, digest, len(BLOB), dest)
    assert dest.getvalue() == b""
    assert sim.streams[0].yielded == 0


def test_blob_with_malformed_digest_is_refused_before_any_request(sim, connect):
    with pytest.raises(MirrorError):
        connect(sim).download_blob(REPO, "sha256:../../x", 1, io.BytesIO())
    assert sim.requests == []


# -- resume ----------------------------------------------------------------------------------------------------


def test_broken_download_resumes_with_range(sim, connect, sleeps):
    digest = sim.add_blob(REPO, BLOB)
    sim.break_blob_after = [400]
    dest = io.BytesIO()
    seen, on_bytes = progress()
    connect(sim, limits=SMALL).download_blob(REPO, digest, len(BLOB), dest, on_bytes)
    first, second = sim.registry_requests("GET", "blobs")
    assert "range" not in first.headers
    assert second.headers["range"] == "bytes=400-"
    assert dest.getvalue() == BLOB
    assert sum(seen) == len(BLOB)
    assert len(sleeps) == 1


def test_download_broken_repeatedly_resumes_each_time_from_what_it_has(sim, connect):
    digest = sim.add_blob(REPO, BLOB)
    sim.break_blob_after = [100, 100, 100]
    dest = io.BytesIO()
    connect(sim, limits=SMALL).download_blob(REPO, digest, len(BLOB), dest)
    ranges = [r.headers.get("range") for r in sim.registry_requests("GET", "blobs")]
    assert ranges == [None, "bytes=100-", "bytes=200-", "bytes=300-"]
    assert dest.getvalue() == BLOB


def test_range_answered_with_200_restarts_cleanly(sim, connect):
    digest = sim.add_blob(REPO, BLOB)
    sim.break_blob_after = [400]
    sim.ignore_range = True
    dest = io.BytesIO()
    seen, on_bytes = progress()
    connect(sim, limits=SMALL).download_blob(REPO, digest, len(BLOB), dest, on_bytes)
    assert sim.registry_requests("GET", "blobs")[1].headers["range"] == "bytes=400-"
    assert dest.getvalue() == BLOB
    assert sum(seen) == len(BLOB)


def test_resume_at_the_wrong_offset_is_refused(sim, connect):
    digest = sim.add_blob(REPO, BLOB)
    sim.break_blob_after = [400]
    sim.wrong_content_range = True
    with pytest.raises(DigestMismatchError, match="wrong offset"):
        connect(sim, limits=SMALL).download_blob(REPO, digest, len(BLOB), io.BytesIO())


# -- uploads ---------------------------------------------------------------------------------------------------


def test_monolithic_upload_keeps_state_and_sends_content_length(sim, connect):
    data = b"a small layer"
    digest = sha256_digest(data)
    seen, on_bytes = progress()
    connect(sim).upload_blob(REPO, digest, len(data), opener(data), on_bytes)
    [post] = sim.registry_requests("POST")
    [put] = sim.registry_requests("PUT")
    assert put.url.params["_state"]
    assert put.url.params["digest"] == digest
    assert put.headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in put.headers
    assert put.content == data
    assert sim.blobs[REPO][digest] == data
    assert sum(seen) == len(data)
    assert post.url.path == f"/v2/{REPO}/blobs/uploads/"


def test_monolithic_upload_follows_an_absolute_location(sim, connect):
    sim.absolute_location = True
    data = b"a small layer"
    connect(sim).upload_blob(REPO, sha256_digest(data), len(data), opener(data))
    assert sim.blobs[REPO][sha256_digest(data)] == data


def test_monolithic_upload_retried_after_503_starts_a_new_session(sim, connect, sleeps):
    data = b"a small layer"
    digest = sha256_digest(data)
    sim.fail(1, 503, match=lambda r: r.method == "PUT")
    connect(sim).upload_blob(REPO, digest, len(data), opener(data))
    assert len(sim.registry_requests("POST")) == 2
    assert sim.blobs[REPO][digest] == data
    assert len(sleeps) == 1


def test_monolithic_upload_progress_counts_each_byte_once_across_retries(sim, connect):
    data = b"a small layer"
    sim.fail(1, 503, match=lambda r: r.method == "PUT")
    seen, on_bytes = progress()
    connect(sim).upload_blob(REPO, sha256_digest(data), len(data), opener(data), on_bytes)
    assert sum(seen) == len(data)


def test_push_blob_a_repository_holds_costs_one_post_and_sends_no_byte(sim, connect):
    data = b"a small layer"
    digest = sim.add_blob(REPO, data)
    assert connect(sim).push_blob(REPO, digest, len(data), opener(b"")) is True
    [post] = sim.registry_requests()
    assert post.method == "POST" and post.url.params["mount"] == digest and post.url.params["from"] == REPO


def test_push_blob_uploads_into_the_session_its_mount_post_opened(sim, connect):
    data = b"a small layer"
    digest = sha256_digest(data)
    assert connect(sim).push_blob(REPO, digest, len(data), opener(data)) is False
    assert [r.method for r in sim.registry_requests()] == ["POST", "PUT"]
    assert sim.blobs[REPO][digest] == data


def test_push_blob_mounts_from_the_repository_that_holds_it(sim, connect):
    data = b"a small layer"
    digest = sim.add_blob("team/base", data)
    assert connect(sim).push_blob(REPO, digest, len(data), opener(b""), holder="team/base") is True
    assert sim.blobs[REPO][digest] == data
    assert len(sim.registry_requests()) == 1


def test_push_blob_to_a_registry_refusing_mount_parameters_starts_a_plain_upload(sim, connect):
    data = b"a small layer"
    digest = sha256_digest(data)
    sim.fail(1, 405, match=lambda r: "mount" in r.url.params)
    assert connect(sim).push_blob(REPO, digest, len(data), opener(data)) is False
    assert [r.method for r in sim.registry_requests()] == ["POST", "POST", "PUT"]
    assert sim.blobs[REPO][digest] == data


def test_push_blob_retried_after_503_on_its_put_starts_a_new_session(sim, connect, sleeps):
    data = b"a small layer"
    digest = sha256_digest(data)
    sim.fail(1, 503, match=lambda r: r.method == "PUT")
    seen, on_bytes = progress()
    assert connect(sim).push_blob(REPO, digest, len(data), opener(data), on_bytes) is False
    assert [r.method for r in sim.registry_requests()] == ["POST", "PUT", "POST", "PUT"]
    assert sim.blobs[REPO][digest] == data and sum(seen) == len(data)


def test_push_blob_from_its_own_repository_asks_the_token_of_a_plain_upload(sim, connect):
    bearer(sim)
    client = connect(sim, Credentials(USER, PASSWORD))
    data = b"a small layer"
    client.push_blob(REPO, sha256_digest(data), len(data), opener(data))
    client.upload_blob(REPO, sha256_digest(b"another"), 7, opener(b"another"))
    assert client.token_requests == 1


@pytest.mark.parametrize(
    "source",
    [b"a small layeR", b"a small layer plus", b"a small"],
    ids=["other-bytes", "longer", "shorter"],
)
def test_monolithic_source_not_matching_its_digest_is_never_committed(sim, connect, source):
    data = b"a small layer"
    digest = sha256_digest(data)
    with pytest.raises(IntegrityError) as info:
        connect(sim).upload_blob(REPO, digest, len(data), opener(source))
    assert info.value.exit_code == 3
    assert digest not in sim.blobs[REPO]
    assert sim.registry_requests("PUT") == []


def test_chunked_upload_sends_ranged_patches_then_a_final_put(sim, connect):
    sim.check_content_range = True
    data = bytes(range(20))
    digest = sha256_digest(data)
    seen, on_bytes = progress()
    connect(sim, limits=CHUNKED).upload_blob(REPO, digest, len(data), opener(data), on_bytes)
    patches = sim.registry_requests("PATCH")
    assert [p.headers["content-range"] for p in patches] == ["0-6", "7-13", "14-19"]
    assert [p.headers["content-length"] for p in patches] == ["7", "7", "6"]
    assert b"".join(p.content for p in patches) == data
    # each PATCH used the Location (and its fresh _state) the previous answer gave
    states = [p.url.params["_state"] for p in patches]
    assert len(set(states)) == 3
    [put] = sim.registry_requests("PUT")
    assert put.url.params["digest"] == digest
    assert put.url.params["_state"] not in states
    assert put.content == b""
    assert sim.blobs[REPO][digest] == data
    assert sum(seen) == len(data)


def test_chunked_upload_resumes_from_the_offset_the_registry_reports(sim, connect):
    sim.check_content_range = True
    sim.break_patch = {2: 3}  # the second chunk (7-13) breaks after the registry kept 3 of its bytes
    data = bytes(range(100, 120))
    digest = sha256_digest(data)
    connect(sim, limits=CHUNKED).upload_blob(REPO, digest, len(data), opener(data))
    status = [r for r in sim.registry_requests("GET") if "/uploads/" in r.url.path]
    assert len(status) == 1
    ranges = [p.headers["content-range"] for p in sim.registry_requests("PATCH")]
    assert ranges == ["0-6", "7-13", "10-16", "17-19"]
    assert sim.blobs[REPO][digest] == data


def test_chunked_upload_progress_counts_bytes_the_registry_kept_from_a_broken_chunk(sim, connect):
    sim.break_patch = {2: 3}
    data = bytes(range(100, 120))
    seen, on_bytes = progress()
    connect(sim, limits=CHUNKED).upload_blob(REPO, sha256_digest(data), len(data), opener(data), on_bytes)
    assert sum(seen) == len(data)


def test_chunked_upload_whose_first_chunk_was_lost_entirely_starts_again_at_zero(sim, connect):
    # distribution answers the status request with "Range: 0-0" for an empty upload; the first byte was
    # never received, so resuming at offset 1 would drop it.
    sim.break_patch = {1: 0}
    data = bytes(range(50, 70))
    digest = sha256_digest(data)
    connect(sim, limits=CHUNKED).upload_blob(REPO, digest, len(data), opener(data))
    assert sim.blobs[REPO][digest] == data


def test_chunked_upload_reauthenticates_when_the_token_dies_mid_upload(sim, connect):
    bearer(sim)
    patches = 0

    def revoke_on_second_patch(request: httpx.Request) -> None:
        nonlocal patches
        if request.method == "PATCH" and request.url.host == "reg.test":
            patches += 1
            if patches == 2:
                sim.revoke_tokens()

    sim.on_request = revoke_on_second_patch
    data = bytes(range(20))
    digest = sha256_digest(data)
    connect(sim, CREDS, limits=CHUNKED).upload_blob(REPO, digest, len(data), opener(data))
    assert len(sim.token_requests) == 2
    assert sim.blobs[REPO][digest] == data


@pytest.mark.parametrize(
    "source",
    [bytes(range(19)) + b"X", bytes(range(21)), bytes(range(19))],
    ids=["other-bytes", "longer", "shorter"],
)
def test_chunked_source_not_matching_its_digest_is_never_committed(sim, connect, source):
    data = bytes(range(20))
    digest = sha256_digest(data)
    with pytest.raises(IntegrityError) as info:
        connect(sim, limits=CHUNKED).upload_blob(REPO, digest, len(data), opener(source))
    assert info.value.exit_code == 3
    assert digest not in sim.blobs[REPO]
    assert sim.registry_requests("PUT") == []


def test_upload_with_lying_docker_content_digest_is_refused(sim, connect):
    sim.put_blob_digest_header = sha256_digest(b"other")
    data = b"a small layer"
    with pytest.raises(DigestMismatchError):
        connect(sim).upload_blob(REPO, sha256_digest(data), len(data), opener(data))


def test_upload_with_malformed_digest_is_refused_before_any_request(sim, connect):
    with pytest.raises(MirrorError):
        connect(sim).upload_blob(REPO, "sha256:ABC", 3, opener(b"abc"))
    assert sim.requests == []


def test_mount_answered_201_is_true(sim, connect):
    digest = sim.add_blob("team/base", BLOB)
    assert connect(sim).mount_blob(REPO, digest, "team/base") is True
    [post] = sim.registry_requests("POST")
    assert post.url.params["mount"] == digest
    assert post.url.params["from"] == "team/base"
    assert sim.blobs[REPO][digest] == BLOB


def test_mount_answered_202_is_false(sim, connect):
    digest = sim.add_blob("team/base", BLOB)
    sim.mount_allowed = False
    assert connect(sim).mount_blob(REPO, digest, "team/base") is False
    assert digest not in sim.blobs[REPO]


def test_repository_prefix_of_a_proxy_endpoint_is_applied(sim, connect):
    sim.add_manifest(f"ghcr.io/{REPO}", MANIFEST, tag="v1")
    endpoint = Endpoint("ghcr.io", "https", sim.host, "ghcr.io")
    bearer(sim)
    connect(sim, CREDS, endpoint=endpoint).get_manifest(REPO, "v1")
    assert scopes(sim.token_requests[0]) == [f"repository:ghcr.io/{REPO}:pull"]


# -- environment (threat 29) -----------------------------------------------------------------------------------

GARBAGE_ENV = {
    "HTTPS_PROXY": "garbage://proxy.invalid:0",
    "HTTP_PROXY": "garbage://proxy.invalid:0",
    "ALL_PROXY": "garbage://proxy.invalid:0",
    "https_proxy": "garbage://proxy.invalid:0",
    "SSL_CERT_FILE": "/nonexistent/ca.pem",
    "SSL_CERT_DIR": "/nonexistent",
    "REQUESTS_CA_BUNDLE": "/nonexistent/bundle.pem",
    "CURL_CA_BUNDLE": "/nonexistent/curl.pem",
}


def test_environment_proxies_and_ca_bundles_are_ignored(monkeypatch):
    for name, value in GARBAGE_ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError):  # control: an httpx client that trusts the environment chokes on it
        httpx.Client(trust_env=True)
    client = RegistryClient(Endpoint("reg.test", "https", "reg.test"))
    try:
        assert client._http.trust_env is False
        assert client._http._mounts == {}  # no proxy transports
    finally:
        client.close()


def test_netrc_is_ignored(sim, connect, tmp_path, monkeypatch):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine reg.test login mallory password from-netrc\n")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    sim.add_manifest(REPO, MANIFEST, tag="v1")
    connect(sim).get_manifest(REPO, "v1")
    assert all("authorization" not in r.headers for r in sim.requests)


def test_unreadable_ca_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError) as info:
        RegistryClient(Endpoint("reg.test", "https", "reg.test", ca_file=str(tmp_path / "missing.pem")))
    assert info.value.exit_code == 2


# -- credentials.py --------------------------------------------------------------------------------------------


def _auth_entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def write_config(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


def test_registry_auth_file_wins_over_docker_config_and_home(tmp_path):
    first = write_config(tmp_path / "first.json", {"auths": {"reg.test": _auth_entry("first", "p1")}})
    write_config(tmp_path / "dc" / "config.json", {"auths": {"reg.test": _auth_entry("second", "p2")}})
    write_config(tmp_path / "home" / ".docker" / "config.json", {"auths": {"reg.test": _auth_entry("third", "p3")}})
    env = {"REGISTRY_AUTH_FILE": str(first), "DOCKER_CONFIG": str(tmp_path / "dc"), "HOME": str(tmp_path / "home")}
    assert credentials_from_auth_file("reg.test", env) == Credentials("first", "p1")
    del env["REGISTRY_AUTH_FILE"]
    assert credentials_from_auth_file("reg.test", env) == Credentials("second", "p2")
    del env["DOCKER_CONFIG"]
    assert credentials_from_auth_file("reg.test", env) == Credentials("third", "p3")


def test_auth_entry_is_base64_decoded_and_password_may_hold_colons(tmp_path):
    path = write_config(tmp_path / "auth.json", {"auths": {"reg.test:5000": _auth_entry("bob", "a:b:c")}})
    env = {"REGISTRY_AUTH_FILE": str(path)}
    assert credentials_from_auth_file("reg.test:5000", env) == Credentials("bob", "a:b:c")


def test_auth_entry_with_username_and_password_fields(tmp_path):
    path = write_config(tmp_path / "auth.json", {"auths": {"reg.test": {"username": "u", "password": "p"}}})
    assert credentials_from_auth_file("reg.test", {"REGISTRY_AUTH_FILE": str(path)}) == Credentials("u", "p")


def test_auth_entry_keyed_by_https_url(tmp_path):
    path = write_config(tmp_path / "auth.json", {"auths": {"https://reg.test": _auth_entry("u", "p")}})
    assert credentials_from_auth_file("reg.test", {"REGISTRY_AUTH_FILE": str(path)}) == Credentials("u", "p")


def test_docker_hub_credentials_under_the_old_index_url(tmp_path):
    path = write_config(tmp_path / "auth.json", {"auths": {"https://index.docker.io/v1/": _auth_entry("hub", "p")}})
    assert credentials_from_auth_file("docker.io", {"REGISTRY_AUTH_FILE": str(path)}) == Credentials("hub", "p")


def test_credentials_of_another_host_are_not_used(tmp_path):
    path = write_config(tmp_path / "auth.json", {"auths": {"other.test": _auth_entry("u", "p")}})
    assert credentials_from_auth_file("reg.test", {"REGISTRY_AUTH_FILE": str(path)}) is None


def test_missing_auth_file_means_no_credentials(tmp_path):
    assert credentials_from_auth_file("reg.test", {"REGISTRY_AUTH_FILE": str(tmp_path / "none.json")}) is None


@pytest.mark.parametrize(
    "value", ["!!!not base64!!!", base64.b64encode(b"no-colon-here").decode(), base64.b64encode(b"\xff\xfe:x").decode()]
)
def test_bad_auth_entry_is_a_usage_error(tmp_path, value):
    path = write_config(tmp_path / "auth.json", {"auths": {"reg.test": {"auth": value}}})
    with pytest.raises(UsageError, match=r"auths\.reg\.test\.auth") as info:
        credentials_from_auth_file("reg.test", {"REGISTRY_AUTH_FILE": str(path)})
    assert info.value.exit_code == 2


def test_unreadable_auth_file_is_a_usage_error(tmp_path):
    path = tmp_path / "auth.json"
    path.write_text("{not json")
    with pytest.raises(UsageError):
        credentials_from_auth_file("reg.test", {"REGISTRY_AUTH_FILE": str(path)})


def install_helper(tmp_path: Path, monkeypatch, name: str = "test", exit_code: int = 0) -> Path:
    """A docker-credential-<name> that records the host it was asked about and answers with fixed credentials."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    log = tmp_path / f"{name}.asked"
    script = bindir / f"docker-credential-{name}"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 3\n'
        f"cat > {log}\n"
        f"[ {exit_code} -eq 0 ] || {{ echo 'credentials not found in native keychain'; exit {exit_code}; }}\n"
        'echo \'{"ServerURL":"x","Username":"helper-user","Secret":"helper-secret"}\'\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


def test_cred_helper_is_used(tmp_path, monkeypatch):
    log = install_helper(tmp_path, monkeypatch)
    path = write_config(
        tmp_path / "auth.json",
        {"credHelpers": {"reg.test": "test"}, "auths": {"reg.test": _auth_entry("file-user", "file-pass")}},
    )
    creds = credentials_from_auth_file("reg.test", {"REGISTRY_AUTH_FILE": str(path)})
    assert creds == Credentials("helper-user", "helper-secret")
    assert log.read_text() == "reg.test"


def test_creds_store_for_docker_hub_is_asked_for_the_index_url(tmp_path, monkeypatch):
    log = install_helper(tmp_path, monkeypatch, name="store")
    path = write_config(tmp_path / "auth.json", {"credsStore": "store"})
    creds = credentials_from_auth_file("docker.io", {"REGISTRY_AUTH_FILE": str(path)})
    assert creds == Credentials("helper-user", "helper-secret")
    assert log.read_text() == "https://index.docker.io/v1/"


def test_cred_helper_without_credentials_means_none(tmp_path, monkeypatch):
    install_helper(tmp_path, monkeypatch, exit_code=1)
    path = write_config(tmp_path / "auth.json", {"credHelpers": {"reg.test": "test"}})
    assert credentials_from_auth_file("reg.test", {"REGISTRY_AUTH_FILE": str(path)}) is None


def test_missing_cred_helper_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    path = write_config(tmp_path / "auth.json", {"credHelpers": {"reg.test": "absent-helper"}})
    with pytest.raises(UsageError, match="docker-credential-absent-helper"):
        credentials_from_auth_file("reg.test", {"REGISTRY_AUTH_FILE": str(path)})


def test_pool_looks_up_credentials_of_the_host_actually_contacted(tmp_path, monkeypatch):
    path = write_config(
        tmp_path / "auth.json",
        {"auths": {"ghcr.io": _auth_entry("origin", "o"), "proxy.corp": _auth_entry("proxy", "p")}},
    )
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(path))
    proxied = Endpoint("ghcr.io", "https", "proxy.corp", "ghcr.io")
    assert _auth_file_lookup(proxied)("ghcr.io/org/app") == Credentials("proxy", "p")


# -- auth.parse_challenge --------------------------------------------------------------------------------------


def test_challenge_with_quoted_commas():
    challenge = parse_challenge(
        'Bearer realm="https://auth.test/token",service="reg.test",scope="repository:a/b:pull,push"'
    )
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.test/token",
        "service": "reg.test",
        "scope": "repository:a/b:pull,push",
    }


def test_challenge_with_escaped_quotes():
    challenge = parse_challenge(r'Basic realm="the \"secure\" registry, really"')
    assert challenge is not None
    assert challenge.params == {"realm": 'the "secure" registry, really'}


def test_challenge_with_unquoted_values_and_spaces():
    challenge = parse_challenge("Bearer realm=https://auth.test/token, service=reg.test ,error=invalid_token")
    assert challenge is not None
    assert challenge.params == {"realm": "https://auth.test/token", "service": "reg.test", "error": "invalid_token"}


def test_challenge_scheme_and_keys_are_case_insensitive():
    challenge = parse_challenge('BEARER Realm="https://auth.test/token",SERVICE="reg.test"')
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.test/token", "service": "reg.test"}


def test_empty_challenge_is_none():
    assert parse_challenge("") is None
    assert parse_challenge("   ") is None


# -- retry.parse_retry_after -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), (" 120 ", 120.0), ("0", 0.0)])
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    delay = parse_retry_after(when)
    assert delay is not None
    assert 27 <= delay <= 31


def test_retry_after_date_in_the_past_is_zero():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5e9"])
def test_retry_after_unusable_values(value):
    assert parse_retry_after(value) is None


def test_blob_served_with_content_encoding_is_kept_as_stored(tmp_path):
    # A CDN may label a stored .tar.gz layer "Content-Encoding: gzip"; the digest is of the stored bytes.

    stored = gzip.compress(b"layer content" * 100)
    digest = "sha256:" + hashlib.sha256(stored).hexdigest()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept-encoding"] == "identity"
        return httpx.Response(200, content=iter([stored]), headers={"Content-Encoding": "gzip"})

    client = RegistryClient(Endpoint("reg.test", "https", "reg.test"), transport=httpx.MockTransport(handler))
    with client, open(tmp_path / "blob", "wb+") as dest:
        client.download_blob(REPO, digest, len(stored), dest)
    assert (tmp_path / "blob").read_bytes() == stored


def test_head_answering_another_digest_than_asked_is_refused_as_a_lie():
    asked, stated = "sha256:" + "a" * 64, "sha256:" + "b" * 64

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Docker-Content-Digest": stated})

    client = RegistryClient(Endpoint("reg.test", "https", "reg.test"), transport=httpx.MockTransport(handler))
    with client, pytest.raises(DigestMismatchError) as caught:
        client.manifest_digest(REPO, asked)
    assert caught.value.exit_code == 4


def test_each_retry_is_reported_with_its_cause_and_delay():
    answers = iter([httpx.Response(503), httpx.Response(200, headers={"Docker-Content-Digest": "sha256:" + "a" * 64})])
    lines: list[str] = []
    client = RegistryClient(
        Endpoint("reg.test", "https", "reg.test"),
        transport=httpx.MockTransport(lambda request: next(answers)),
        sleep=lambda _: None,
        log=lines.append,
    )
    with client:
        client.manifest_digest(REPO, "1.0")
    [line] = lines
    assert "reg.test" in line and "503" in line and "retrying in" in line


def test_manifest_longer_than_its_descriptor_is_refused_before_hashing(sim, connect):
    digest = sim.add_manifest(REPO, MANIFEST, tag="1.0")
    with pytest.raises(DigestMismatchError, match=f"more than {len(MANIFEST) - 1}"):
        connect(sim).get_manifest(REPO, digest, size=len(MANIFEST) - 1)


def test_retry_after_with_non_ascii_digits_is_ignored_not_a_crash():
    assert parse_retry_after("²") is None


def test_a_deeply_nested_auth_file_is_a_usage_error_naming_it(tmp_path):
    path = tmp_path / "auth.json"
    path.write_text('{"auths": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(UsageError) as caught:
        credentials_from_auth_file("reg.test", {"REGISTRY_AUTH_FILE": str(path)})
    assert caught.value.exit_code == 2 and str(path) in caught.value.message
