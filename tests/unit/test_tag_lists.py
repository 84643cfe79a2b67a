"""Tag lists are read page by page, lazily; a loop of Links or too many tags stop the listing with an error.

A `Link` to the next page is followed like a redirect: http(s) only, under the egress policy, recorded.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mirror.egress import EgressPolicy, EgressRefusedError, HostPattern, url_host
from mirror.errors import TransferError
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from tests.support.hostile import Answer, HostileServer, Request

LIST = "/v2/team/app/tags/list"


def pages(links: dict[str, str | None], tags_per_page: int = 3) -> HostileServer:
    """A registry whose tag-list page at each path links to the next one given (None: the last page)."""

    def route(request: Request) -> Answer:
        following = links.get(request.path, "missing")
        if following == "missing":
            return Answer(404, {}, b"{}")
        start = list(links).index(request.path) * tags_per_page
        body = json.dumps({"tags": [f"1.0.{i}" for i in range(start, start + tags_per_page)]}).encode()
        headers = {"Content-Type": "application/json"}
        if following is not None:
            headers["Link"] = f'<{following}>; rel="next"'
        return Answer(200, headers, body)

    return HostileServer(route)


def client(server: HostileServer, limits: Limits = DEFAULT_LIMITS) -> RegistryClient:
    return RegistryClient(Endpoint(server.netloc, "http", server.netloc), limits=limits)


def test_pages_are_followed_to_the_last_one() -> None:
    with pages({LIST: f"{LIST}?last=1.0.2", f"{LIST}?last=1.0.2": None}) as server, client(server) as registry:
        assert list(registry.iter_tags("team/app")) == [f"1.0.{i}" for i in range(6)]


def test_a_page_is_fetched_only_when_its_tags_are_wanted() -> None:
    with pages({LIST: f"{LIST}?last=1.0.2", f"{LIST}?last=1.0.2": None}) as server, client(server) as registry:
        assert next(iter(registry.iter_tags("team/app"))) == "1.0.0"
        assert len(server.requests) == 1


def test_a_link_to_the_page_itself_stops_before_reading_it_again() -> None:
    with pages({LIST: LIST}) as server, client(server) as registry:
        with pytest.raises(TransferError, match="links back to a page already read"):
            list(registry.iter_tags("team/app"))
        assert len(server.requests) == 1


def test_a_loop_over_two_pages_stops_at_the_first_repeat() -> None:
    second = f"{LIST}?last=1.0.2"
    with pages({LIST: second, second: LIST}) as server, client(server) as registry:
        with pytest.raises(TransferError, match="links back to a page already read"):
            list(registry.iter_tags("team/app"))
        assert len(server.requests) == 2


def test_more_tags_than_the_cap_stop_the_listing_naming_the_limit() -> None:
    second = f"{LIST}?last=1.0.2"
    limits = replace(DEFAULT_LIMITS, max_tags=5)
    with (
        pages({LIST: second, second: None}) as server,
        client(server, limits) as registry,
        pytest.raises(TransferError, match=r"more than 5 tags.*max_tags"),
    ):
        list(registry.iter_tags("team/app"))


def on_localhost(server: HostileServer) -> str:
    """The first tag-list page of `server` under the name `localhost`: another host than 127.0.0.1, on loopback."""
    return f"http://localhost:{server.netloc.rpartition(':')[2]}{LIST}"


def test_a_link_to_another_host_at_an_internal_address_is_refused_before_it_is_fetched() -> None:
    # `localhost` is another host name than the registry's 127.0.0.1, and resolves to loopback.
    with pages({LIST: None}) as elsewhere, pages({LIST: on_localhost(elsewhere)}) as server:
        egress = EgressPolicy(named=[server.netloc])
        with (
            RegistryClient(Endpoint(server.netloc, "http", server.netloc), egress=egress) as registry,
            pytest.raises(EgressRefusedError, match="internal address"),
        ):
            list(registry.iter_tags("team/app"))
        assert elsewhere.requests == []


def test_a_link_to_a_scheme_other_than_http_is_refused() -> None:
    with pages({LIST: "file:///etc/passwd"}) as server, client(server) as registry:
        with pytest.raises(TransferError, match="not an http"):
            list(registry.iter_tags("team/app"))
        assert len(server.requests) == 1


def test_the_host_a_link_leads_to_is_recorded_in_the_egress_record() -> None:
    with pages({LIST: None}) as elsewhere, pages({LIST: on_localhost(elsewhere)}) as server:
        egress = EgressPolicy(named=[server.netloc], allowed=[HostPattern("localhost", None)])
        with RegistryClient(Endpoint(server.netloc, "http", server.netloc), egress=egress) as registry:
            assert len(list(registry.iter_tags("team/app"))) == 6
        assert url_host(on_localhost(elsewhere)) in [c.host for c in egress.contacts]


@pytest.mark.parametrize("tags", ['"1.2.3"', '{"1.2.3": 1}', "7"])
def test_a_tags_field_that_is_not_a_list_is_an_unreadable_tag_list(tags: str) -> None:
    # A string would otherwise be read as its characters ("1", ".", "2", ...), each a tag a selector may choose.
    def route(_: Request) -> Answer:
        return Answer(200, {"Content-Type": "application/json"}, f'{{"name": "team/app", "tags": {tags}}}'.encode())

    with (
        HostileServer(route) as server,
        client(server) as registry,
        pytest.raises(TransferError, match="unreadable tag list"),
    ):
        list(registry.iter_tags("team/app"))
