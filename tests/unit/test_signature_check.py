"""Checking the upstream signatures of images against rules: which signatures count, which signers are recorded,
and the one problem (with the most telling code) of an image no valid signature satisfies."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path

import pytest

import mirror.supplychain
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
from mirror.supplychain.cosign import cosign_key_from_pem
from mirror.supplychain.rules import VerifyRule
from tests.support import cosign
from tests.support.images import OCI_INDEX, OCI_MANIFEST, sha256_digest

REPOSITORY = "registry.example/team/app"
SOURCE = f"{REPOSITORY}:1.0"


class Bundle:
    """Images, their attached manifests and every blob, as a collect or a bundle would hold them."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.artifacts: list[ArtifactRecord] = []

    def read(self, digest: str, max_bytes: int) -> bytes:
        if digest not in self.blobs:
            raise MirrorError(f"{digest}: not in the bundle")
        return self.blobs[digest][: max_bytes + 1]

    def image(self, seed: str = "app", source: str = SOURCE, **extra: object) -> ArtifactRecord:
        raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "seed": seed}).encode()
        digest = sha256_digest(raw)
        self.blobs[digest] = raw
        artifact = ArtifactRecord("image", source, digest, OCI_MANIFEST, len(raw), dict(extra))
        self.artifacts.append(artifact)
        return artifact

    def attach(self, subject: str, manifest: cosign.SignatureManifest, artifact_type: str = COSIGN_SIGNATURE) -> None:
        self.blobs.update(manifest.blobs)
        self.blobs[manifest.digest] = manifest.raw
        found = FOUND_COSIGN_TAG if artifact_type == COSIGN_SIGNATURE else FOUND_REFERRERS
        self.artifacts.append(
            attached_record(
                REPOSITORY,
                manifest.digest,
                OCI_MANIFEST,
                len(manifest.raw),
                subject=subject,
                artifact_type=artifact_type,
                found=found,
                image=SOURCE,
            )
        )

    def sign(self, subject: str, key: cosign.PrivateKey, *, signs: str | None = None) -> None:
        self.attach(subject, cosign.signature_manifest([cosign.signed_layer(key, REPOSITORY, signs or subject)]))

    def check(self, rules: list[VerifyRule], roots: list[object] | None = None, limits=DEFAULT_LIMITS):
        images = [a for a in self.artifacts if a.kind == "image"]
        return check_signatures(
            images,
            attached_by_subject(self.artifacts),
            self.read,
            lambda image: rules,
            lambda rule: roots or [],
            limits,
        )


def key_rule(key: cosign.PrivateKey, origin: str = "set.yaml: spec.verify[0]") -> VerifyRule:
    return VerifyRule(origin, "registry.example/*", key=cosign_key_from_pem(cosign.public_pem(key), "cosign.pub"))


def key_id(key: cosign.PrivateKey) -> str:
    return cosign_key_from_pem(cosign.public_pem(key), "cosign.pub").key_id


@pytest.fixture
def bundle() -> Bundle:
    return Bundle()


@pytest.fixture
def key() -> cosign.PrivateKey:
    return cosign.generate_key()


def test_an_image_signed_with_the_rule_s_key_passes_and_records_its_signer(bundle, key):
    image = bundle.image()
    bundle.sign(image.digest, key)
    [checked] = bundle.check([key_rule(key)])
    assert checked.problems == []
    assert checked.signers == [{"key": key_id(key)}]
    assert [f.verified for f in checked.findings] == [True]


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
def test_ed25519_and_rsa_keys_sign_images_too(bundle, algorithm):
    key = cosign.generate_key(algorithm)
    image = bundle.image()
    bundle.sign(image.digest, key)
    [checked] = bundle.check([key_rule(key)])
    assert checked.problems == []


def test_an_image_no_rule_applies_to_is_not_checked(bundle):
    bundle.image()
    [checked] = bundle.check([])
    assert (checked.problems, checked.signers, checked.findings) == ([], [], [])


def test_an_unsigned_image_under_a_rule_is_missing_its_signature_naming_the_image(bundle, key):
    image = bundle.image()
    [checked] = bundle.check([key_rule(key)])
    [problem] = checked.problems
    assert problem.code == codes.SIGNATURE_MISSING
    assert SOURCE in problem.message and image.digest in problem.message
    assert "set.yaml: spec.verify[0]" in problem.message


def test_a_signature_by_another_key_is_invalid(bundle, key):
    image = bundle.image()
    bundle.sign(image.digest, cosign.generate_key())
    [checked] = bundle.check([key_rule(key)])
    [problem] = checked.problems
    assert problem.code == codes.SIGNATURE_INVALID
    assert key_id(key) in problem.message
    assert checked.signers == []


def test_a_forged_signature_is_invalid(bundle, key):
    image = bundle.image()
    payload = cosign.simple_signing_payload(REPOSITORY, image.digest)
    forged = cosign.SignatureLayer(payload, cosign.sign(cosign.generate_key(), b"something else"))
    bundle.attach(image.digest, cosign.signature_manifest([forged]))
    [checked] = bundle.check([key_rule(key)])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_INVALID]


def test_a_signature_that_is_not_base64_is_invalid(bundle, key):
    image = bundle.image()
    payload = cosign.simple_signing_payload(REPOSITORY, image.digest)
    bundle.attach(image.digest, cosign.signature_manifest([cosign.SignatureLayer(payload, "not base64!")]))
    [checked] = bundle.check([key_rule(key)])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_INVALID]
    assert "base64" in checked.findings[0].reason


def test_a_valid_signature_over_another_digest_is_a_digest_mismatch(bundle, key):
    image = bundle.image()
    other = bundle.image("other", f"{REPOSITORY}:2.0")
    bundle.sign(image.digest, key, signs=other.digest)
    checked = bundle.check([key_rule(key)])[0]
    [problem] = checked.problems
    assert problem.code == codes.SIGNATURE_DIGEST_MISMATCH
    assert other.digest in problem.message


def test_a_valid_signature_of_another_type_is_invalid(bundle, key):
    image = bundle.image()
    payload = cosign.simple_signing_payload(REPOSITORY, image.digest, type_="atomic container signature")
    bundle.attach(image.digest, cosign.signature_manifest([cosign.SignatureLayer(payload, cosign.sign(key, payload))]))
    [checked] = bundle.check([key_rule(key)])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_INVALID]
    assert "critical.type" in checked.findings[0].reason


def test_a_payload_altered_after_signing_is_invalid(bundle, key):
    image = bundle.image()
    payload = cosign.simple_signing_payload(REPOSITORY, image.digest)
    signature = cosign.sign(key, payload)
    altered = payload.replace(b"team/app", b"team/apq")
    bundle.attach(image.digest, cosign.signature_manifest([cosign.SignatureLayer(altered, signature)]))
    [checked] = bundle.check([key_rule(key)])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_INVALID]


def test_a_payload_blob_changed_under_its_descriptor_is_invalid(bundle, key):
    image = bundle.image()
    layer = cosign.signed_layer(key, REPOSITORY, image.digest)
    bundle.attach(image.digest, cosign.signature_manifest([layer]))
    bundle.blobs[cosign.sha256_digest(layer.payload)] = layer.payload.replace(b"team", b"tean")
    [checked] = bundle.check([key_rule(key)])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_INVALID]


def test_an_attached_manifest_missing_from_the_bundle_is_invalid_not_missing(bundle, key):
    image = bundle.image()
    bundle.sign(image.digest, key)
    del bundle.blobs[bundle.artifacts[-1].digest]
    [checked] = bundle.check([key_rule(key)])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_INVALID]


def test_one_valid_signature_among_bad_ones_is_enough(bundle, key):
    image = bundle.image()
    bundle.sign(image.digest, cosign.generate_key())
    bundle.sign(image.digest, key)
    [checked] = bundle.check([key_rule(key)])
    assert checked.problems == []
    assert [f.verified for f in checked.findings] == [False, True]


def test_every_rule_that_applies_must_be_satisfied(bundle, key):
    image = bundle.image()
    second = cosign.generate_key()
    bundle.sign(image.digest, key)
    [checked] = bundle.check([key_rule(key), key_rule(second, "set.yaml: spec.verify[1]")])
    [problem] = checked.problems
    assert "spec.verify[1]" in problem.message and "spec.verify[0]" not in problem.message
    assert checked.signers == [{"key": key_id(key)}]


def test_the_digest_mismatch_is_told_before_an_invalid_signature(bundle, key):
    image = bundle.image()
    other = bundle.image("other", f"{REPOSITORY}:2.0")
    bundle.sign(image.digest, cosign.generate_key())
    bundle.sign(image.digest, key, signs=other.digest)
    assert bundle.check([key_rule(key)])[0].problems[0].code == codes.SIGNATURE_DIGEST_MISMATCH


def test_only_the_first_signatures_up_to_the_limit_are_examined(bundle, key):
    image = bundle.image()
    for _ in range(3):
        bundle.sign(image.digest, cosign.generate_key())
    bundle.sign(image.digest, key)
    limits = dataclasses.replace(DEFAULT_LIMITS, max_upstream_signatures=3)
    [checked] = bundle.check([key_rule(key)], limits=limits)
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_INVALID]
    assert "max_upstream_signatures" in checked.problems[0].message


def test_signature_layers_beyond_the_limit_are_not_even_read(bundle, key):
    image = bundle.image()
    strangers = [cosign.signed_layer(cosign.generate_key(), REPOSITORY, image.digest) for _ in range(10)]
    bundle.attach(image.digest, cosign.signature_manifest(strangers))
    bundle.attach(image.digest, cosign.signature_manifest(strangers[:5]))
    payloads = {sha256_digest(layer.payload) for layer in strangers}
    read: list[str] = []
    reader = bundle.read
    bundle.read = lambda digest, max_bytes: read.append(digest) or reader(digest, max_bytes)  # type: ignore[method-assign]
    limits = dataclasses.replace(DEFAULT_LIMITS, max_upstream_signatures=3)
    [checked] = bundle.check([key_rule(key)], limits=limits)
    assert "max_upstream_signatures" in checked.problems[0].message
    assert len([d for d in read if d in payloads]) == 3


def test_signatures_of_other_images_do_not_count(bundle, key):
    bundle.image()
    other = bundle.image("other", f"{REPOSITORY}:2.0")
    bundle.sign(other.digest, key)
    [checked, _] = bundle.check([key_rule(key)])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_MISSING]


# --- a platform filter: the index carried is not the one upstream signed -----------------------------------------


def index(children: list[ArtifactRecord]) -> bytes:
    manifests = [{"mediaType": c.media_type, "digest": c.digest, "size": c.size} for c in children]
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()


def narrowed(bundle: Bundle, *, carry_upstream: bool, extra_child: bool = False):
    amd64, arm64 = bundle.image("amd64", "x@1"), bundle.image("arm64", "x@2")
    bundle.artifacts.clear()
    upstream = index([amd64, arm64])
    carried_children = [amd64] + ([bundle.image("stray", "x@3")] if extra_child else [])
    bundle.artifacts.clear()
    carried = index(carried_children)
    bundle.blobs[sha256_digest(carried)] = carried
    if carry_upstream:
        bundle.blobs[sha256_digest(upstream)] = upstream
    artifact = ArtifactRecord(
        "image", SOURCE, sha256_digest(carried), OCI_INDEX, len(carried), {"sourceDigest": sha256_digest(upstream)}
    )
    bundle.artifacts.append(artifact)
    return artifact


def test_a_narrowed_index_counts_signatures_over_the_upstream_index_it_came_from(bundle, key):
    artifact = narrowed(bundle, carry_upstream=True)
    bundle.sign(artifact.extra["sourceDigest"], key)
    [checked] = bundle.check([key_rule(key)])
    assert checked.problems == []


def test_a_narrowed_index_whose_upstream_index_is_not_carried_does_not_count_them(bundle, key):
    artifact = narrowed(bundle, carry_upstream=False)
    bundle.sign(artifact.extra["sourceDigest"], key)
    [checked] = bundle.check([key_rule(key)])
    [problem] = checked.problems
    assert problem.code == codes.SIGNATURE_DIGEST_MISMATCH
    assert artifact.extra["sourceDigest"] in problem.message


def test_a_narrowed_index_with_a_child_the_upstream_index_lacks_does_not_count_them(bundle, key):
    artifact = narrowed(bundle, carry_upstream=True, extra_child=True)
    bundle.sign(artifact.extra["sourceDigest"], key)
    [checked] = bundle.check([key_rule(key)])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_DIGEST_MISMATCH]


# --- keyless: dispatched to mirror.supplychain.keyless (a stub here; its own tests are the keyless ones) -----------


class KeylessFailure(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class KeylessSigner:
    issuer: str
    identity: str


@dataclasses.dataclass(frozen=True)
class IdentityRule:
    issuer: str
    identity: str | None = None
    identity_regexp: str | None = None


@pytest.fixture
def keyless(monkeypatch):
    """A stand-in for mirror.supplychain.keyless: a bundle or certificate "verifies" when it names the rule's
    identity, as {"identity": ..., "digest": ...}; the calls are recorded."""
    module = types.ModuleType("mirror.supplychain.keyless")
    calls: list[tuple[str, object]] = []

    def verdict(claimed: dict[str, str], rule: IdentityRule, root: object) -> KeylessSigner:
        if root != "ROOT":
            raise KeylessFailure(codes.SIGNATURE_INVALID, "not by this trusted root")
        if claimed["identity"] != rule.identity:
            raise KeylessFailure(codes.SIGNATURE_IDENTITY_MISMATCH, f"signed by {claimed['identity']}")
        return KeylessSigner(rule.issuer, claimed["identity"])

    def verify_sigstore_bundle(bundle_json, *, trusted_root, digest, rule):
        claimed = json.loads(bundle_json)
        calls.append(("bundle", digest))
        if claimed["digest"] != digest:
            raise KeylessFailure(codes.SIGNATURE_DIGEST_MISMATCH, f"signs {claimed['digest']}")
        return verdict(claimed, rule, trusted_root)

    def verify_cosign_keyless(
        payload, signature_b64, certificate_pem, chain_pem, rekor_bundle_json, *, trusted_root, rule
    ):
        calls.append(("cosign", certificate_pem))
        return verdict(json.loads(certificate_pem), rule, trusted_root)

    def signer_of_certificate(pem):
        return KeylessSigner("https://issuer", json.loads(pem)["identity"])

    module.__dict__.update(
        IdentityRule=IdentityRule,
        KeylessSigner=KeylessSigner,
        KeylessFailure=KeylessFailure,
        verify_sigstore_bundle=verify_sigstore_bundle,
        verify_cosign_keyless=verify_cosign_keyless,
        signer_of_certificate=signer_of_certificate,
    )
    monkeypatch.setitem(sys.modules, "mirror.supplychain.keyless", module)
    monkeypatch.setattr(mirror.supplychain, "keyless", module, raising=False)
    return calls


def keyless_rule(identity: str = "ci@example.com") -> VerifyRule:
    return VerifyRule(
        "set.yaml: spec.verify[0]", "*", issuer="https://issuer", identity=identity, trusted_root=Path("root.json")
    )


def attach_bundle(bundle: Bundle, subject: str, identity: str, digest: str | None = None) -> None:
    body = json.dumps({"identity": identity, "digest": digest or subject}).encode()
    layer = cosign.SignatureLayer(body, "", media_type=SIGSTORE_BUNDLE)
    bundle.attach(subject, cosign.signature_manifest([layer]), SIGSTORE_BUNDLE)


def attach_keyless_cosign(bundle: Bundle, subject: str, identity: str, signs: str | None = None) -> None:
    payload = cosign.simple_signing_payload(REPOSITORY, signs or subject)
    certificate = json.dumps({"identity": identity})
    extra = {cosign.CERTIFICATE_ANNOTATION: certificate, cosign.BUNDLE_ANNOTATION: "{}"}
    bundle.attach(subject, cosign.signature_manifest([cosign.SignatureLayer(payload, "c2ln", extra)]))


def test_a_sigstore_bundle_by_the_rule_s_identity_passes_and_records_issuer_and_identity(bundle, keyless):
    image = bundle.image()
    attach_bundle(bundle, image.digest, "ci@example.com")
    [checked] = bundle.check([keyless_rule()], roots=["ROOT"])
    assert checked.problems == []
    assert checked.signers == [{"issuer": "https://issuer", "identity": "ci@example.com"}]
    assert keyless == [("bundle", image.digest)]


def test_a_sigstore_bundle_by_another_identity_is_an_identity_mismatch(bundle, keyless):
    image = bundle.image()
    attach_bundle(bundle, image.digest, "mallory@example.com")
    [checked] = bundle.check([keyless_rule()], roots=["ROOT"])
    [problem] = checked.problems
    assert problem.code == codes.SIGNATURE_IDENTITY_MISMATCH
    assert "mallory@example.com" in problem.message


def test_a_keyless_cosign_signature_passes_when_its_payload_names_the_image(bundle, keyless):
    image = bundle.image()
    attach_keyless_cosign(bundle, image.digest, "ci@example.com")
    [checked] = bundle.check([keyless_rule()], roots=["ROOT"])
    assert checked.problems == []
    assert checked.findings[0].claimed == {"issuer": "https://issuer", "identity": "ci@example.com"}


def test_a_keyless_cosign_signature_over_another_digest_is_a_digest_mismatch(bundle, keyless):
    image = bundle.image()
    attach_keyless_cosign(bundle, image.digest, "ci@example.com", signs="sha256:" + "ee" * 32)
    [checked] = bundle.check([keyless_rule()], roots=["ROOT"])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_DIGEST_MISMATCH]


def test_a_keyless_signature_verifies_against_any_of_the_trusted_roots(bundle, keyless):
    image = bundle.image()
    attach_bundle(bundle, image.digest, "ci@example.com")
    [checked] = bundle.check([keyless_rule()], roots=["OTHER", "ROOT"])
    assert checked.problems == []


def test_a_keyless_rule_without_any_trusted_root_verifies_nothing(bundle, keyless):
    image = bundle.image()
    attach_bundle(bundle, image.digest, "ci@example.com")
    [checked] = bundle.check([keyless_rule()], roots=[])
    [problem] = checked.problems
    assert problem.code == codes.SIGNATURE_INVALID
    assert "trusted root" in problem.message


def test_a_key_based_signature_does_not_satisfy_a_keyless_rule(bundle, key, keyless):
    image = bundle.image()
    bundle.sign(image.digest, key)
    [checked] = bundle.check([keyless_rule()], roots=["ROOT"])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_INVALID]
    assert keyless == []


def test_a_keyless_signature_does_not_satisfy_a_key_rule(bundle, key, keyless):
    image = bundle.image()
    attach_bundle(bundle, image.digest, "ci@example.com")
    [checked] = bundle.check([key_rule(key)])
    assert [p.code for p in checked.problems] == [codes.SIGNATURE_INVALID]
    assert keyless == []


def test_findings_and_problems_are_json_for_scripts(bundle, key):
    image = bundle.image()
    bundle.sign(image.digest, cosign.generate_key())
    [checked] = bundle.check([key_rule(key)])
    body = checked.to_json()
    assert body["source"] == SOURCE and body["digest"] == image.digest
    assert body["findings"][0]["verified"] is False
    assert body["findings"][0]["code"] == codes.SIGNATURE_INVALID
    assert body["problems"][0]["code"] == codes.SIGNATURE_INVALID
