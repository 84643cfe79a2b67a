"""Auth file keys that name a repository, against the internal registry (htpasswd Basic auth): the repository's
own entry wins over the host's, and covers that repository only."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.support.images import skopeo_copy


@pytest.fixture(scope="module")
def private_image(services, upstream_images) -> str:
    """fixtures/app:1.0 copied into the internal registry under a namespace of its own."""
    target = f"{services.internal}/keys-{uuid.uuid4().hex[:8]}/app:1.0"
    skopeo_copy(
        f"docker://{upstream_images['app_1']['ref']}",
        f"docker://{target}",
        "--src-tls-verify=false",
        f"--dest-cert-dir={services.cert_dir}",
        f"--dest-creds={services.internal_user}:{services.internal_password}",
    )
    return target


def entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def resolve(tmp_path, services, mirror_process, write_mirrorset, image: str, auths: dict):
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": auths}))
    settings = {services.internal: {"caFile": str(services.ca_file)}}
    return mirror_process(
        "resolve", write_mirrorset([image], registries=settings), env={"REGISTRY_AUTH_FILE": str(auth_file)}
    )


def test_a_repository_key_wins_over_the_hosts_entry(tmp_path, services, mirror_process, write_mirrorset, private_image):
    repository = private_image.rsplit(":", 1)[0]
    auths = {
        services.internal: entry(services.internal_user, "the-hosts-entry-is-wrong"),
        repository: entry(services.internal_user, services.internal_password),
    }
    result = resolve(tmp_path, services, mirror_process, write_mirrorset, private_image, auths)
    assert result.exit_code == 0, result.stderr


def test_a_repository_key_does_not_cover_another_repository(
    tmp_path, services, mirror_process, write_mirrorset, private_image
):
    namespace = private_image.rsplit("/", 1)[0]
    auths = {f"{namespace}/other": entry(services.internal_user, services.internal_password)}
    result = resolve(tmp_path, services, mirror_process, write_mirrorset, private_image, auths)
    assert result.exit_code == 4
    assert "credentials" in result.stderr and services.internal_password not in result.stderr
