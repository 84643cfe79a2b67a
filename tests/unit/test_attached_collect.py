"""Collect carries what is attached to every manifest it carries (SBOMs, signatures, attestations), found through
the referrers API, the referrers tag schema or cosign's tags, recursively and within bounds; on the simulator."""

from __future__ import annotations

import json

import pytest

from mirror.collector.run import CollectResult
from mirror.errors import DigestMismatchError, InvalidDocumentError, UsageError
from mirror.limits import Limits
from mirror.oci import mediatypes as mt
from mirror.supplychain.attached import COSIGN_SIGNATURE, SPDX_JSON
from mirror.supplychain.codes import ATTACHED_SUBJECT_FILTERED
from tests.support.attach import cosign_tag, tag_schema_tag
from tests.unit.attached_upstream import UPSTREAM, Upstream, attached_records, carried, collect_from

APP = f"{UPSTREAM}/team/app:1.0"


def _by_digest(result: CollectResult) -> dict[str, dict[str, object]]:
    return {a.digest: a.to_json() for a in result.inventory.artifacts if a.kind == "attached"}


def test_an_sbom_listed_in_the_tag_schema_index_is_carried_attached_to_its_image(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    sbom = upstream.attach_sbom("team/app", image)

    result = collect_from(upstream, tmp_path, [APP])

    assert _by_digest(result)[sbom.digest] == {
        "kind": "attached",
        "source": f"{UPSTREAM}/team/app@{sbom.digest}",
        "digest": sbom.digest,
        "mediaType": mt.OCI_MANIFEST,
        "size": sbom.size,
        "subject": image,
        "artifactType": SPDX_JSON,
        "found": "tag-schema",
        "image": APP,
    }
    assert all(carried(result.out, d) for d in [sbom.digest, *sbom.blobs])


def test_an_sbom_the_referrers_api_lists_is_carried_as_found_by_referrers(tmp_path):
    upstream = Upstream(referrers=True)
    image, _ = upstream.image("team/app", "1.0")
    sbom = upstream.attach_sbom("team/app", image)

    result = collect_from(upstream, tmp_path, [APP])

    assert _by_digest(result)[sbom.digest]["found"] == "referrers"
    assert not upstream.sim.registry_requests("GET", f"manifests/{tag_schema_tag(image)}")


def test_a_cosign_signature_is_carried_with_the_tag_it_was_found_under(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    signature = upstream.sign("team/app", image)

    result = collect_from(upstream, tmp_path, [APP])

    record = _by_digest(result)[signature.digest]
    assert (record["found"], record["tag"]) == ("cosign-tag", cosign_tag(image))
    assert record["artifactType"] == COSIGN_SIGNATURE
    assert record["subject"] == image
    assert all(carried(result.out, d) for d in [signature.digest, *signature.blobs])


def test_a_signature_on_an_sbom_is_carried_attached_to_the_sbom(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    sbom = upstream.attach_sbom("team/app", image)
    signature = upstream.sign("team/app", sbom.digest)

    result = collect_from(upstream, tmp_path, [APP])

    assert _by_digest(result)[signature.digest]["subject"] == sbom.digest
    assert carried(result.out, signature.digest)


def test_the_children_of_an_index_have_their_attached_manifests_carried(tmp_path):
    upstream = Upstream()
    index = upstream.index("team/multi", "2.0")
    child = json.loads(upstream.sim.manifests["team/multi"][index][0])["manifests"][1]["digest"]
    on_index, on_child = upstream.sign("team/multi", index), upstream.sign("team/multi", child)

    result = collect_from(upstream, tmp_path, [f"{UPSTREAM}/team/multi:2.0"])

    records = _by_digest(result)
    assert (records[on_index.digest]["subject"], records[on_child.digest]["subject"]) == (index, child)


def test_an_image_with_nothing_attached_carries_no_attached_record(tmp_path):
    upstream = Upstream()
    upstream.image("team/app", "1.0")

    assert attached_records(collect_from(upstream, tmp_path, [APP]).out) == []


def test_a_registry_without_the_referrers_api_is_asked_once_per_host(tmp_path):
    upstream = Upstream()
    for name in ("one", "two", "three"):
        upstream.image(f"team/{name}", "1.0")

    collect_from(upstream, tmp_path, [f"{UPSTREAM}/team/{name}:1.0" for name in ("one", "two", "three")])

    assert len(upstream.sim.registry_requests("GET", "referrers")) == 1


def test_each_repository_is_listed_once_and_only_tags_that_exist_are_fetched(tmp_path):
    upstream = Upstream()
    first, _ = upstream.image("team/app", "1.0")
    upstream.image("team/app", "2.0")
    upstream.sign("team/app", first)

    collect_from(upstream, tmp_path, [APP, f"{UPSTREAM}/team/app:2.0"])

    assert len(upstream.sim.registry_requests("GET", "tags")) == 1
    # One request names a candidate tag: the one that exists (a HEAD, or a GET where pulls are not counted:
    # docs/collector.md, "Pull quotas").
    by_tag = [r for r in upstream.sim.registry_requests(kind="manifests") if "/manifests/sha256-" in r.url.path]
    assert [r.url.path.rsplit("/", 1)[-1] for r in by_tag] == [cosign_tag(first)]


def test_a_repository_whose_tags_cannot_be_listed_has_its_candidate_tags_asked_for_one_by_one(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    signature = upstream.sign("team/app", image)
    upstream.sim.fail(99, 403, match=lambda request: request.url.path.endswith("/tags/list"))

    result = collect_from(upstream, tmp_path, [APP])

    assert _by_digest(result)[signature.digest]["tag"] == cosign_tag(image)


def test_a_chain_of_attached_manifests_deeper_than_the_limit_is_refused(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    sbom = upstream.attach_sbom("team/app", image)
    upstream.sign("team/app", sbom.digest)

    with pytest.raises(InvalidDocumentError, match="max_attached_depth"):
        collect_from(upstream, tmp_path, [APP], limits=Limits(max_attached_depth=1))


def test_more_attached_manifests_on_one_subject_than_the_limit_are_refused(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    upstream.attach_sbom("team/app", image, "a")
    upstream.attach_sbom("team/app", image, "b")

    with pytest.raises(InvalidDocumentError, match="max_attached_per_subject"):
        collect_from(upstream, tmp_path, [APP], limits=Limits(max_attached_per_subject=1))


def test_a_referrers_answer_listing_a_manifest_of_another_subject_is_refused(tmp_path):
    upstream = Upstream(referrers=True)
    upstream.image("team/app", "1.0")
    other, _ = upstream.image("team/app", "2.0")
    sbom_of_other = upstream.attach_sbom("team/app", other)
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [sbom_of_other.descriptor()]}
    upstream.sim.referrers_body = json.dumps(index).encode()

    with pytest.raises(InvalidDocumentError, match="subject"):
        collect_from(upstream, tmp_path, [APP])


def test_a_tag_schema_index_whose_descriptor_misstates_the_size_is_refused(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    sbom = upstream.attach_sbom("team/app", image)
    descriptor = {**sbom.descriptor(), "size": sbom.size + 1}
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [descriptor]}
    upstream.sim.add_manifest("team/app", json.dumps(index).encode(), mt.OCI_INDEX, tag=tag_schema_tag(image))

    with pytest.raises(DigestMismatchError, match="descriptor says"):
        collect_from(upstream, tmp_path, [APP])


def test_a_tag_schema_tag_that_is_not_an_index_is_refused(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    other, _ = upstream.image("team/app", "2.0")
    upstream.sim.manifests["team/app"][tag_schema_tag(image)] = upstream.sim.manifests["team/app"][other]

    with pytest.raises(InvalidDocumentError, match="not an image index"):
        collect_from(upstream, tmp_path, [APP])


def test_attached_blobs_count_against_the_maximum_bundle_size(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    image_blobs = sum(len(data) for data in upstream.sim.blobs["team/app"].values())
    upstream.attach_sbom("team/app", image)

    with pytest.raises(UsageError, match="--max-bundle-size"):
        collect_from(upstream, tmp_path, [APP], max_bundle_size=image_blobs)


def test_a_platform_filter_that_leaves_signatures_pointing_at_nothing_is_reported_and_they_are_carried(tmp_path):
    upstream = Upstream()
    index = upstream.index("team/multi", "2.0")
    signature = upstream.sign("team/multi", index)

    result = collect_from(upstream, tmp_path, [f"{UPSTREAM}/team/multi:2.0"], platforms=["linux/amd64"])

    [warning] = result.summary()["warnings"]
    assert warning["code"] == ATTACHED_SUBJECT_FILTERED
    assert f"{UPSTREAM}/team/multi:2.0" in warning["message"] and "1 attached" in warning["message"]
    assert _by_digest(result)[signature.digest]["subject"] == index
    assert carried(result.out, index)  # the upstream index's exact bytes, for checking the narrowing offline
    assert result.inventory.file("blobs/sha256/" + index.removeprefix("sha256:")) is not None


def test_a_platform_filter_on_an_index_with_nothing_attached_warns_nothing_and_carries_no_upstream_index(tmp_path):
    upstream = Upstream()
    index = upstream.index("team/multi", "2.0")

    result = collect_from(upstream, tmp_path, [f"{UPSTREAM}/team/multi:2.0"], platforms=["linux/amd64"])

    assert result.summary()["warnings"] == []
    assert not carried(result.out, index)


def test_a_night_with_nothing_new_carries_no_attached_manifest_and_counts_them_unchanged(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    sbom = upstream.attach_sbom("team/app", image)
    first = collect_from(upstream, tmp_path, [APP], name="night1")

    second = collect_from(upstream, tmp_path, [APP], name="night2", since=first.out)

    assert [a.digest for a in attached_records(second.out)] == [sbom.digest]
    assert not any(carried(second.out, d) for d in [sbom.digest, *sbom.blobs])
    assert second.summary()["attached"] == {"added": 0, "unchanged": 1}


def test_a_signature_added_since_the_base_is_carried_and_counted_added(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    upstream.attach_sbom("team/app", image)
    first = collect_from(upstream, tmp_path, [APP], name="night1")
    signature = upstream.sign("team/app", image)

    second = collect_from(upstream, tmp_path, [APP], name="night2", since=first.out)

    assert all(carried(second.out, d) for d in [signature.digest, *signature.blobs])
    assert second.summary()["attached"] == {"added": 1, "unchanged": 1}
