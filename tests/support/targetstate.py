"""What the internal registry holds under a prefix, read with curl (a client independent of mirror's): the
repositories, their tags, the digest each names, and whether a manifest is still there."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.conftest import internal_repositories

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def _curl(services: Any, path: str, *flags: str) -> str:
    done = subprocess.run(
        [
            *("curl", "-s", "--cacert", str(services.ca_file)),
            *("-u", f"{services.internal_user}:{services.internal_password}"),
            *("-H", f"Accept: {ACCEPT}"),
            *flags,
            f"https://{services.internal}/v2/{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def tags(services: Any, repository: str) -> list[str]:
    body = json.loads(_curl(services, f"{repository}/tags/list") or "{}")
    return sorted(body.get("tags") or [])


def manifest_digest(services: Any, repository: str, reference: str) -> str | None:
    """The digest the registry states for a tag or digest (HEAD), or None when it answers 404."""
    headers = _curl(services, f"{repository}/manifests/{reference}", "-I").splitlines()
    status = headers[0].split()[1] if headers else "000"
    if status == "404":
        return None
    assert status == "200", headers
    for line in headers:
        name, _, value = line.partition(":")
        if name.strip().lower() == "docker-content-digest":
            return value.strip()
    raise AssertionError(f"no Docker-Content-Digest for {repository}:{reference}")


def tagged(services: Any, prefix: str) -> dict[tuple[str, str], str]:
    """Every tag under `prefix/`: (repository without the prefix, tag) → the digest it names."""
    found = {}
    for repository in internal_repositories(services, prefix):
        for tag in tags(services, repository):
            digest = manifest_digest(services, repository, tag)
            assert digest is not None, f"{repository}:{tag} is listed and not there"
            found[(repository.removeprefix(prefix + "/"), tag)] = digest
    return found
