"""The registry client's cookies: a registry's cookie (a load balancer's sticky session) is sent back, and a
response without Set-Cookie costs no trip through the cookie jar (it was 4-7 % of an import's CPU)."""

from __future__ import annotations

import http.cookiejar

import httpx
import pytest

from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint

ENDPOINT = Endpoint("registry.test", "https", "registry.test")
DIGEST = "sha256:" + "b" * 64


def test_a_cookie_the_registry_sets_is_sent_back():
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        headers = {"docker-content-digest": DIGEST, "set-cookie": "LB=replica-2; Path=/"}
        return httpx.Response(200, headers=headers)

    with RegistryClient(ENDPOINT, transport=httpx.MockTransport(answer)) as client:
        client.manifest_digest("team/app", "1.0")
        client.manifest_digest("team/app", "2.0")
    assert seen == [None, "LB=replica-2"]


def test_a_response_without_set_cookie_does_not_go_through_the_cookie_jar(monkeypatch: pytest.MonkeyPatch):
    extracted: list[object] = []
    original = http.cookiejar.CookieJar.extract_cookies
    monkeypatch.setattr(
        http.cookiejar.CookieJar,
        "extract_cookies",
        lambda jar, response, request: extracted.append(request) or original(jar, response, request),
    )
    answer = httpx.MockTransport(lambda request: httpx.Response(200, headers={"docker-content-digest": DIGEST}))
    with RegistryClient(ENDPOINT, transport=answer) as client:
        for tag in ("1.0", "2.0", "3.0"):
            assert client.manifest_digest("team/app", tag) == DIGEST
    assert extracted == []
