"""The signatures an attached manifest carries: cosign simple-signing layers (payload, signature, certificate,
chain, Rekor bundle annotations) and Sigstore bundle layers, read within bounds and checked against their
descriptors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mirror.errors import MirrorError
from mirror.limits import DEFAULT_LIMITS
from mirror.oci.document import parse_manifest
from mirror.supplychain.attached import SIGSTORE_BUNDLE
from mirror.supplychain.evidence import CosignLayer, SigstoreBundleLayer, evidence_of
from tests.support import cosign

DIGEST = "sha256:" + "ab" * 32
REPOSITORY = "registry.example/team/app"


class Blobs(dict[str, bytes]):
    def read(self, digest: str, max_bytes: int) -> bytes:
        if digest not in self:
            raise MirrorError(f"{digest}: not in the bundle")
        data = self[digest]
        if len(data) > max_bytes:
            raise MirrorError(f"{digest}: more than {max_bytes} bytes")
        return data


def document_of(manifest: cosign.SignatureManifest):
    return parse_manifest(manifest.raw, declared_type=None, where="attached")


def test_a_cosign_signature_layer_gives_its_payload_and_signature():
    key = cosign.generate_key()
    layer = cosign.signed_layer(key, REPOSITORY, DIGEST)
    manifest = cosign.signature_manifest([layer])
    found, unreadable = evidence_of(document_of(manifest), Blobs(manifest.blobs).read, DEFAULT_LIMITS)
    assert unreadable == []
    assert found == [
        CosignLayer(
            manifest.digest, cosign.sha256_digest(layer.payload), layer.payload, layer.signature, None, None, None
        )
    ]


def test_every_layer_of_a_signature_manifest_is_a_signature():
    keys = [cosign.generate_key(), cosign.generate_key("ed25519")]
    manifest = cosign.signature_manifest([cosign.signed_layer(k, REPOSITORY, DIGEST) for k in keys])
    found, _ = evidence_of(document_of(manifest), Blobs(manifest.blobs).read, DEFAULT_LIMITS)
    assert len(found) == 2


def test_keyless_annotations_are_kept():
    key = cosign.generate_key()
    payload = cosign.simple_signing_payload(REPOSITORY, DIGEST)
    extra = {
        cosign.CERTIFICATE_ANNOTATION: "CERT",
        cosign.CHAIN_ANNOTATION: "CHAIN",
        cosign.BUNDLE_ANNOTATION: '{"SignedEntryTimestamp":""}',
    }
    manifest = cosign.signature_manifest([cosign.SignatureLayer(payload, cosign.sign(key, payload), extra)])
    [found], _ = evidence_of(document_of(manifest), Blobs(manifest.blobs).read, DEFAULT_LIMITS)
    assert isinstance(found, CosignLayer)
    assert (found.certificate, found.chain, found.rekor_bundle) == ("CERT", "CHAIN", '{"SignedEntryTimestamp":""}')
    assert found.scheme == "cosign-keyless"


def test_a_sigstore_bundle_layer_gives_the_bundle_bytes():
    bundle = json.dumps({"mediaType": SIGSTORE_BUNDLE}).encode()
    manifest = cosign.signature_manifest([cosign.SignatureLayer(bundle, "", media_type=SIGSTORE_BUNDLE)])
    [found], _ = evidence_of(document_of(manifest), Blobs(manifest.blobs).read, DEFAULT_LIMITS)
    assert found == SigstoreBundleLayer(manifest.digest, cosign.sha256_digest(bundle), bundle)


def test_layers_of_other_media_types_are_not_read():
    sbom = cosign.SignatureLayer(b'{"spdxVersion":"SPDX-2.3"}', "", media_type="application/spdx+json")
    manifest = cosign.signature_manifest([sbom])
    blobs = Blobs(manifest.blobs)
    del blobs[cosign.sha256_digest(sbom.payload)]  # never asked for
    assert evidence_of(document_of(manifest), blobs.read, DEFAULT_LIMITS) == ([], [])


def test_a_layer_without_its_signature_annotation_is_unreadable():
    payload = cosign.simple_signing_payload(REPOSITORY, DIGEST)
    layer = cosign.SignatureLayer(payload, "")
    manifest = cosign.signature_manifest([layer])
    raw = manifest.raw.replace(b'"dev.cosignproject.cosign/signature":""', b'"other":""')
    document = parse_manifest(raw, declared_type=None, where="attached")
    found, [unreadable] = evidence_of(document, Blobs(manifest.blobs).read, DEFAULT_LIMITS)
    assert found == []
    assert "dev.cosignproject.cosign/signature" in unreadable.reason


def test_a_payload_missing_from_the_bundle_is_unreadable_naming_it():
    layer = cosign.signed_layer(cosign.generate_key(), REPOSITORY, DIGEST)
    manifest = cosign.signature_manifest([layer])
    blobs = Blobs(manifest.blobs)
    del blobs[cosign.sha256_digest(layer.payload)]
    found, [unreadable] = evidence_of(document_of(manifest), blobs.read, DEFAULT_LIMITS)
    assert found == []
    assert cosign.sha256_digest(layer.payload) in unreadable.reason


def test_a_payload_whose_bytes_do_not_match_its_descriptor_is_unreadable():
    layer = cosign.signed_layer(cosign.generate_key(), REPOSITORY, DIGEST)
    manifest = cosign.signature_manifest([layer])
    blobs = Blobs(manifest.blobs)
    blobs[cosign.sha256_digest(layer.payload)] = layer.payload.replace(b"ab", b"cd")
    found, [unreadable] = evidence_of(document_of(manifest), blobs.read, DEFAULT_LIMITS)
    assert found == []
    assert "sha256" in unreadable.reason


def test_a_payload_larger_than_the_limit_is_not_read():
    layer = cosign.signed_layer(cosign.generate_key(), REPOSITORY, DIGEST)
    manifest = cosign.signature_manifest([layer])
    limits = dataclasses.replace(DEFAULT_LIMITS, max_sigstore_bundle_bytes=len(layer.payload) - 1)
    found, [unreadable] = evidence_of(document_of(manifest), Blobs(manifest.blobs).read, limits)
    assert found == []
    assert "max_sigstore_bundle_bytes" in unreadable.reason


@pytest.mark.parametrize("signature", ["not base64!", "QUJD", ""])
def test_the_signature_text_is_kept_as_given_for_the_verifier_to_judge(signature):
    payload = cosign.simple_signing_payload(REPOSITORY, DIGEST)
    manifest = cosign.signature_manifest([cosign.SignatureLayer(payload, signature)])
    [found], _ = evidence_of(document_of(manifest), Blobs(manifest.blobs).read, DEFAULT_LIMITS)
    assert isinstance(found, CosignLayer)
    assert found.signature == signature
