"""Import pushes attached manifests after their subjects: by digest, then under cosign's tag or in the referrers tag
schema's index where the target does not index subjects itself; idempotent, and checked before the first write."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from mirror.errors import UsageError
from mirror.importer.run import ImportReport, import_bundle
from mirror.oci import mediatypes as mt
from mirror.supplychain.attached import SPDX_JSON
from tests.support.attach import Artifact, cosign_tag, tag_schema_tag
from tests.unit.attached_upstream import UPSTREAM, Upstream, collect_from
from tests.unit.registry_sim import RegistrySim

INTERNAL = "internal.test"
APP = f"{UPSTREAM}/team/app:1.0"


class Signed:
    """app:1.0 upstream with an SBOM (tag schema), a cosign signature of the SBOM and one of the image."""

    def __init__(self, tmp_path: Path) -> None:
        self.upstream = Upstream()
        self.image, self.image_size = self.upstream.image("team/app", "1.0")
        self.sbom = self.upstream.attach_sbom("team/app", self.image)
        self.on_sbom = self.upstream.sign("team/app", self.sbom.digest)
        self.on_image = self.upstream.sign("team/app", self.image)
        self.bundle = collect_from(self.upstream, tmp_path, [APP]).out


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    return Signed(tmp_path)


def _import(bundle: Path, internal: RegistrySim, *, dry_run: bool = False) -> ImportReport:
    return import_bundle(
        bundle, f"https://{INTERNAL}", allow_unsigned=True, dry_run=dry_run, transport=internal.transport()
    )


def _writes(requests: list[httpx.Request]) -> list[httpx.Request]:
    """Requests that change the registry: PUTs, chunks, mounts (not the push check's cancelled upload)."""
    return [r for r in requests if r.method in ("PUT", "PATCH") or "mount" in r.url.params]


def _fallback_index(internal: RegistrySim, subject: str) -> dict[str, object]:
    raw, media_type = internal.manifests["team/app"][tag_schema_tag(subject)]
    assert media_type == mt.OCI_INDEX
    return dict(json.loads(raw))


def test_attached_manifests_land_by_digest_after_their_subject(signed):
    internal = RegistrySim(INTERNAL)

    _import(signed.bundle, internal)

    puts = [r.url.path.rsplit("/", 1)[-1] for r in internal.registry_requests("PUT", "manifests")]
    attached = [signed.sbom.digest, signed.on_sbom.digest, signed.on_image.digest]
    assert all(digest in internal.manifests["team/app"] for digest in attached)
    assert puts.index("1.0") < min(puts.index(digest) for digest in attached)  # the image lands by its tag
    assert puts.index(signed.sbom.digest) < puts.index(signed.on_sbom.digest)


def test_on_a_registry_without_referrers_the_fallback_index_lists_what_is_attached(signed):
    internal = RegistrySim(INTERNAL)

    _import(signed.bundle, internal)

    assert _fallback_index(internal, signed.image)["manifests"] == [
        {
            "mediaType": mt.OCI_MANIFEST,
            "digest": signed.sbom.digest,
            "size": signed.sbom.size,
            "artifactType": SPDX_JSON,
            "annotations": signed.sbom.body["annotations"],
        }
    ]


def test_on_a_registry_with_referrers_no_fallback_index_is_written(signed):
    internal = RegistrySim(INTERNAL)
    internal.referrers = True

    _import(signed.bundle, internal)

    assert tag_schema_tag(signed.image) not in internal.manifests["team/app"]
    client_view = internal.handle(
        httpx.Request("GET", f"https://{INTERNAL}/v2/team/app/referrers/{signed.image}")
    ).read()
    assert [d["digest"] for d in json.loads(client_view)["manifests"]] == [signed.sbom.digest]


def test_cosign_signatures_land_under_their_tags(signed):
    internal = RegistrySim(INTERNAL)

    _import(signed.bundle, internal)

    landed = internal.manifests["team/app"]
    assert landed[cosign_tag(signed.image)][0] == signed.on_image.manifest
    assert landed[cosign_tag(signed.sbom.digest)][0] == signed.on_sbom.manifest


def test_the_import_report_counts_attached_manifests(signed):
    report = _import(signed.bundle, RegistrySim(INTERNAL))

    assert report.to_json()["attached"] == {"pushed": 3, "present": 0, "tagsWritten": 2, "indexesWritten": 1}


def test_a_second_import_of_the_same_bundle_writes_nothing_and_counts_them_present(signed):
    internal = RegistrySim(INTERNAL)
    _import(signed.bundle, internal)
    before = len(internal.requests)

    report = _import(signed.bundle, internal)

    assert _writes(internal.requests[before:]) == []
    assert report.to_json()["attached"] == {"pushed": 0, "present": 3, "tagsWritten": 0, "indexesWritten": 0}
    assert len(_fallback_index(internal, signed.image)["manifests"]) == 1


def test_the_fallback_index_keeps_what_it_listed_and_gains_the_new_manifest(signed):
    internal = RegistrySim(INTERNAL)
    other = {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "e" * 64, "size": 10, "artifactType": "x/y"}
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [other]}
    internal.add_manifest("team/app", json.dumps(index).encode(), mt.OCI_INDEX, tag=tag_schema_tag(signed.image))

    _import(signed.bundle, internal)

    assert [d["digest"] for d in _fallback_index(internal, signed.image)["manifests"]] == [
        other["digest"],
        signed.sbom.digest,
    ]


def test_a_dry_run_writes_nothing_and_says_what_it_would_push(signed):
    internal = RegistrySim(INTERNAL)

    report = _import(signed.bundle, internal, dry_run=True)

    assert _writes(internal.requests) == []
    assert report.to_json()["attached"]["pushed"] == 3


def test_a_fallback_tag_that_is_not_an_index_is_refused_before_anything_is_written(signed):
    internal = RegistrySim(INTERNAL)
    squatter = Artifact(signed.on_image.manifest, signed.on_image.blobs)
    internal.add_artifact("team/app", squatter.manifest, squatter.blobs, tag=tag_schema_tag(signed.image))
    before = len(internal.requests)

    with pytest.raises(UsageError) as info:
        _import(signed.bundle, internal)

    assert tag_schema_tag(signed.image) in str(info.value)
    assert _writes(internal.requests[before:]) == []


def test_an_incremental_bundle_pushes_the_new_signature_and_leaves_the_unchanged_sbom(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    upstream.attach_sbom("team/app", image)
    first = collect_from(upstream, tmp_path, [APP], name="night1")
    signature = upstream.sign("team/app", image)
    second = collect_from(upstream, tmp_path, [APP], name="night2", since=first.out)
    internal = RegistrySim(INTERNAL)
    _import(first.out, internal)

    report = _import(second.out, internal)

    assert internal.manifests["team/app"][cosign_tag(image)][0] == signature.manifest
    assert report.to_json()["attached"] == {"pushed": 1, "present": 1, "tagsWritten": 1, "indexesWritten": 0}


def test_what_is_attached_to_an_index_a_platform_filter_narrowed_lands_beside_the_narrowed_index(tmp_path):
    upstream = Upstream()
    index = upstream.index("team/multi", "2.0")
    signature = upstream.sign("team/multi", index)
    bundle = collect_from(upstream, tmp_path, [f"{UPSTREAM}/team/multi:2.0"], platforms=["linux/amd64"]).out
    internal = RegistrySim(INTERNAL)

    _import(bundle, internal)

    assert internal.manifests["team/multi"][cosign_tag(index)][0] == signature.manifest
