"""Collect's check of upstream signatures, between the download and the inventory: the MirrorSet's rules over the
images and the attached manifests in the staging layout; a refusal (exit 3) names every image; verified signers
and the trusted roots of keyless rules go into the inventory."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest

import mirror.supplychain
from mirror.bundle.inventory import ArtifactRecord
from mirror.bundle.layout import LayoutWriter
from mirror.collector.upstream import verify_upstream
from mirror.errors import UsageError, VerificationError
from mirror.manifest.load import load_mirrorsets
from mirror.supplychain import codes
from mirror.supplychain.attached import COSIGN_SIGNATURE, FOUND_COSIGN_TAG, TRUSTED_ROOT, attached_record
from mirror.supplychain.cosign import cosign_key_from_pem
from tests.support import cosign
from tests.support.images import OCI_MANIFEST, sha256_digest

HOST = "registry.example"


class Staging:
    def __init__(self, root: Path) -> None:
        self.writer = LayoutWriter(root / "layout")
        self.artifacts: list[ArtifactRecord] = []

    def image(self, path: str) -> ArtifactRecord:
        raw = f'{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","image":"{path}"}}'.encode()
        self.writer.put_bytes(sha256_digest(raw), raw)
        artifact = ArtifactRecord("image", f"{HOST}/{path}:1.0", sha256_digest(raw), OCI_MANIFEST, len(raw), {})
        self.artifacts.append(artifact)
        return artifact

    def sign(self, image: ArtifactRecord, key: cosign.PrivateKey) -> None:
        repository = image.source.rsplit(":", 1)[0]
        manifest = cosign.signature_manifest([cosign.signed_layer(key, repository, image.digest)])
        for digest, data in {**manifest.blobs, manifest.digest: manifest.raw}.items():
            self.writer.put_bytes(digest, data)
        self.artifacts.append(
            attached_record(
                repository,
                manifest.digest,
                OCI_MANIFEST,
                len(manifest.raw),
                subject=image.digest,
                artifact_type=COSIGN_SIGNATURE,
                found=FOUND_COSIGN_TAG,
                image=image.source,
                tag=cosign.cosign_tag(image.digest),
            )
        )


def mirrorset(tmp_path: Path, spec: str):
    path = tmp_path / "set.yaml"
    path.write_text(
        "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: t}\nspec:\n"
        + textwrap.indent(textwrap.dedent(spec), "  ")
    )
    return load_mirrorsets([path])


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    return Staging(tmp_path)


@pytest.fixture
def key(tmp_path: Path) -> cosign.PrivateKey:
    private = cosign.generate_key()
    cosign.write_public_key(private, tmp_path / "upstream.pub")
    return private


def key_id(private: cosign.PrivateKey) -> str:
    return cosign_key_from_pem(cosign.public_pem(private), "k").key_id


SIGNED_TEAM = f'images: [{HOST}/team/app:1.0]\nverify: [{{match: "{HOST}/team/*", key: upstream.pub}}]\n'


def test_a_signed_image_records_its_verified_signer(tmp_path, staging, key):
    image = staging.image("team/app")
    staging.sign(image, key)
    checked = verify_upstream(mirrorset(tmp_path, SIGNED_TEAM), staging.artifacts, staging.writer)
    [recorded] = [a for a in checked.artifacts if a.kind == "image"]
    assert recorded.extra["signers"] == [{"key": key_id(key)}]


def test_without_rules_nothing_is_read_and_nothing_changes(tmp_path, staging):
    staging.image("team/app")
    checked = verify_upstream(mirrorset(tmp_path, "images: [nginx]\n"), staging.artifacts, staging.writer)
    assert checked.artifacts == staging.artifacts
    assert checked.read == set()


def test_an_unsigned_image_under_a_rule_refuses_the_collect_naming_it(tmp_path, staging, key):
    signed, unsigned = staging.image("team/app"), staging.image("team/db")
    staging.sign(signed, key)
    with pytest.raises(VerificationError) as caught:
        verify_upstream(mirrorset(tmp_path, SIGNED_TEAM), staging.artifacts, staging.writer)
    assert caught.value.exit_code == 3
    [problem] = caught.value.problems
    assert problem.code == codes.SIGNATURE_MISSING
    assert unsigned.source in problem.message


def test_every_image_without_a_valid_signature_is_listed(tmp_path, staging, key):
    staging.image("team/app")
    staging.sign(staging.image("team/db"), cosign.generate_key())
    with pytest.raises(VerificationError) as caught:
        verify_upstream(mirrorset(tmp_path, SIGNED_TEAM), staging.artifacts, staging.writer)
    assert sorted(p.code for p in caught.value.problems) == [codes.SIGNATURE_INVALID, codes.SIGNATURE_MISSING]


def test_an_image_outside_the_glob_needs_no_signature(tmp_path, staging, key):
    staging.image("other/app")
    checked = verify_upstream(mirrorset(tmp_path, SIGNED_TEAM), staging.artifacts, staging.writer)
    assert "signers" not in checked.artifacts[0].extra


def test_an_image_s_own_empty_rules_exempt_it(tmp_path, staging, key):
    staging.image("team/app")
    spec = f'images: [{{ref: "{HOST}/team/app:1.0", verify: []}}]\nverify: [{{match: "*", key: upstream.pub}}]\n'
    verify_upstream(mirrorset(tmp_path, spec), staging.artifacts, staging.writer)


def test_an_image_s_own_rules_replace_the_spec_rules(tmp_path, staging, key):
    other = cosign.generate_key()
    cosign.write_public_key(other, tmp_path / "other.pub")
    image = staging.image("team/app")
    staging.sign(image, other)
    spec = (
        f'images: [{{ref: "{HOST}/team/app:1.0", verify: [{{key: other.pub}}]}}]\n'
        'verify: [{match: "*", key: upstream.pub}]\n'
    )
    checked = verify_upstream(mirrorset(tmp_path, spec), staging.artifacts, staging.writer)
    assert checked.artifacts[0].extra["signers"] == [{"key": key_id(other)}]


def test_the_blobs_read_are_told_so_an_incremental_bundle_keeps_them(tmp_path, staging, key):
    image = staging.image("team/app")
    staging.sign(image, key)
    checked = verify_upstream(mirrorset(tmp_path, SIGNED_TEAM), staging.artifacts, staging.writer)
    attached = staging.artifacts[-1]
    assert attached.digest in checked.read
    assert image.digest not in checked.read  # the image itself is not read: only what signs it


# --- keyless: the trusted root travels in the bundle --------------------------------------------------------------


@pytest.fixture
def keyless(monkeypatch):
    module = types.ModuleType("mirror.supplychain.keyless")
    loaded: list[bytes] = []

    def load_trusted_root(raw: bytes, where: str) -> object:
        if raw == b"junk":
            raise UsageError(f"{where}: not a trusted root")
        loaded.append(raw)
        return "ROOT"

    module.__dict__.update(load_trusted_root=load_trusted_root)
    monkeypatch.setitem(sys.modules, "mirror.supplychain.keyless", module)
    monkeypatch.setattr(mirror.supplychain, "keyless", module, raising=False)
    return loaded


KEYLESS = (
    f"images: [{HOST}/team/app:1.0]\ntrustedRoot: root.json\n"
    'verify: [{match: "nothing/*", issuer: "https://i", identity: "me"}]\n'
)


def test_the_trusted_root_of_a_keyless_rule_is_carried_as_an_artifact(tmp_path, staging, keyless):
    (tmp_path / "root.json").write_bytes(b'{"mediaType": "root"}')
    staging.image("team/app")
    checked = verify_upstream(mirrorset(tmp_path, KEYLESS), staging.artifacts, staging.writer)
    [root] = [a for a in checked.artifacts if a.kind == "trusted-root"]
    assert root.digest == sha256_digest(b'{"mediaType": "root"}')
    assert root.media_type == TRUSTED_ROOT
    assert staging.writer.has(root.digest)
    assert root.digest in checked.read
    assert keyless == [b'{"mediaType": "root"}']


def test_a_trusted_root_that_does_not_load_is_a_usage_error_naming_the_file(tmp_path, staging, keyless):
    (tmp_path / "root.json").write_bytes(b"junk")
    staging.image("team/app")
    with pytest.raises(UsageError, match=r"root\.json"):
        verify_upstream(mirrorset(tmp_path, KEYLESS), staging.artifacts, staging.writer)


def test_sigstore_s_production_trusted_root_loads_and_is_carried_byte_for_byte(tmp_path, staging):
    from tests.support import sigstore_data

    (tmp_path / "root.json").write_bytes(sigstore_data.trusted_root_bytes())
    staging.image("team/app")
    checked = verify_upstream(mirrorset(tmp_path, KEYLESS), staging.artifacts, staging.writer)
    [root] = [a for a in checked.artifacts if a.kind == "trusted-root"]
    assert staging.writer.blob_location(root.digest).read_bytes() == sigstore_data.trusted_root_bytes()


def test_an_oci_chart_under_a_rule_needs_a_signature_like_an_image(tmp_path, staging, key):
    image = staging.image("team/chart")
    staging.artifacts[-1] = ArtifactRecord("chart", image.source, image.digest, OCI_MANIFEST, image.size, {})
    with pytest.raises(VerificationError) as caught:
        verify_upstream(mirrorset(tmp_path, SIGNED_TEAM), staging.artifacts, staging.writer)
    assert [p.code for p in caught.value.problems] == [codes.SIGNATURE_MISSING]


def test_a_signed_oci_chart_records_its_verified_signer(tmp_path, staging, key):
    image = staging.image("team/chart")
    staging.artifacts[-1] = chart = ArtifactRecord("chart", image.source, image.digest, OCI_MANIFEST, image.size, {})
    staging.sign(chart, key)
    checked = verify_upstream(mirrorset(tmp_path, SIGNED_TEAM), staging.artifacts, staging.writer)
    [recorded] = [a for a in checked.artifacts if a.kind == "chart"]
    assert recorded.extra["signers"] == [{"key": key_id(key)}]


def test_a_chart_from_an_http_repository_is_not_judged_by_the_rules(tmp_path, staging, key):
    chart = ArtifactRecord("chart", "https://charts.example/app-1.0.tgz", "sha256:" + "c" * 64, OCI_MANIFEST, 1, {})
    staging.artifacts.append(chart)
    spec = f'images: [{HOST}/team/app:1.0]\nverify: [{{match: "*", key: upstream.pub}}]\n'
    checked = verify_upstream(mirrorset(tmp_path, spec), staging.artifacts, staging.writer)
    assert checked.artifacts == staging.artifacts
