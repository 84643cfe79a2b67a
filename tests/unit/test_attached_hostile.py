"""Hostile attached manifests, from an upstream or in a bundle: what they must not make collect or import do
(write a tag the bundle does not carry, refuse after a write, read without bound, crash)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from mirror.bundle.inventory import ArtifactRecord
from mirror.collector.run import collect
from mirror.errors import MirrorError, UsageError
from mirror.importer.run import import_bundle
from mirror.limits import DEFAULT_LIMITS
from mirror.oci import mediatypes as mt
from mirror.oci.digest import sha256_digest
from mirror.review.html import review_html
from mirror.review.jsonout import review_json
from mirror.review.model import build_review
from mirror.review.text import review_text
from mirror.supplychain.attached import COSIGN_SIGNATURE, FOUND_COSIGN_TAG, attached_record
from tests.support import cosign as cosign_keys
from tests.support.attach import Artifact, cosign_signature, cosign_tag
from tests.support.signedbundles import SmallBundle
from tests.unit.attached_upstream import UPSTREAM, Upstream, collect_from
from tests.unit.registry_sim import RegistrySim

INTERNAL = "internal.test"
APP = f"{UPSTREAM}/team/app:1.0"


def _with_subject(artifact: Artifact, digest: str) -> Artifact:
    """`artifact` with a `subject` naming `digest` (whatever that string is)."""
    body = artifact.body
    body["subject"] = {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": 1}
    return Artifact(json.dumps(body, separators=(",", ":")).encode(), artifact.blobs)


def _writes(requests: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in requests if r.method in ("PUT", "PATCH", "DELETE") or "mount" in r.url.params]


def _bundle_with_cosign_manifest(root: Path, signature: Artifact) -> tuple[SmallBundle, str]:
    """registry.example/team/app:1.0 and `signature` recorded as found under its cosign tag."""
    bundle = SmallBundle(root)
    bundle.image("registry.example/team/app:1.0")
    image = bundle.artifacts[0].digest
    for data in signature.blobs.values():
        bundle.blob(data)
    bundle.blob(signature.manifest)
    bundle.index.append({"mediaType": mt.OCI_MANIFEST, "digest": signature.digest, "size": signature.size})
    bundle.artifacts.append(
        attached_record(
            "registry.example/team/app",
            signature.digest,
            mt.OCI_MANIFEST,
            signature.size,
            subject=image,
            artifact_type=COSIGN_SIGNATURE,
            found=FOUND_COSIGN_TAG,
            image="registry.example/team/app:1.0",
            tag=cosign_tag(image),
        )
    )
    bundle.finish()
    return bundle, image


def _target_with_latest() -> RegistrySim:
    """A target whose team/app:latest is a multi-platform index (of another version)."""
    other = Upstream()
    other.index("team/app", "latest")
    internal = RegistrySim(INTERNAL)
    internal.manifests["team/app"] = dict(other.sim.manifests["team/app"])
    return internal


# --- a `subject` that is not a digest, or not the one the manifest is attached to -------------------------------


def test_collect_refuses_a_cosign_tag_manifest_whose_subject_is_another_manifest(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    hostile = _with_subject(cosign_signature(image, f"{UPSTREAM}/team/app"), "latest")
    upstream.sim.add_artifact("team/app", hostile.manifest, hostile.blobs, tag=cosign_tag(image))

    with pytest.raises(MirrorError) as info:
        collect_from(upstream, tmp_path, [APP])

    assert info.value.exit_code == 3
    assert cosign_tag(image) in str(info.value)
    assert not (tmp_path / "bundle").exists()


def test_an_attached_manifest_naming_a_tag_as_its_subject_moves_no_tag_on_the_target(tmp_path):
    signature = _with_subject(cosign_signature("sha256:" + "e" * 64, "registry.example/team/app"), "latest")
    bundle, _ = _bundle_with_cosign_manifest(tmp_path / "b", signature)
    internal = _target_with_latest()
    latest = internal.manifests["team/app"]["latest"]
    before = len(internal.requests)

    with pytest.raises(MirrorError) as info:
        import_bundle(bundle.root, f"https://{INTERNAL}", allow_unsigned=True, transport=internal.transport())

    assert info.value.exit_code == 3
    assert "subject" in str(info.value.problems)
    assert internal.manifests["team/app"]["latest"] == latest
    assert _writes(internal.requests[before:]) == []


def test_an_attached_manifest_naming_the_image_s_own_tag_as_its_subject_is_refused_before_any_write(tmp_path):
    signature = _with_subject(cosign_signature("sha256:" + "e" * 64, "registry.example/team/app"), "1.0")
    bundle, _ = _bundle_with_cosign_manifest(tmp_path / "b", signature)
    internal = RegistrySim(INTERNAL)

    with pytest.raises(MirrorError) as info:
        import_bundle(bundle.root, f"https://{INTERNAL}", allow_unsigned=True, transport=internal.transport())

    assert info.value.exit_code == 3
    assert _writes(internal.requests) == []


# --- inspect of an unchecked bundle ---------------------------------------------------------------------------


def test_inspect_lists_an_attached_record_without_subject_or_image_as_attached_to_nothing(tmp_path):
    bundle = SmallBundle(tmp_path / "b")
    bundle.image("registry.example/team/app:1.0")
    image = bundle.artifacts[0]
    source = f"registry.example/team/app@{image.digest}"
    bundle.artifacts.append(ArtifactRecord("attached", source, image.digest, image.media_type, image.size, {}))
    bundle.finish()

    review = build_review(bundle.root)

    assert f"{source} (subject )" in review_text(review)
    assert review_json(review)["supplyChain"]["unplaced"][0]["subject"] == ""
    assert source in review_html(review)


# --- bounds ----------------------------------------------------------------------------------------------------


def test_what_is_attached_to_one_image_is_bounded_in_all_not_only_per_manifest_and_level(tmp_path):
    # Three SBOMs on the image, three on each of those, three on each of those: within max_attached_per_subject
    # and max_attached_depth everywhere, but a fan-out that grows as per_subject ** depth.
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    level = [image]
    for _ in range(3):
        level = [upstream.attach_sbom("team/app", s, name=f"{s[-6:]}-{i}").digest for s in level for i in range(3)]
    limits = dataclasses.replace(
        DEFAULT_LIMITS, max_attached_per_subject=3, max_attached_depth=4, max_attached_per_image=10
    )
    before = len(upstream.sim.requests)

    with pytest.raises(MirrorError) as info:
        collect_from(upstream, tmp_path, [APP], limits=limits)

    assert info.value.exit_code == 3
    assert "max_attached_per_image" in str(info.value)
    fetched = [r for r in upstream.sim.requests[before:] if r.method == "GET" and "/manifests/sha256:" in r.url.path]
    assert len(fetched) <= 1 + 10 + 3  # the image, what the limit lets through, one subject's list beyond it


def _signed_with_a_big_layer(upstream: Upstream, image: str, size: int) -> str:
    """A `.sig` of `image` whose one simple-signing layer is `size` bytes; the layer's digest."""
    signature = cosign_signature(image, f"{UPSTREAM}/team/app")
    body = signature.body
    payload = b" " * size
    body["layers"][0].update(digest=sha256_digest(payload), size=size)
    blobs = {**signature.blobs, sha256_digest(payload): payload}
    big = Artifact(json.dumps(body, separators=(",", ":")).encode(), blobs)
    upstream.sim.add_artifact("team/app", big.manifest, big.blobs, tag=cosign_tag(image))
    return sha256_digest(payload)


def _blob_gets(upstream: Upstream, digest: str) -> list[httpx.Request]:
    return [r for r in upstream.sim.requests if r.method == "GET" and r.url.path.endswith(f"/blobs/{digest}")]


def test_a_signature_layer_is_not_downloaded_before_max_bundle_size_refuses_the_collect(tmp_path):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    layer = _signed_with_a_big_layer(upstream, image, 300_000)

    with pytest.raises(UsageError) as info:
        collect_from(upstream, tmp_path, [APP], max_bundle_size=200_000)

    assert "nothing was downloaded" in str(info.value)
    assert _blob_gets(upstream, layer) == []


def test_a_signature_layer_too_large_to_verify_is_not_downloaded_before_the_signature_check(tmp_path, monkeypatch):
    upstream = Upstream()
    image, _ = upstream.image("team/app", "1.0")
    layer = _signed_with_a_big_layer(upstream, image, 300_000)
    key = cosign_keys.generate_key()
    cosign_keys.write_public_key(key, tmp_path / "upstream.pub")
    mirrorset = tmp_path / "set.yaml"
    mirrorset.write_text(
        "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: t}\n"
        f"spec:\n  images: [{APP}]\n  verify: [{{match: '*', key: upstream.pub}}]\n"
    )
    limits = dataclasses.replace(DEFAULT_LIMITS, max_sigstore_bundle_bytes=100_000)

    with pytest.raises(MirrorError) as info:
        collect([mirrorset], tmp_path / "bundle", transport=upstream.sim.transport(), limits=limits)

    assert info.value.exit_code == 3
    assert "max_sigstore_bundle_bytes" in str(info.value.problems)
    assert _blob_gets(upstream, layer) == []
