"""Bearer-token auth against a real distribution configured with `auth.token` and a real token service."""

from __future__ import annotations

import base64
import json
import re

import httpx
import pytest

from tests.support.hostile import Answer, HostileServer, Request
from tests.support.hostile.forwarding import forward_to
from tests.support.images import skopeo_copy
from tests.support.services import token_requests


@pytest.fixture(scope="session")
def token_image(services, upstream_images) -> dict:
    """fixtures/app:1.0 copied into the token-auth registry by skopeo, as alice."""
    app = upstream_images["app_1"]
    target = f"{services.token_registry}/secured/app:1.0"
    skopeo_copy(
        f"docker://{app['ref']}",
        f"docker://{target}",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"--dest-creds={services.token_user}:{services.token_password}",
    )
    return {"ref": target, "digest": app["digest"]}


@pytest.fixture(scope="session")
def token_repositories(services, token_image) -> list[str]:
    """Three repositories of the token-auth registry holding the same image: secured/app and two copies."""
    refs = [token_image["ref"]]
    for name in ("secured/app-copy-a:1.0", "secured/app-copy-b:1.0"):
        target = f"{services.token_registry}/{name}"
        skopeo_copy(
            f"docker://{token_image['ref']}",
            f"docker://{target}",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"--src-creds={services.token_user}:{services.token_password}",
            f"--dest-creds={services.token_user}:{services.token_password}",
        )
        refs.append(target)
    return refs


class AnsweredRequests:
    """A counting proxy in front of the token registry: every request and the status the registry answered."""

    def __init__(self, registry: str) -> None:
        self.answered: list[tuple[str, str, int]] = []
        forward = forward_to(f"http://{registry}")

        def route(request: Request) -> Answer:
            answer = forward(request)
            self.answered.append((request.method, request.path, answer.status))
            return answer

        self.server = HostileServer(route)


@pytest.fixture
def counted_token_registry(services):
    counting = AnsweredRequests(services.token_registry)
    with counting.server:
        yield counting


def _auth_file(tmp_path, host: str, user: str, password: str) -> str:
    path = tmp_path / "auth.json"
    secret = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": secret}}}))
    return str(path)


def _settings(services) -> dict:
    return {services.token_registry: {"plainHTTP": True}}


def test_anonymous_pull_fetches_one_token_and_reuses_it(tmp_path, services, mirror_cli, write_mirrorset, token_image):
    before = len(token_requests(services))
    result = mirror_cli(
        "collect",
        write_mirrorset([token_image["ref"]], registries=_settings(services)),
        "-o",
        tmp_path / "b",
        "--json",
        "-q",
        "--jobs",
        "1",
    )
    assert result.exit_code == 0, result.stderr
    assert result.json()["artifacts"][0]["digest"] == token_image["digest"]
    made = token_requests(services)[before:]
    # Manifest, config and two layers share one scope: one token serves them all.
    assert [r["scopes"] for r in made] == [["repository:secured/app:pull"]]
    assert made[0]["user"] is None


def test_credentials_from_the_auth_file_are_sent_to_the_token_service(
    tmp_path, services, mirror_cli, write_mirrorset, token_image
):
    auth_file = _auth_file(tmp_path, services.token_registry, services.token_user, services.token_password)
    before = len(token_requests(services))
    result = mirror_cli(
        "resolve",
        write_mirrorset([token_image["ref"]], registries=_settings(services)),
        env={"REGISTRY_AUTH_FILE": auth_file},
    )
    assert result.exit_code == 0, result.stderr
    assert [r["user"] for r in token_requests(services)[before:]] == [services.token_user]


def test_refused_credentials_exit_4_without_printing_the_password(
    tmp_path, services, mirror_process, write_mirrorset, token_image
):
    auth_file = _auth_file(tmp_path, services.token_registry, services.token_user, "not-the-password-1234")
    result = mirror_process(
        "resolve",
        write_mirrorset([token_image["ref"]], registries=_settings(services)),
        env={"REGISTRY_AUTH_FILE": auth_file},
    )
    assert result.exit_code == 4
    assert "not-the-password-1234" not in result.stderr + result.stdout
    assert "credentials" in result.stderr


def _refresh_token(services) -> str:
    """An OAuth2 refresh token for alice, as `docker login` gets one (a password grant with access_type=offline)
    from the realm the token registry names."""
    challenge = httpx.get(f"http://{services.token_registry}/v2/").headers["www-authenticate"]
    realm = re.search(r'realm="([^"]+)"', challenge).group(1)
    service = re.search(r'service="([^"]+)"', challenge).group(1)
    form = {
        "grant_type": "password",
        "username": services.token_user,
        "password": services.token_password,
        "service": service,
        "client_id": "mirror-tests",
        "access_type": "offline",
    }
    answer = httpx.post(realm, data=form)
    assert answer.status_code == 200, answer.text
    return answer.json()["refresh_token"]


def _identity_token_auth_file(tmp_path, host: str, token: str) -> str:
    path = tmp_path / "auth.json"
    # As docker writes it after a login that returned an identity token: no password, the token beside.
    user = base64.b64encode(b"<token>:").decode()
    path.write_text(json.dumps({"auths": {host: {"auth": user, "identitytoken": token}}}))
    return str(path)


def test_an_identitytoken_in_the_auth_file_is_exchanged_for_a_token_as_its_user(
    tmp_path, services, mirror_process, write_mirrorset, token_image
):
    refresh = _refresh_token(services)
    auth_file = _identity_token_auth_file(tmp_path, services.token_registry, refresh)
    before = len(token_requests(services))
    result = mirror_process(
        "resolve",
        write_mirrorset([token_image["ref"]], registries=_settings(services)),
        env={"REGISTRY_AUTH_FILE": auth_file},
    )
    assert result.exit_code == 0, result.stderr
    made = token_requests(services)[before:]
    assert [(r["method"], r["grant"], r["user"], r["status"]) for r in made] == [
        ("POST", "refresh_token", services.token_user, 200)
    ]
    assert refresh not in result.stdout + result.stderr


def test_a_refused_identitytoken_exits_4_and_is_never_printed(
    tmp_path, services, mirror_process, write_mirrorset, token_image
):
    refused = "not-a-refresh-token-the-server-issued-0123"
    auth_file = _identity_token_auth_file(tmp_path, services.token_registry, refused)
    result = mirror_process(
        "resolve",
        write_mirrorset([token_image["ref"]], registries=_settings(services)),
        env={"REGISTRY_AUTH_FILE": auth_file},
    )
    assert result.exit_code == 4
    assert refused not in result.stdout + result.stderr
    assert "identity token" in result.stderr


def test_after_the_first_challenge_each_new_repository_gets_its_token_before_its_first_request(
    tmp_path, services, mirror_cli, write_mirrorset, token_repositories, counted_token_registry
):
    before = len(token_requests(services))
    registries = {services.token_registry: {"endpoint": counted_token_registry.server.url}}
    result = mirror_cli(
        "collect",
        write_mirrorset(token_repositories, registries=registries),
        "-o",
        tmp_path / "b",
        "--json",
        "-q",
        "--jobs",
        "1",
    )
    assert result.exit_code == 0, result.stderr
    answered = counted_token_registry.answered
    # Only the very first request meets a 401: its Bearer challenge names the realm and service, and each later
    # repository's token is asked of that realm before its first request.
    assert [status for _, _, status in answered].count(401) == 1, answered
    assert answered[0][2] == 401
    made = token_requests(services)[before:]
    assert sorted(r["scopes"][0] for r in made) == sorted(
        f"repository:{ref.split('/', 1)[1].rsplit(':', 1)[0]}:pull" for ref in token_repositories
    )
    assert all(r["status"] == 200 and r["user"] is None for r in made)


def test_an_import_into_a_registry_whose_tokens_grant_pull_and_push_but_not_delete_succeeds(
    tmp_path, services, mirror_cli, write_mirrorset, upstream_images, target_prefix
):
    """Docker Hub and the token service here grant pull and push; cancelling the push check's empty upload needs
    delete, which the registry refuses: the upload is left to expire, and the import goes on."""
    from mirror.collector.run import collect

    app = upstream_images["app_1"]
    bundle = collect(
        [write_mirrorset([app["ref"]], registries={app["ref"].split("/")[0]: {"plainHTTP": True}})], tmp_path / "b"
    ).out
    result = mirror_cli(
        "import",
        bundle,
        "--registry",
        f"http://{services.token_registry}/{target_prefix}",
        "--allow-unsigned",
        "--json",
        "-q",
        env={"MIRROR_REGISTRY_USERNAME": services.token_user, "MIRROR_REGISTRY_PASSWORD": services.token_password},
    )
    assert result.exit_code == 0, result.stderr
    assert {i["status"] for i in result.json()["images"]} == {"pushed"}
