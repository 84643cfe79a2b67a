"""Registry and chart-repository redirects and token realms: credentials stay with the origin they were found for,
and a redirect to a scheme that is not HTTP(S) is one clear, unretried error that names it."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import httpx
import pytest

from mirror.collector.httpfetch import HttpFetcher
from mirror.credentials import Credentials
from mirror.errors import TransferError
from mirror.limits import Limits
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from tests.support.hostile import Answer, HostileServer, Request
from tests.support.hostile.redirects import authorization_headers, redirect_to

USER, PASSWORD = "puller", "reg-S3CRET"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
BLOB = b"layer bytes\n"
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
FAST = Limits(backoff_initial_s=0.01, backoff_max_s=0.01)


CREDS = Credentials(USER, PASSWORD)


def client_for(server: HostileServer, credentials: Credentials | None = CREDS) -> RegistryClient:
    return RegistryClient(Endpoint(server.netloc, "http", server.netloc), credentials, FAST)


def basic_registry(elsewhere: str):
    """A registry that wants Basic credentials, then redirects blob GETs to `elsewhere` (as to a storage host)."""

    def route(request: Request) -> Answer:
        if request.headers.get("authorization") != BASIC:
            return Answer(401, {"WWW-Authenticate": 'Basic realm="registry"'})
        return Answer(307, {"Location": elsewhere + request.path})

    return route


def storage(_: Request) -> Answer:
    return Answer(200, {"Content-Type": "application/octet-stream"}, BLOB)


def test_a_registry_redirect_to_another_host_carries_no_authorization() -> None:
    with HostileServer(storage, host="127.0.0.2") as store, HostileServer(basic_registry(store.url)) as registry:
        dest = io.BytesIO()
        with client_for(registry) as client:
            client.download_blob("team/app", DIGEST, len(BLOB), dest)
    assert dest.getvalue() == BLOB
    assert authorization_headers(registry.requests) == [BASIC], "the registry itself was answered"
    assert store.requests and authorization_headers(store.requests) == []


def token_registry(realm: str):
    def route(request: Request) -> Answer:
        if request.headers.get("authorization") == "Bearer granted":
            return Answer(200, {"Content-Type": "application/octet-stream"}, BLOB)
        return Answer(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="registry"'})

    return route


def token_service(_: Request) -> Answer:
    return Answer(200, {"Content-Type": "application/json"}, json.dumps({"token": "granted"}).encode())


def test_a_bearer_token_is_not_carried_across_a_redirect_to_another_host() -> None:
    def registry_route(tokens_url: str, store_url: str):
        def route(request: Request) -> Answer:
            if request.headers.get("authorization") != "Bearer granted":
                return Answer(401, {"WWW-Authenticate": f'Bearer realm="{tokens_url}/token",service="registry"'})
            return Answer(307, {"Location": store_url + request.path})

        return route

    with (
        HostileServer(token_service) as tokens,
        HostileServer(storage, host="127.0.0.2") as store,
        HostileServer(registry_route(tokens.url, store.url)) as registry,
        client_for(registry) as client,
    ):
        client.download_blob("team/app", DIGEST, len(BLOB), io.BytesIO())
    assert "Bearer granted" in authorization_headers(registry.requests)
    assert store.requests and authorization_headers(store.requests) == []


def test_a_plain_http_token_realm_on_another_host_gets_no_credentials() -> None:
    with (
        HostileServer(token_service, host="127.0.0.2") as tokens,
        HostileServer(token_registry(f"{tokens.url}/token")) as registry,
        client_for(registry) as client,
    ):
        client.download_blob("team/app", DIGEST, len(BLOB), io.BytesIO())
    assert tokens.requests, "the token was asked for, anonymously"
    assert authorization_headers(tokens.requests) == []


def test_a_plain_http_token_realm_on_the_registry_host_gets_the_credentials() -> None:
    with (
        HostileServer(token_service) as tokens,
        HostileServer(token_registry(f"{tokens.url}/token")) as registry,
        client_for(registry) as client,
    ):
        client.download_blob("team/app", DIGEST, len(BLOB), io.BytesIO())
    assert authorization_headers(tokens.requests) == [BASIC]


def test_an_https_token_realm_on_another_host_gets_the_registrys_credentials() -> None:
    # As Docker Hub's registry-1.docker.io sends clients to auth.docker.io: the registry names its realm.
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "auth.example":
            return httpx.Response(200, stream=httpx.ByteStream(b'{"token": "granted"}'))
        if request.headers.get("authorization") == "Bearer granted":
            return httpx.Response(200, stream=httpx.ByteStream(BLOB))
        challenge = {"WWW-Authenticate": 'Bearer realm="https://auth.example/token"'}
        return httpx.Response(401, headers=challenge, stream=httpx.ByteStream(b""))

    endpoint = Endpoint("registry.example", "https", "registry.example")
    with RegistryClient(endpoint, Credentials(USER, PASSWORD), FAST, transport=httpx.MockTransport(handler)) as client:
        client.download_blob("team/app", DIGEST, len(BLOB), io.BytesIO())
    assert [r.headers.get("authorization") for r in seen if r.url.host == "auth.example"] == [BASIC]


def test_a_registry_redirect_to_file_is_one_clear_error_naming_it() -> None:
    with (
        HostileServer(redirect_to("file:///etc/passwd", append_path=False)) as registry,
        client_for(registry, None) as client,
        pytest.raises(TransferError) as caught,
    ):
        client.download_blob("team/app", DIGEST, len(BLOB), io.BytesIO())
    assert "file:///etc/passwd" in caught.value.message
    assert "transfer from  failed" not in caught.value.message
    assert len(registry.requests) == 1, "not retried"


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/_x"])
def test_a_chart_repository_redirect_to_another_scheme_is_one_clear_error_naming_it(target: str) -> None:
    with (
        HostileServer(redirect_to(target, append_path=False)) as repo,
        HttpFetcher(limits=FAST) as fetcher,
        pytest.raises(TransferError) as caught,
    ):
        fetcher.get_bytes(f"{repo.url}/index.yaml", 1024)
    assert target in caught.value.message
    assert len(repo.requests) == 1, "not retried"
