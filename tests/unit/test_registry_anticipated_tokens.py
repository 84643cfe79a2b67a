"""Anticipated Bearer tokens (issue 19): once the registry has answered one request with a Bearer challenge, a
request for a new scope first asks that challenge's realm and service for its token, instead of meeting a 401 of
its own; an anticipated token request that fails in any way leaves the request to today's path (sent without
it, the registry's 401 answered)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from registry_sim import RegistrySim

from mirror.credentials import Credentials
from mirror.errors import RegistryHTTPError
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint

USER, PASSWORD = "alice", "s3cret-PASSWORD"
CREDS = Credentials(USER, PASSWORD)
REFRESH = "refresh-token-SECRET-0123456789"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "a" * 64, "size": 2},
        "layers": [],
    }
).encode()
FIRST, SECOND, THIRD = "team/first", "team/second", "team/third"


@pytest.fixture
def connect() -> Iterator[Callable[..., RegistryClient]]:
    clients: list[RegistryClient] = []

    def make(
        sim: RegistrySim, credentials: Credentials | Callable[[str], Credentials | None] | None = CREDS
    ) -> RegistryClient:
        client = RegistryClient(Endpoint(sim.host, sim.scheme, sim.host), credentials, transport=sim.transport())
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def registry(auth: str | None = "bearer") -> RegistrySim:
    sim = RegistrySim()
    sim.auth = auth
    sim.users = {USER: PASSWORD}
    for repository in (FIRST, SECOND, THIRD):
        sim.add_manifest(repository, MANIFEST, tag="v1")
    return sim


def first_request_for(sim: RegistrySim, repository: str) -> httpx.Request:
    return next(r for r in sim.registry_requests() if f"/v2/{repository}/" in r.url.path)


def statuses(sim: RegistrySim, repository: str) -> list[str]:
    """Whether each registry request for `repository` carried Authorization, in order: "token" or "none"."""
    return [
        "token" if "authorization" in r.headers else "none"
        for r in sim.registry_requests()
        if f"/v2/{repository}/" in r.url.path
    ]


def scopes(request: httpx.Request) -> list[str]:
    params = request.url.params if request.method == "GET" else httpx.QueryParams(request.content.decode())
    return params.get_list("scope")


def refusing(scope: str, answer: Callable[[httpx.Request], httpx.Response]) -> Callable[..., httpx.Response | None]:
    """A token service that answers requests for `scope` with `answer`, the first time only."""
    done: list[bool] = []

    def token_answer(request: httpx.Request) -> httpx.Response | None:
        if scope in scopes(request) and not done:
            done.append(True)
            return answer(request)
        return None

    return token_answer


# -- what is anticipated --------------------------------------------------------------------------------------


def test_a_new_repository_gets_its_token_before_its_first_request(connect):
    sim = registry()
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    client.get_manifest(SECOND, "v1")
    client.get_manifest(THIRD, "v1")
    assert statuses(sim, FIRST) == ["none", "token"]  # the one 401 of the run
    assert statuses(sim, SECOND) == ["token"]
    assert statuses(sim, THIRD) == ["token"]
    assert [scopes(r) for r in sim.token_requests] == [[f"repository:{r}:pull"] for r in (FIRST, SECOND, THIRD)]


def test_the_anticipated_token_is_asked_of_the_challenges_realm_and_service(connect):
    sim = registry()
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    client.get_manifest(SECOND, "v1")
    anticipated = sim.token_requests[1]
    assert (anticipated.url.scheme, anticipated.url.host, anticipated.url.path) == ("https", "auth.test", "/token")
    assert anticipated.url.params["service"] == "reg.test"
    assert anticipated.headers["authorization"] == sim.token_requests[0].headers["authorization"]


def test_the_token_request_counter_counts_anticipated_requests(connect):
    sim = registry()
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    client.get_manifest(SECOND, "v1")
    assert client.token_requests == len(sim.token_requests) == 2
    assert client.anticipated_token_failures == 0


def test_a_mount_scope_naming_two_repositories_is_anticipated_whole(connect):
    sim = registry()
    digest = sim.add_blob(FIRST, b"base layer")
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    assert client.mount_blob(SECOND, digest, FIRST) is True
    assert scopes(sim.token_requests[1]) == [f"repository:{SECOND}:pull,push", f"repository:{FIRST}:pull"]
    assert statuses(sim, SECOND) == ["token"]


def test_nothing_is_anticipated_before_the_registry_has_sent_a_bearer_challenge(connect):
    sim = registry()
    connect(sim).get_manifest(FIRST, "v1")
    assert "authorization" not in first_request_for(sim, FIRST).headers
    assert sim.requests[0].url.host == "reg.test"  # the registry was asked first, not the token service


def test_a_registry_without_auth_is_never_asked_for_tokens(connect):
    sim = registry(auth=None)
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    client.get_manifest(SECOND, "v1")
    assert sim.token_requests == []


def test_a_basic_registry_keeps_its_shared_basic_header_and_gets_no_token_requests(connect):
    sim = registry(auth="basic")
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    client.get_manifest(SECOND, "v1")
    assert sim.token_requests == []
    assert statuses(sim, SECOND) == ["token"]  # the Basic header, sent at once as today


def test_a_token_past_its_lifetime_is_fetched_again_before_the_request(connect, monkeypatch):
    import mirror.registry.auth as auth_module

    now = [1000.0]
    monkeypatch.setattr(auth_module.time, "monotonic", lambda: now[0])
    sim = registry()
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    now[0] += 1000  # past expires_in (300 s)
    client.get_manifest(FIRST, "v1")
    assert statuses(sim, FIRST) == ["none", "token", "token"]
    assert len(sim.token_requests) == 2


# -- credentials go nowhere new ------------------------------------------------------------------------------


def test_a_plain_http_realm_on_another_host_gets_no_credentials_when_anticipated_either(connect):
    sim = registry()
    sim.token_scheme = "http"  # an https registry pointing its realm at cleartext HTTP on another host
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    client.get_manifest(SECOND, "v1")
    assert len(sim.token_requests) == 2
    assert all(r.url.scheme == "http" and "authorization" not in r.headers for r in sim.token_requests)


def test_an_identity_token_is_exchanged_in_a_posted_grant_when_anticipated_too(connect):
    sim = registry()
    sim.anonymous_pull = False
    sim.refresh_tokens = {REFRESH: USER}
    client = connect(sim, Credentials("", "", identity_token=REFRESH))
    client.get_manifest(FIRST, "v1")
    client.get_manifest(SECOND, "v1")
    anticipated = sim.token_requests[1]
    assert anticipated.method == "POST" and REFRESH not in str(anticipated.url)
    assert httpx.QueryParams(anticipated.content.decode())["refresh_token"] == REFRESH
    assert statuses(sim, SECOND) == ["token"]
    assert not any(REFRESH in str(r.url) or REFRESH in r.content.decode() for r in sim.registry_requests())


def test_an_anticipated_token_request_carries_the_new_repositorys_own_credentials(connect):
    sim = registry()
    sim.users = {USER: PASSWORD, "bob": "bobs-PASSWORD"}
    bob = Credentials("bob", "bobs-PASSWORD")
    client = connect(sim, lambda repository: bob if repository == SECOND else CREDS)
    client.get_manifest(FIRST, "v1")
    client.get_manifest(SECOND, "v1")
    first, anticipated = sim.token_requests
    assert first.headers["authorization"] != anticipated.headers["authorization"]
    assert anticipated.headers["authorization"] == "Basic " + base64.b64encode(b"bob:bobs-PASSWORD").decode()


# -- the fallback: today's path -------------------------------------------------------------------------------


FAILURES: dict[str, Callable[[httpx.Request], httpx.Response]] = {
    "401": lambda _: httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]}),
    "403": lambda _: httpx.Response(403, json={"errors": [{"code": "DENIED"}]}),
    "500": lambda _: httpx.Response(500, text="token service broken"),
    "not json": lambda _: httpx.Response(200, text="<html>a login page</html>"),
    "no token": lambda _: httpx.Response(200, json={"expires_in": 300}),
    "not a bearer token": lambda _: httpx.Response(200, json={"token": "two words"}),
}


def _connection_refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused (simulated)", request=request)


FAILURES["connection refused"] = _connection_refused


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_refused_anticipated_token_leaves_the_request_to_the_registrys_challenge(connect, failure):
    sim = registry()
    sim.token_answer = refusing(f"repository:{SECOND}:pull", FAILURES[failure])
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    assert client.get_manifest(SECOND, "v1").raw == MANIFEST
    # Sent without a token, answered 401, the challenge answered with a token as today.
    assert statuses(sim, SECOND) == ["none", "token"]
    assert client.anticipated_token_failures == 1


def test_a_failed_anticipation_is_counted_in_token_requests_only_when_the_service_answered(connect):
    sim = registry()
    sim.token_answer = refusing(f"repository:{SECOND}:pull", _connection_refused)
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    client.get_manifest(SECOND, "v1")
    assert client.token_requests == 2  # the first repository's, the second's from its 401; not the refused one


def test_a_repository_served_without_auth_is_unaffected_by_a_refused_anticipation(connect):
    sim = registry()
    sim.anonymous_pull = False
    sim.public = {SECOND}
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    sim.users = {}  # the token service now refuses everything; the public repository needs no token
    assert client.get_manifest(SECOND, "v1").raw == MANIFEST
    assert client.get_manifest(SECOND, "v1").raw == MANIFEST
    assert statuses(sim, SECOND) == ["none", "none"]
    # A scope whose anticipation failed is not anticipated again: one refused token request, not one per request.
    assert len(sim.token_requests) == 2
    assert client.anticipated_token_failures == 1


def _refusal(sim: RegistrySim, client: RegistryClient, repository: str) -> str:
    with pytest.raises(RegistryHTTPError) as caught:
        client.get_manifest(repository, "v1")
    return f"{caught.value} | {caught.value.status} | {caught.value.hint}"


def test_a_refusal_that_persists_is_the_error_of_today(connect):
    refused = registry()
    refused.anonymous_pull = False
    refused.token_answer = lambda r: httpx.Response(401, json={}) if f"repository:{SECOND}:pull" in scopes(r) else None
    client = connect(refused)
    client.get_manifest(FIRST, "v1")
    anticipated = _refusal(refused, client, SECOND)

    today = registry()
    today.anonymous_pull = False
    today.token_answer = refused.token_answer
    assert anticipated == _refusal(today, connect(today), SECOND)  # no challenge seen before: no anticipation
    assert PASSWORD not in anticipated


def test_several_threads_asking_for_one_new_scope_at_once_all_get_it(connect):
    sim = registry()
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def pull() -> None:
        start.wait()
        try:
            assert client.get_manifest(SECOND, "v1").raw == MANIFEST
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=pull) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert "none" not in statuses(sim, SECOND)
    assert 1 <= len(sim.token_requests) - 1 <= 4
    assert client.token_requests == len(sim.token_requests)


def test_a_blob_request_in_a_new_repository_goes_with_its_anticipated_token(connect):
    sim = registry()
    digest = sim.add_blob(SECOND, b"layer")
    client = connect(sim)
    client.get_manifest(FIRST, "v1")
    assert client.blob_size(SECOND, digest) == len(b"layer")
    assert statuses(sim, SECOND) == ["token"]


def test_a_basic_challenge_ends_the_anticipation_of_tokens(connect):
    sim = registry()
    client = connect(sim, lambda repository: CREDS)  # looked up per repository: each keeps its own Basic header
    client.get_manifest(FIRST, "v1")
    sim.auth = "basic"  # the registry now answers with Basic
    client.get_manifest(SECOND, "v1")
    asked = len(sim.token_requests)
    client.get_manifest(THIRD, "v1")
    assert len(sim.token_requests) == asked
