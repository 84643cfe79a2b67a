"""The registry catalog (`GET /v2/_catalog`) as audit reads it: paginated, bounded, absent on registries that keep
it to themselves (mirror/registry/client.py, iter_repositories)."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from mirror.errors import TransferError
from mirror.limits import DEFAULT_LIMITS
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint

ENDPOINT = Endpoint("reg.test", "https", "reg.test")


def client(handler, **limits: int) -> RegistryClient:  # type: ignore[no-untyped-def]
    return RegistryClient(
        ENDPOINT, None, replace(DEFAULT_LIMITS, max_attempts=1, **limits), transport=httpx.MockTransport(handler)
    )


def pages(request: httpx.Request) -> httpx.Response:
    """Two pages: a and b, then c; the Link as distribution writes it."""
    if request.url.params.get("last") == "b":
        return httpx.Response(200, json={"repositories": ["c"]})
    link = '</v2/_catalog?n=2&last=b>; rel="next"'
    return httpx.Response(200, json={"repositories": ["a", "b"]}, headers={"Link": link})


def test_every_page_is_read_following_the_link() -> None:
    listed = client(pages).iter_repositories()
    assert listed is not None and list(listed) == ["a", "b", "c"]


def test_the_listing_starts_after_the_name_given() -> None:
    asked: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return httpx.Response(200, json={"repositories": []})

    assert list(client(handler).iter_repositories(after="mirror") or []) == []
    assert asked[0].params.get("last") == "mirror" and asked[0].params.get("n") == "1000"


@pytest.mark.parametrize("status", [401, 403, 404, 405])
def test_a_registry_that_does_not_list_its_catalog_answers_none(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"errors": [{"code": "DENIED"}]})

    assert client(handler).iter_repositories() is None


def test_a_link_back_to_a_page_already_read_stops_the_listing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"repositories": ["a"]}, headers={"Link": "</v2/_catalog?n=1000>; rel=next"})

    with pytest.raises(TransferError, match="links back to a page already read"):
        list(client(handler).iter_repositories() or [])


def test_more_repositories_than_the_limit_stop_the_listing() -> None:
    with pytest.raises(TransferError, match="max_repositories"):
        list(client(pages, max_repositories=2).iter_repositories() or [])
