"""RegistryClient.delete_manifest: DELETE /v2/<name>/manifests/<digest>, as `mirror prune` sends it."""

from __future__ import annotations

import json

import pytest

from mirror.credentials import Credentials
from mirror.errors import InvalidDocumentError, RegistryHTTPError
from mirror.oci import mediatypes as mt
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from tests.unit.registry_sim import RegistrySim

REPO = "team/app"
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {}, "layers": []}).encode()


def client(sim: RegistrySim, credentials: Credentials | None = None) -> RegistryClient:
    return RegistryClient(Endpoint(sim.host, sim.scheme, sim.host), credentials, transport=sim.transport())


def test_deleting_a_manifest_by_digest_removes_it_and_the_tags_on_it() -> None:
    sim = RegistrySim()
    digest = sim.add_manifest(REPO, MANIFEST, tag="1.0")
    with client(sim) as registry:
        assert registry.delete_manifest(REPO, digest) is True
        assert registry.manifest_digest(REPO, digest) is None
        assert registry.manifest_digest(REPO, "1.0") is None
    [delete] = sim.registry_requests("DELETE", "manifests")
    assert delete.url.path == f"/v2/{REPO}/manifests/{digest}"


def test_deleting_a_manifest_the_registry_does_not_have_answers_false() -> None:
    sim = RegistrySim()
    with client(sim) as registry:
        assert registry.delete_manifest(REPO, "sha256:" + "0" * 64) is False


def test_a_registry_with_deletes_disabled_answers_405_unsupported() -> None:
    sim = RegistrySim()
    sim.deletes_enabled = False
    digest = sim.add_manifest(REPO, MANIFEST)
    with client(sim) as registry, pytest.raises(RegistryHTTPError) as refused:
        registry.delete_manifest(REPO, digest)
    assert (refused.value.status, refused.value.codes) == (405, ("UNSUPPORTED",))
    assert sim.manifests[REPO][digest]


def test_a_token_is_asked_for_the_delete_action() -> None:
    sim = RegistrySim()
    sim.auth, sim.users = "bearer", {"alice": "secret"}
    digest = sim.add_manifest(REPO, MANIFEST)
    with client(sim, Credentials("alice", "secret")) as registry:
        assert registry.delete_manifest(REPO, digest) is True
    assert [r.url.params.get_list("scope") for r in sim.token_requests] == [[f"repository:{REPO}:delete"]]


def test_a_reference_that_is_not_a_digest_is_refused_before_any_request() -> None:
    sim = RegistrySim()
    with client(sim) as registry, pytest.raises(InvalidDocumentError):
        registry.delete_manifest(REPO, "latest")
    assert sim.requests == []
