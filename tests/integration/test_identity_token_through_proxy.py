"""An auth file's identity token (an OAuth2 refresh token) and a proxy: the token never crosses the proxy in clear
text (docs/collector.md, Proxies)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.connectproxy import RecordingProxy, recording_proxy
from tests.support.images import skopeo_copy


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    with recording_proxy() as running:
        yield running


@pytest.fixture(scope="module")
def token_image(services, upstream_images) -> str:
    app = upstream_images["app_1"]
    target = f"{services.token_registry}/secured/app:1.0"
    skopeo_copy(
        f"docker://{app['ref']}",
        f"docker://{target}",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"--dest-creds={services.token_user}:{services.token_password}",
    )
    return target


def _refresh_token(services) -> tuple[str, str]:
    """(a refresh token for the token registry's user, the realm that issued it)."""
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
    return answer.json()["refresh_token"], realm


def test_a_plain_http_refresh_token_grant_never_goes_through_the_proxy(
    tmp_path, services, mirror_process, write_mirrorset, token_image, proxy
):
    refresh, realm = _refresh_token(services)
    assert realm.startswith("http://")
    auth_file = tmp_path / "auth.json"
    user = base64.b64encode(b"<token>:").decode()
    auth_file.write_text(json.dumps({"auths": {services.token_registry: {"auth": user, "identitytoken": refresh}}}))
    result = mirror_process(
        "resolve",
        write_mirrorset([token_image], registries={services.token_registry: {"plainHTTP": True}}),
        "--proxy",
        proxy.url,
        env={"REGISTRY_AUTH_FILE": str(auth_file)},
    )
    token_path = httpx.URL(realm).path
    assert [s.line for s in proxy.seen if token_path in s.target and s.method == "POST"] == []
    assert result.exit_code == 2, result.stderr
    assert "proxy" in result.stderr
    assert refresh not in result.stdout + result.stderr
