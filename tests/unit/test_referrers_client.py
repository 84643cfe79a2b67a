"""The registry client and OCI 1.1 referrers: the referrers API (where a registry has it) and the `OCI-Subject`
header that says a pushed manifest's subject was indexed; against the in-process simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from mirror.errors import InvalidDocumentError
from mirror.oci import mediatypes as mt
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from tests.support.attach import SPDX_JSON, Artifact, cosign_signature, sbom, subject_descriptor
from tests.unit.registry_sim import RegistrySim

REPO = "team/app"
IMAGE = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "a" * 64, "size": 2},
        "layers": [],
    }
).encode()


@pytest.fixture
def sim() -> RegistrySim:
    return RegistrySim()


@pytest.fixture
def client(sim: RegistrySim) -> Iterator[RegistryClient]:
    with RegistryClient(Endpoint(sim.host, sim.scheme, sim.host), transport=sim.transport()) as client:
        yield client


def _image(sim: RegistrySim) -> str:
    return sim.add_manifest(REPO, IMAGE, tag="1.0")


def _sbom_of(sim: RegistrySim, digest: str) -> Artifact:
    artifact = sbom(subject_descriptor(digest, len(IMAGE)))
    sim.add_artifact(REPO, artifact.manifest, artifact.blobs)
    return artifact


def test_referrers_lists_the_manifests_whose_subject_is_the_digest(sim, client):
    sim.referrers = True
    digest = _image(sim)
    attached = _sbom_of(sim, digest)

    [found] = client.referrers(REPO, digest)

    assert (found.digest, found.size, found.artifact_type) == (attached.digest, attached.size, SPDX_JSON)


def test_referrers_is_none_on_a_registry_without_the_api(sim, client):
    digest = _image(sim)
    _sbom_of(sim, digest)

    assert client.referrers(REPO, digest) is None


def test_referrers_sends_the_artifact_type_filter(sim, client):
    sim.referrers = True
    digest = _image(sim)
    _sbom_of(sim, digest)

    assert client.referrers(REPO, digest, artifact_type="application/example") == []
    [request] = sim.registry_requests("GET", "referrers")
    assert request.url.params["artifactType"] == "application/example"


def test_referrers_filters_by_artifact_type_itself_when_the_registry_did_not(sim, client):
    sim.referrers = True
    digest = _image(sim)
    attached = _sbom_of(sim, digest)
    other = {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "b" * 64, "size": 3, "artifactType": "x/y"}
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [attached.descriptor(), other]}
    sim.referrers_body = json.dumps(index).encode()  # answered as is: no OCI-Filters-Applied

    [found] = client.referrers(REPO, digest, artifact_type=SPDX_JSON)

    assert found.digest == attached.digest


def test_a_referrers_answer_that_is_not_an_image_index_is_refused(sim, client):
    sim.referrers = True
    sim.referrers_body = IMAGE

    with pytest.raises(InvalidDocumentError) as info:
        client.referrers(REPO, _image(sim))
    assert info.value.exit_code == 3


def test_a_referrers_answer_with_a_malformed_descriptor_is_refused(sim, client):
    sim.referrers = True
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [{"mediaType": mt.OCI_MANIFEST, "size": 1}]}
    sim.referrers_body = json.dumps(index).encode()

    with pytest.raises(InvalidDocumentError):
        client.referrers(REPO, _image(sim))


def test_put_manifest_says_the_registry_indexed_the_subject(sim, client):
    sim.referrers = True
    digest = _image(sim)
    attached = sbom(subject_descriptor(digest, len(IMAGE)))

    pushed = client.put_manifest(REPO, attached.digest, attached.manifest, mt.OCI_MANIFEST)

    assert (pushed.digest, pushed.oci_subject) == (attached.digest, digest)


def test_put_manifest_says_nothing_was_indexed_on_a_registry_without_referrers(sim, client):
    digest = _image(sim)
    attached = sbom(subject_descriptor(digest, len(IMAGE)))

    assert client.put_manifest(REPO, attached.digest, attached.manifest, mt.OCI_MANIFEST).oci_subject is None


def test_a_manifest_without_subject_is_indexed_by_no_registry(sim, client):
    sim.referrers = True
    signature = cosign_signature(_image(sim), f"{sim.host}/{REPO}")

    assert client.put_manifest(REPO, "x.sig", signature.manifest, mt.OCI_MANIFEST).oci_subject is None


def test_a_referrers_list_is_read_no_further_than_the_manifests_a_subject_may_have(sim):
    sim.referrers = True
    digest = _image(sim)
    descriptors = [{"mediaType": mt.OCI_MANIFEST, "digest": f"sha256:{i:064x}", "size": 10} for i in range(150)]
    page = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}).encode()
    pages: list[httpx.Request] = []

    def endless(request: httpx.Request) -> httpx.Response:
        if "/referrers/" not in request.url.path:
            return sim.handle(request)
        pages.append(request)
        following = f'<{request.url.copy_merge_params({"page": len(pages)})}>; rel="next"'
        return httpx.Response(200, headers={"Content-Type": mt.OCI_INDEX, "Link": following}, content=page)

    endpoint = Endpoint(sim.host, sim.scheme, sim.host)
    with (
        RegistryClient(endpoint, transport=httpx.MockTransport(endless)) as client,
        pytest.raises(InvalidDocumentError) as info,
    ):
        client.referrers(REPO, digest, max_count=100)

    assert "100" in str(info.value)
    assert len(pages) == 1
