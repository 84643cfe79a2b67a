"""The signature check with real keyless signatures (tests/data/sigstore): a cosign v3 Sigstore bundle attached
as a referrer, and cosign's classic keyless layout at `.sig`, judged under keyless rules against the production
trusted root, offline."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import MirrorError
from mirror.limits import DEFAULT_LIMITS
from mirror.supplychain import codes
from mirror.supplychain.attached import (
    COSIGN_SIGNATURE,
    FOUND_COSIGN_TAG,
    FOUND_REFERRERS,
    SIGSTORE_BUNDLE,
    attached_by_subject,
    attached_record,
)
from mirror.supplychain.check import check_signatures
from mirror.supplychain.roots import load_trusted_root
from mirror.supplychain.rules import VerifyRule
from tests.support import cosign, sigstore_data
from tests.support.images import OCI_MANIFEST

ROOT = Path("trusted_root.json")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the keyless check opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def rule(identity: str) -> VerifyRule:
    return VerifyRule(
        "set.yaml: spec.verify[0]", "*", issuer=sigstore_data.GITHUB_ISSUER, identity=identity, trusted_root=ROOT
    )


def check(subject: str, manifest: cosign.SignatureManifest, artifact_type: str, identity: str, digest: str = ""):
    image = ArtifactRecord("image", "ghcr.io/team/app:1.0", digest or subject, OCI_MANIFEST, 1234)
    found = FOUND_REFERRERS if artifact_type == SIGSTORE_BUNDLE else FOUND_COSIGN_TAG
    record = attached_record(
        "ghcr.io/team/app",
        manifest.digest,
        OCI_MANIFEST,
        len(manifest.raw),
        subject=subject,
        artifact_type=artifact_type,
        found=found,
        image=image.source,
    )
    blobs = {**manifest.blobs, manifest.digest: manifest.raw}

    def read(digest: str, max_bytes: int) -> bytes:
        if digest not in blobs:
            raise MirrorError(f"{digest}: not in the bundle")
        return blobs[digest]

    root = load_trusted_root(sigstore_data.trusted_root_bytes(), "trusted_root.json")
    [checked] = check_signatures(
        [image],
        attached_by_subject([image, record]),
        read,
        lambda _: [rule(identity)],
        lambda _: [root],
        DEFAULT_LIMITS,
    )
    return checked


def sigstore_bundle() -> cosign.SignatureManifest:
    layer = cosign.SignatureLayer(sigstore_data.IMAGE_BUNDLE.read_bytes(), "", media_type=SIGSTORE_BUNDLE)
    return cosign.signature_manifest([layer])


def classic_keyless() -> cosign.SignatureManifest:
    annotations = json.loads(sigstore_data.COSIGN_MANIFEST.read_bytes())["layers"][0]["annotations"]
    signature = annotations.pop(cosign.SIGNATURE_ANNOTATION)
    layer = cosign.SignatureLayer(sigstore_data.COSIGN_PAYLOAD.read_bytes(), signature, annotations)
    return cosign.signature_manifest([layer])


def test_a_sigstore_bundle_by_the_rule_s_identity_verifies_and_records_the_signer():
    checked = check(sigstore_data.IMAGE_DIGEST, sigstore_bundle(), SIGSTORE_BUNDLE, sigstore_data.IMAGE_IDENTITY)
    assert checked.problems == []
    assert checked.signers == [{"issuer": sigstore_data.GITHUB_ISSUER, "identity": sigstore_data.IMAGE_IDENTITY}]


def test_a_sigstore_bundle_by_another_identity_is_an_identity_mismatch_naming_the_signer():
    checked = check(sigstore_data.IMAGE_DIGEST, sigstore_bundle(), SIGSTORE_BUNDLE, "https://github.com/other/x")
    [problem] = checked.problems
    assert problem.code == codes.SIGNATURE_IDENTITY_MISMATCH
    assert sigstore_data.IMAGE_IDENTITY in problem.message


def test_a_sigstore_bundle_attached_to_another_image_is_a_digest_mismatch():
    other = "sha256:" + "ee" * 32
    checked = check(other, sigstore_bundle(), SIGSTORE_BUNDLE, sigstore_data.IMAGE_IDENTITY)
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_DIGEST_MISMATCH]


def test_cosign_s_classic_keyless_signature_verifies_and_records_the_signer():
    checked = check(
        sigstore_data.COSIGN_IMAGE_DIGEST, classic_keyless(), COSIGN_SIGNATURE, sigstore_data.COSIGN_IDENTITY
    )
    assert checked.problems == []
    assert checked.signers == [{"issuer": sigstore_data.GITHUB_ISSUER, "identity": sigstore_data.COSIGN_IDENTITY}]
    assert checked.findings[0].claimed == checked.signers[0]


def test_cosign_s_classic_keyless_signature_copied_to_another_image_is_a_digest_mismatch():
    other = "sha256:" + "ee" * 32
    checked = check(other, classic_keyless(), COSIGN_SIGNATURE, sigstore_data.COSIGN_IDENTITY)
    [problem] = checked.problems
    assert problem.code == codes.SIGNATURE_DIGEST_MISMATCH
    assert sigstore_data.COSIGN_IMAGE_DIGEST in problem.message


@pytest.mark.parametrize(
    "annotation",
    [cosign.SIGNATURE_ANNOTATION, cosign.CERTIFICATE_ANNOTATION, cosign.CHAIN_ANNOTATION, cosign.BUNDLE_ANNOTATION],
)
def test_an_annotation_that_is_not_text_makes_the_signature_invalid_not_a_crash(annotation):
    annotations = json.loads(sigstore_data.COSIGN_MANIFEST.read_bytes())["layers"][0]["annotations"]
    annotations[annotation] = "SURROGATE"
    signature = annotations.pop(cosign.SIGNATURE_ANNOTATION)
    layer = cosign.SignatureLayer(sigstore_data.COSIGN_PAYLOAD.read_bytes(), signature, annotations)
    made = cosign.signature_manifest([layer])
    hostile = cosign.SignatureManifest(made.raw.replace(b"SURROGATE", b"\\ud800"), made.blobs)  # a lone surrogate
    checked = check(sigstore_data.COSIGN_IMAGE_DIGEST, hostile, COSIGN_SIGNATURE, sigstore_data.COSIGN_IDENTITY)
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_INVALID]
