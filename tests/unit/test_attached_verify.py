"""Bundle verification of attached manifests: checked like image graphs, listed apart from the images, and refused
when attached to something the bundle does not carry, or carried in another repository than their subject."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mirror.bundle.opening import open_bundle
from mirror.bundle.verify import VerifiedBundle, check_bundle
from tests.support.attach import cosign_tag
from tests.unit.attached_upstream import UPSTREAM, Upstream, collect_from

APP = f"{UPSTREAM}/team/app:1.0"


def _signed_app_with_sbom(tmp_path: Path) -> tuple[Upstream, Path, dict[str, str]]:
    """app:1.0 with an SBOM (tag schema), a signature of the SBOM and one of the image (cosign tags)."""
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    sbom = upstream.attach_sbom("team/app", image)
    on_sbom = upstream.sign("team/app", sbom.digest)
    on_image = upstream.sign("team/app", image)
    bundle = collect_from(upstream, tmp_path, [APP]).out
    return (
        upstream,
        bundle,
        {"image": image, "sbom": sbom.digest, "on_sbom": on_sbom.digest, "on_image": on_image.digest},
    )


def _check(bundle: Path) -> VerifiedBundle:
    return check_bundle(open_bundle(bundle), jobs=1)


def _edit_record(bundle: Path, digest: str, **changes: Any) -> None:
    path = bundle / "inventory.json"
    inventory = json.loads(path.read_bytes())
    [record] = [a for a in inventory["artifacts"] if a["digest"] == digest]
    record.update(changes)
    path.write_text(json.dumps(inventory))


def _codes(checked: VerifiedBundle) -> list[str]:
    return [p.code for p in checked.problems]


def test_attached_manifests_are_verified_and_listed_apart_from_the_images(tmp_path):
    _, bundle, digests = _signed_app_with_sbom(tmp_path)

    checked = _check(bundle)

    assert checked.problems == []
    assert [i.artifact.source for i in checked.images] == [APP]
    assert {a.artifact.digest for a in checked.attached} == {digests["sbom"], digests["on_sbom"], digests["on_image"]}
    assert all(a.carried and a.blobs for a in checked.attached)


def test_an_attached_blob_missing_from_the_bundle_is_a_graph_problem(tmp_path):
    _, bundle, digests = _signed_app_with_sbom(tmp_path)
    layer = json.loads((bundle / "blobs/sha256" / digests["sbom"].removeprefix("sha256:")).read_bytes())["layers"][0]
    path = "blobs/sha256/" + layer["digest"].removeprefix("sha256:")
    inventory = json.loads((bundle / "inventory.json").read_bytes())
    inventory["files"] = [f for f in inventory["files"] if f["path"] != path]
    (bundle / "inventory.json").write_text(json.dumps(inventory))
    (bundle / path).unlink()

    checked = _check(bundle)

    assert _codes(checked) == ["GRAPH_INVALID"]
    assert layer["digest"] in checked.problems[0].message


def test_an_attached_record_whose_subject_the_bundle_does_not_carry_is_refused(tmp_path):
    _, bundle, digests = _signed_app_with_sbom(tmp_path)
    nothing = "sha256:" + "0" * 64
    _edit_record(bundle, digests["on_image"], subject=nothing, tag=cosign_tag(nothing))

    checked = _check(bundle)

    assert _codes(checked) == ["ATTACHED_SUBJECT_UNKNOWN"]
    assert digests["on_image"] in checked.problems[0].message


def test_an_attached_record_in_another_repository_than_its_subject_is_refused(tmp_path):
    _, bundle, digests = _signed_app_with_sbom(tmp_path)
    _edit_record(bundle, digests["on_image"], source=f"{UPSTREAM}/team/other@{digests['on_image']}")

    assert _codes(_check(bundle)) == ["ATTACHED_REPOSITORY_MISMATCH"]


def test_an_attached_record_whose_manifest_names_another_subject_is_refused(tmp_path):
    _, bundle, digests = _signed_app_with_sbom(tmp_path)
    _edit_record(bundle, digests["sbom"], subject=digests["on_image"])  # carried, but not what the SBOM names

    assert _codes(_check(bundle)) == ["ATTACHED_RECORD_INVALID"]


def test_an_attached_record_whose_source_is_not_pinned_to_its_digest_is_refused(tmp_path):
    _, bundle, digests = _signed_app_with_sbom(tmp_path)
    _edit_record(bundle, digests["on_image"], source=f"{UPSTREAM}/team/app:latest")

    assert _codes(_check(bundle)) == ["ATTACHED_RECORD_INVALID"]


def test_a_cosign_tag_not_named_for_its_subject_is_refused(tmp_path):
    _, bundle, digests = _signed_app_with_sbom(tmp_path)
    _edit_record(bundle, digests["on_image"], tag="1.0")  # would move the image's own tag on import

    checked = _check(bundle)

    assert _codes(checked) == ["ATTACHED_RECORD_INVALID"]
    assert "'1.0'" in checked.problems[0].message


def test_an_attached_record_found_in_an_unknown_way_is_refused(tmp_path):
    _, bundle, digests = _signed_app_with_sbom(tmp_path)
    _edit_record(bundle, digests["sbom"], found="guessed")

    assert _codes(_check(bundle)) == ["ATTACHED_RECORD_INVALID"]


def test_what_is_attached_to_a_narrowed_index_upstream_is_accepted_with_the_upstream_index_carried(tmp_path):
    upstream = Upstream()
    index = upstream.index("team/multi", "2.0")
    signature = upstream.sign("team/multi", index)
    bundle = collect_from(upstream, tmp_path, [f"{UPSTREAM}/team/multi:2.0"], platforms=["linux/amd64"]).out

    checked = _check(bundle)

    assert checked.problems == []
    assert [a.artifact.digest for a in checked.attached] == [signature.digest]


def test_an_incremental_bundle_expects_unchanged_attached_manifests_from_its_base(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    sbom = upstream.attach_sbom("team/app", image)
    first = collect_from(upstream, tmp_path, [APP], name="night1")
    second = collect_from(upstream, tmp_path, [APP], name="night2", since=first.out)

    checked = _check(second.out)

    assert checked.problems == []
    [attached] = checked.attached
    assert not attached.carried
    assert attached.expected_manifests == {sbom.digest: sbom.size}
