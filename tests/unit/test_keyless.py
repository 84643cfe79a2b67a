"""Keyless verification of Sigstore bundles, offline, against a given trusted root (issue 15).

Real bundles made by the public Sigstore instance (tests/data/sigstore/README.md says where each came from) and
tampered copies of them: each refusal has its own code. Order: a signature that does not verify is INVALID,
whatever else is wrong; a valid one over another digest is DIGEST_MISMATCH; a valid one over this digest by
another signer is IDENTITY_MISMATCH.
"""

from __future__ import annotations

import base64

import pytest

from mirror.supplychain.codes import SIGNATURE_DIGEST_MISMATCH, SIGNATURE_IDENTITY_MISMATCH, SIGNATURE_INVALID
from mirror.supplychain.keyless import (
    IdentityRule,
    KeylessFailure,
    KeylessSigner,
    TrustedRootHandle,
    load_trusted_root,
    verify_sigstore_bundle,
)
from tests.support.sigstore_data import (
    GITHUB_ISSUER,
    IMAGE_BUNDLE,
    IMAGE_DIGEST,
    IMAGE_IDENTITY,
    PROVENANCE_BUNDLE,
    PROVENANCE_DIGEST,
    PROVENANCE_IDENTITY,
    STAGING_TRUSTED_ROOT,
    WHEEL_BUNDLE,
    WHEEL_DIGEST,
    WHEEL_IDENTITY,
    altered_san,
    bundle_document,
    json_bytes,
    leaf_der,
    root_with_other_ca,
    root_with_other_ct_log,
    root_with_other_log,
    statement,
    trusted_root_bytes,
    with_leaf_der,
    with_statement,
)

IMAGE_RULE = IdentityRule(issuer=GITHUB_ISSUER, identity=IMAGE_IDENTITY)
WHEEL_RULE = IdentityRule(issuer=GITHUB_ISSUER, identity=WHEEL_IDENTITY)
OTHER_DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def root() -> TrustedRootHandle:
    return load_trusted_root(trusted_root_bytes(), "tests/data/sigstore/trusted_root.json")


def refusal(bundle: bytes, root: TrustedRootHandle, digest: str, rule: IdentityRule) -> KeylessFailure:
    with pytest.raises(KeylessFailure) as caught:
        verify_sigstore_bundle(bundle, trusted_root=root, digest=digest, rule=rule)
    assert caught.value.reason and "\n" not in caught.value.reason
    return caught.value


def test_a_cosign_image_bundle_verifies_over_its_image_digest(root: TrustedRootHandle) -> None:
    signer = verify_sigstore_bundle(IMAGE_BUNDLE.read_bytes(), trusted_root=root, digest=IMAGE_DIGEST, rule=IMAGE_RULE)
    assert signer == KeylessSigner(issuer=GITHUB_ISSUER, identity=IMAGE_IDENTITY)


def test_a_message_signature_bundle_verifies_over_its_artifact_digest(root: TrustedRootHandle) -> None:
    signer = verify_sigstore_bundle(WHEEL_BUNDLE.read_bytes(), trusted_root=root, digest=WHEEL_DIGEST, rule=WHEEL_RULE)
    assert signer == KeylessSigner(issuer=GITHUB_ISSUER, identity=WHEEL_IDENTITY)


def test_a_statement_retargeted_at_another_digest_is_invalid(root: TrustedRootHandle) -> None:
    bundle = bundle_document(IMAGE_BUNDLE)
    forged = statement(bundle)
    forged["subject"][0]["digest"]["sha256"] = OTHER_DIGEST.removeprefix("sha256:")
    failure = refusal(json_bytes(with_statement(bundle, forged)), root, OTHER_DIGEST, IMAGE_RULE)
    assert failure.code == SIGNATURE_INVALID


def test_a_tampered_message_signature_is_invalid(root: TrustedRootHandle) -> None:
    bundle = bundle_document(WHEEL_BUNDLE)
    signature = bundle["messageSignature"]["signature"]
    bundle["messageSignature"]["signature"] = signature[:20] + ("A" if signature[20] != "A" else "B") + signature[21:]
    assert refusal(json_bytes(bundle), root, WHEEL_DIGEST, WHEEL_RULE).code == SIGNATURE_INVALID


def test_an_attestation_by_the_rule_s_identity_over_the_digest_is_no_signature() -> None:
    # Genuine: SLSA provenance about this digest, by this identity. cosign's verify takes only its own sign
    # predicate for an image signature; an attestation says something about an image, not that it was signed.
    staging = load_trusted_root(STAGING_TRUSTED_ROOT.read_bytes(), "tests/data/sigstore/trusted_root.staging.json")
    rule = IdentityRule(issuer=GITHUB_ISSUER, identity=PROVENANCE_IDENTITY)
    failure = refusal(PROVENANCE_BUNDLE.read_bytes(), staging, PROVENANCE_DIGEST, rule)
    assert failure.code == SIGNATURE_INVALID
    assert "https://slsa.dev/provenance/v1" in failure.reason


def test_a_message_digest_that_is_not_ascii_is_invalid(root: TrustedRootHandle) -> None:
    bundle = bundle_document(WHEEL_BUNDLE)
    bundle["messageSignature"]["messageDigest"]["digest"] = "\u00e9t\u00e9"
    assert refusal(json_bytes(bundle), root, WHEEL_DIGEST, WHEEL_RULE).code == SIGNATURE_INVALID


def test_a_message_digest_changed_to_the_expected_one_is_invalid(root: TrustedRootHandle) -> None:
    bundle = bundle_document(WHEEL_BUNDLE)
    claimed = bytes.fromhex(OTHER_DIGEST.removeprefix("sha256:"))
    bundle["messageSignature"]["messageDigest"]["digest"] = base64.b64encode(claimed).decode()
    assert refusal(json_bytes(bundle), root, OTHER_DIGEST, WHEEL_RULE).code == SIGNATURE_INVALID


def test_an_image_bundle_over_another_digest_is_a_digest_mismatch(root: TrustedRootHandle) -> None:
    failure = refusal(IMAGE_BUNDLE.read_bytes(), root, OTHER_DIGEST, IMAGE_RULE)
    assert failure.code == SIGNATURE_DIGEST_MISMATCH
    assert OTHER_DIGEST in failure.reason


def test_a_message_signature_over_another_digest_is_a_digest_mismatch(root: TrustedRootHandle) -> None:
    assert refusal(WHEEL_BUNDLE.read_bytes(), root, OTHER_DIGEST, WHEEL_RULE).code == SIGNATURE_DIGEST_MISMATCH


def test_a_digest_of_another_algorithm_is_a_digest_mismatch(root: TrustedRootHandle) -> None:
    sha512 = "sha512:" + "cd" * 64
    assert refusal(IMAGE_BUNDLE.read_bytes(), root, sha512, IMAGE_RULE).code == SIGNATURE_DIGEST_MISMATCH


def test_an_identity_the_rule_does_not_name_is_an_identity_mismatch(root: TrustedRootHandle) -> None:
    rule = IdentityRule(issuer=GITHUB_ISSUER, identity=IMAGE_IDENTITY.replace("v1.34.0", "v1.35.0"))
    failure = refusal(IMAGE_BUNDLE.read_bytes(), root, IMAGE_DIGEST, rule)
    assert failure.code == SIGNATURE_IDENTITY_MISMATCH
    assert IMAGE_IDENTITY in failure.reason  # says who did sign


def test_another_issuer_is_an_identity_mismatch(root: TrustedRootHandle) -> None:
    rule = IdentityRule(issuer="https://accounts.google.com", identity=IMAGE_IDENTITY)
    failure = refusal(IMAGE_BUNDLE.read_bytes(), root, IMAGE_DIGEST, rule)
    assert failure.code == SIGNATURE_IDENTITY_MISMATCH
    assert GITHUB_ISSUER in failure.reason


def test_an_identity_mismatch_is_reported_after_the_digest(root: TrustedRootHandle) -> None:
    rule = IdentityRule(issuer="https://accounts.google.com", identity="someone@example.com")
    assert refusal(IMAGE_BUNDLE.read_bytes(), root, OTHER_DIGEST, rule).code == SIGNATURE_DIGEST_MISMATCH


def test_an_altered_certificate_is_invalid(root: TrustedRootHandle) -> None:
    bundle = bundle_document(IMAGE_BUNDLE)
    der = altered_san(leaf_der(bundle), b"kubewarden/kubewarden-controller", b"kubewarden/kubewarden-contrxller")
    rule = IdentityRule(issuer=GITHUB_ISSUER, identity=IMAGE_IDENTITY.replace("controller", "contrxller"))
    assert refusal(json_bytes(with_leaf_der(bundle, der)), root, IMAGE_DIGEST, rule).code == SIGNATURE_INVALID


def test_another_signers_certificate_is_invalid(root: TrustedRootHandle) -> None:
    bundle = with_leaf_der(bundle_document(IMAGE_BUNDLE), leaf_der(bundle_document(WHEEL_BUNDLE)))
    assert refusal(json_bytes(bundle), root, IMAGE_DIGEST, WHEEL_RULE).code == SIGNATURE_INVALID


def test_a_trusted_root_without_the_signing_ca_refuses_as_invalid() -> None:
    other = load_trusted_root(root_with_other_ca(), "other-ca.json")
    assert refusal(IMAGE_BUNDLE.read_bytes(), other, IMAGE_DIGEST, IMAGE_RULE).code == SIGNATURE_INVALID


def test_a_trusted_root_without_the_log_key_refuses_as_invalid() -> None:
    other = load_trusted_root(root_with_other_log(), "other-log.json")
    assert refusal(IMAGE_BUNDLE.read_bytes(), other, IMAGE_DIGEST, IMAGE_RULE).code == SIGNATURE_INVALID
    assert refusal(WHEEL_BUNDLE.read_bytes(), other, WHEEL_DIGEST, WHEEL_RULE).code == SIGNATURE_INVALID


def test_a_trusted_root_without_the_ct_log_key_refuses_as_invalid() -> None:
    other = load_trusted_root(root_with_other_ct_log(), "other-ct-log.json")
    failure = refusal(IMAGE_BUNDLE.read_bytes(), other, IMAGE_DIGEST, IMAGE_RULE)
    assert failure.code == SIGNATURE_INVALID
    assert "SCT" in failure.reason


@pytest.mark.parametrize(
    "pattern",
    [
        r"^https://github\.com/kubewarden/",  # the contract's example shape: an anchored prefix
        r"kubewarden-controller",  # a part of it, as cosign's --certificate-identity-regexp matches
        r"^https://github\.com/kubewarden/[^/]+/\.github/.*$",  # the whole identity
    ],
)
def test_an_identity_regexp_matches_anywhere_in_the_identity_as_cosigns_does(
    root: TrustedRootHandle, pattern: str
) -> None:
    rule = IdentityRule(issuer=GITHUB_ISSUER, identity_regexp=pattern)
    signer = verify_sigstore_bundle(IMAGE_BUNDLE.read_bytes(), trusted_root=root, digest=IMAGE_DIGEST, rule=rule)
    assert signer.identity == IMAGE_IDENTITY


@pytest.mark.parametrize(
    "pattern",
    [
        r"^https://github\.com/acme/",  # another owner
        r"^kubewarden-controller",  # anchored where the identity does not start
        r"release\.yml@refs/tags/v1\.34\.0$x",  # nothing matches
    ],
)
def test_an_identity_regexp_that_matches_nowhere_refuses(root: TrustedRootHandle, pattern: str) -> None:
    rule = IdentityRule(issuer=GITHUB_ISSUER, identity_regexp=pattern)
    assert refusal(IMAGE_BUNDLE.read_bytes(), root, IMAGE_DIGEST, rule).code == SIGNATURE_IDENTITY_MISMATCH
