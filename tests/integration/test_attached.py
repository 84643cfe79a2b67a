"""Signatures and SBOMs travel with their image: a real upstream (distribution 2.8, which has no referrers API, so
the referrers tag schema stands in for it) holds an image with an SPDX SBOM attached as an OCI 1.1 manifest, a
cosign-style signature under `sha256-<hex>.sig` and a signature of the SBOM; collect carries them, import lands
them on the real internal registry, and skopeo, an independent reader, finds them there. Night after night,
`--since` carries only what is new."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.support.attach import Artifact, Attacher, cosign_tag, sbom, subject_descriptor, tag_schema_tag
from tests.support.images import Image, Layer, Layout, inspect_raw, push
from tests.support.mirrorsets import write_mirrorset
from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM_SETTINGS = {UPSTREAM_REGISTRY: {"plainHTTP": True}}


class SignedImage:
    """app:1.0 in a namespace of its own upstream, with an SBOM, a signature of the image and one of the SBOM."""

    def __init__(self, services, tmp_path: Path) -> None:
        self.namespace = f"attached{uuid.uuid4().hex[:8]}"
        self.repository = f"{self.namespace}/app"
        self.reference = f"{services.upstream}/{self.repository}"
        layout = Layout(tmp_path / "upstream-layout")
        self.image = Image([Layer.from_seed(f"{self.namespace}/app")], labels={"seed": self.namespace})
        layout.add("app", self.image)
        push(layout.path, "app", f"{self.reference}:1.0")
        self.attacher = Attacher(services.upstream)
        self.sbom = sbom(subject_descriptor(self.image.digest, len(self.image.manifest.data)))
        self.attacher.attach(self.repository, self.sbom)
        self.signature = self.sign(self.image.digest, b"first")
        self.sbom_signature = self.sign(self.sbom.digest, b"of the sbom")

    def sign(self, subject: str, signature: bytes) -> Artifact:
        return self.attacher.sign(self.repository, subject, self.reference, signature)


@pytest.fixture
def signed(services, tmp_path):
    image = SignedImage(services, tmp_path)
    yield image
    image.attacher.close()


def _collect(mirror_cli, tmp_path: Path, signed: SignedImage, name: str, *extra: object) -> dict:
    manifest = write_mirrorset(tmp_path / f"{name}.yaml", [f"{signed.reference}:1.0"], registries=UPSTREAM_SETTINGS)
    result = mirror_cli("collect", manifest, "-o", tmp_path / name, "--json", "-q", *extra)
    assert result.exit_code == 0, result.stderr
    return dict(result.json())


def _import(mirror_cli, bundle: Path, services, url: str, env: dict) -> CliResult:
    result = mirror_cli(
        "import", bundle, "--registry", url, "--allow-unsigned", "--ca-file", services.ca_file, "--json", "-q",
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return result


def _landed(services, target: str) -> bytes:
    creds = (services.internal_user, services.internal_password)
    return inspect_raw(target, tls_verify=True, creds=creds, cert_dir=services.cert_dir)


def _carried(bundle: Path) -> set[str]:
    return {f"sha256:{p.name}" for p in (bundle / "blobs" / "sha256").iterdir()}


def test_collect_carries_the_sbom_and_both_signatures_attached_to_their_subjects(mirror_cli, tmp_path, signed):
    summary = _collect(mirror_cli, tmp_path, signed, "n1")

    attached = {a["digest"]: a for a in summary["artifacts"] if a["kind"] == "attached"}
    assert {d: (a["subject"], a["found"]) for d, a in attached.items()} == {
        signed.sbom.digest: (signed.image.digest, "tag-schema"),
        signed.signature.digest: (signed.image.digest, "cosign-tag"),
        signed.sbom_signature.digest: (signed.sbom.digest, "cosign-tag"),
    }
    blobs = {d for a in (signed.sbom, signed.signature, signed.sbom_signature) for d in [a.digest, *a.blobs]}
    assert blobs <= _carried(tmp_path / "n1")


def test_import_lands_the_signature_beside_the_image_and_the_fallback_index_listing_the_sbom(
    mirror_cli, tmp_path, signed, services, internal_env, internal_url
):
    _collect(mirror_cli, tmp_path, signed, "n1")

    _import(mirror_cli, tmp_path / "n1", services, internal_url, internal_env)

    target = f"{internal_url.removeprefix('https://')}/{signed.repository}"
    assert _landed(services, f"{target}:{cosign_tag(signed.image.digest)}") == signed.signature.manifest
    assert _landed(services, f"{target}:{cosign_tag(signed.sbom.digest)}") == signed.sbom_signature.manifest
    index = json.loads(_landed(services, f"{target}:{tag_schema_tag(signed.image.digest)}"))
    assert [d["digest"] for d in index["manifests"]] == [signed.sbom.digest]
    assert _landed(services, f"{target}@{signed.sbom.digest}") == signed.sbom.manifest


def test_a_second_import_of_the_same_bundle_finds_them_all_present(
    mirror_cli, tmp_path, signed, services, internal_env, internal_url
):
    _collect(mirror_cli, tmp_path, signed, "n1")
    _import(mirror_cli, tmp_path / "n1", services, internal_url, internal_env)

    again = _import(mirror_cli, tmp_path / "n1", services, internal_url, internal_env).json()

    assert again["attached"] == {"pushed": 0, "present": 3, "tagsWritten": 0, "indexesWritten": 0}


def test_a_night_with_nothing_new_carries_nothing_and_one_with_a_new_signature_carries_it(
    mirror_cli, tmp_path, signed, services, internal_env, internal_url
):
    _collect(mirror_cli, tmp_path, signed, "n1")
    quiet = _collect(mirror_cli, tmp_path, signed, "n2", "--since", tmp_path / "n1")
    resigned = signed.sign(signed.image.digest, b"second")  # cosign adds a signature: the .sig tag moves
    busy = _collect(mirror_cli, tmp_path, signed, "n3", "--since", tmp_path / "n2.inventory.json")

    assert quiet["attached"] == {"added": 0, "unchanged": 3}
    assert _carried(tmp_path / "n2") == set()
    assert busy["attached"] == {"added": 1, "unchanged": 2}
    assert _carried(tmp_path / "n3") == {resigned.digest, *resigned.blobs} - {*signed.signature.blobs}
    for night in ("n1", "n2", "n3"):
        _import(mirror_cli, tmp_path / night, services, internal_url, internal_env)
    target = f"{internal_url.removeprefix('https://')}/{signed.repository}"
    assert _landed(services, f"{target}:{cosign_tag(signed.image.digest)}") == resigned.manifest
