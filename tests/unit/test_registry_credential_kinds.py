"""The registry client with an auth file's identity token (an OAuth2 refresh token) and with credentials that
differ per repository, against the in-process registry simulator."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from registry_sim import RegistrySim

from mirror.credentials import Credentials
from mirror.errors import RegistryHTTPError
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from mirror.registry.pool import _auth_file_lookup

REFRESH = "refresh-token-SECRET-0123456789"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "a" * 64, "size": 2},
        "layers": [],
    }
).encode()


@pytest.fixture
def clients() -> Iterator[list[RegistryClient]]:
    made: list[RegistryClient] = []
    yield made
    for client in made:
        client.close()


def client_for(sim: RegistrySim, credentials, made: list[RegistryClient]) -> RegistryClient:
    client = RegistryClient(Endpoint(sim.host, sim.scheme, sim.host), credentials, transport=sim.transport())
    made.append(client)
    return client


def token_sim(*, token_scheme: str = "https") -> RegistrySim:
    sim = RegistrySim()
    sim.auth = "bearer"
    sim.anonymous_pull = False
    sim.refresh_tokens = {REFRESH: "alice"}
    sim.token_scheme = token_scheme
    sim.add_manifest("team/app", MANIFEST, tag="v1")
    return sim


def sent_anywhere(sim: RegistrySim, secret: str) -> bool:
    def carries(request: httpx.Request) -> bool:
        return (
            secret in str(request.url)
            or secret in request.content.decode(errors="replace")
            or any(secret in value for value in request.headers.values())
        )

    return any(carries(r) for r in sim.requests)


def test_an_identity_token_is_exchanged_in_a_refresh_token_grant_posted_to_the_realm(clients):
    sim = token_sim()
    client = client_for(sim, Credentials("", "", identity_token=REFRESH), clients)
    client.get_manifest("team/app", "v1")
    [token_request] = sim.token_requests
    assert token_request.method == "POST"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = httpx.QueryParams(token_request.content.decode())
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == REFRESH
    assert form["service"] == "reg.test"
    assert form.get_list("scope") == ["repository:team/app:pull"]
    assert form["client_id"] == "mirror"
    assert "authorization" not in token_request.headers


def test_the_identity_token_goes_to_the_realm_only_never_to_the_registry(clients):
    sim = token_sim()
    client_for(sim, Credentials("", "", identity_token=REFRESH), clients).get_manifest("team/app", "v1")
    assert not any(REFRESH in r.content.decode(errors="replace") for r in sim.registry_requests())
    assert all(not r.headers.get("authorization", "").startswith("Basic") for r in sim.registry_requests())


def test_the_identity_token_is_never_sent_to_a_plain_http_realm_on_another_host(clients):
    sim = token_sim(token_scheme="http")
    sim.anonymous_pull = True
    client_for(sim, Credentials("", "", identity_token=REFRESH), clients).get_manifest("team/app", "v1")
    [token_request] = sim.token_requests
    assert token_request.method == "GET" and "authorization" not in token_request.headers
    assert not sent_anywhere(sim, REFRESH)


def test_a_refused_identity_token_is_access_denied_without_showing_the_token(clients):
    sim = token_sim()
    client = client_for(sim, Credentials("", "", identity_token="some-other-refresh-token"), clients)
    with pytest.raises(RegistryHTTPError) as caught:
        client.get_manifest("team/app", "v1")
    assert caught.value.status == 401
    shown = f"{caught.value.message} {caught.value.hint or ''}"
    assert "some-other-refresh-token" not in shown and "refresh token" in shown


def test_credentials_are_chosen_per_repository_when_given_as_a_lookup(clients):
    sim = RegistrySim()
    sim.auth = "basic"
    sim.users = {"team-user": "team-pass", "other-user": "other-pass"}
    sim.add_manifest("team/app", MANIFEST, tag="v1")
    sim.add_manifest("other/app", MANIFEST, tag="v1")
    by_repository = {"team/app": Credentials("team-user", "team-pass"), "": Credentials("other-user", "other-pass")}
    asked: list[str] = []

    def lookup(repository: str) -> Credentials | None:
        asked.append(repository)
        return by_repository.get(repository, by_repository[""])

    client = client_for(sim, lookup, clients)
    client.get_manifest("team/app", "v1")
    client.get_manifest("other/app", "v1")
    client.get_manifest("team/app", "v1")
    users = [
        base64.b64decode(r.headers["authorization"].split()[1]).decode().split(":")[0]
        for r in sim.registry_requests("GET", "manifests")
        if "authorization" in r.headers
    ]
    assert users == ["team-user", "other-user", "team-user"]
    assert sorted(set(asked)) == ["other/app", "team/app"]  # each looked up once


def test_the_pool_looks_up_repository_keys_as_the_repository_is_reached(tmp_path, monkeypatch):
    team = base64.b64encode(b"team:p").decode()
    host = base64.b64encode(b"host:p").decode()
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(
        json.dumps({"auths": {"proxy.corp/ghcr.io/team": {"auth": team}, "proxy.corp": {"auth": host}}})
    )
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    lookup = _auth_file_lookup(Endpoint("ghcr.io", "https", "proxy.corp", "ghcr.io"))
    assert callable(lookup)
    assert lookup("ghcr.io/team/app") == Credentials("team", "p")
    assert lookup("ghcr.io/other/app") == Credentials("host", "p")
