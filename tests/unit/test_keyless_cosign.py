"""Keyless verification of cosign's classic layout (`sha256-<hex>.sig`), offline (issue 15).

A real signature made by cosign in a GitHub Actions release (tests/data/sigstore/README.md): the simple-signing
payload, its base64 signature, the Fulcio certificate and chain, and the Rekor signed entry timestamp, all from
the layer's annotations. The caller checks the payload's image digest; this checks everything else.
"""

from __future__ import annotations

import base64
import json

import pytest

from mirror.supplychain.codes import SIGNATURE_IDENTITY_MISMATCH, SIGNATURE_INVALID
from mirror.supplychain.keyless import (
    IdentityRule,
    KeylessFailure,
    KeylessSigner,
    TrustedRootHandle,
    load_trusted_root,
    verify_cosign_keyless,
)
from tests.support.sigstore_data import (
    COSIGN_IDENTITY,
    COSIGN_IMAGE_DIGEST,
    COSIGN_PAYLOAD,
    GITHUB_ISSUER,
    WHEEL_BUNDLE,
    altered_san,
    bundle_document,
    cosign_layer,
    leaf_der,
    payload_digest,
    root_with_other_ca,
    root_with_other_ct_log,
    root_with_other_log,
    trusted_root_bytes,
)

RULE = IdentityRule(issuer=GITHUB_ISSUER, identity=COSIGN_IDENTITY)


@pytest.fixture(scope="module")
def root() -> TrustedRootHandle:
    return load_trusted_root(trusted_root_bytes(), "tests/data/sigstore/trusted_root.json")


def verify(
    root: TrustedRootHandle,
    *,
    payload: bytes | None = None,
    signature: str | None = None,
    certificate: bytes | None = None,
    chain: bytes | None = b"",
    rekor: bytes | None = b"",
    rule: IdentityRule = RULE,
) -> KeylessSigner:
    layer = cosign_layer()
    return verify_cosign_keyless(
        COSIGN_PAYLOAD.read_bytes() if payload is None else payload,
        layer["signature"] if signature is None else signature,
        layer["certificate"].encode() if certificate is None else certificate,
        layer["chain"].encode() if chain == b"" else chain,
        layer["bundle"].encode() if rekor == b"" else rekor,
        trusted_root=root,
        rule=rule,
    )


def refusal(root: TrustedRootHandle, **parts: object) -> KeylessFailure:
    with pytest.raises(KeylessFailure) as caught:
        verify(root, **parts)  # type: ignore[arg-type]
    assert caught.value.reason and "\n" not in caught.value.reason
    return caught.value


def rekor_bundle(**payload_changes: object) -> bytes:
    document = json.loads(cosign_layer()["bundle"])
    document["Payload"].update(payload_changes)
    return json.dumps(document).encode()


def pem(der: bytes) -> bytes:
    lines = [base64.b64encode(der)[i : i + 64] for i in range(0, len(base64.b64encode(der)), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def test_the_data_is_the_layer_the_manifest_names() -> None:
    payload = COSIGN_PAYLOAD.read_bytes()
    assert payload_digest(payload) == cosign_layer()["digest"]
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == COSIGN_IMAGE_DIGEST


def test_a_real_cosign_keyless_signature_verifies(root: TrustedRootHandle) -> None:
    assert verify(root) == KeylessSigner(issuer=GITHUB_ISSUER, identity=COSIGN_IDENTITY)


def test_the_chain_annotation_is_optional_when_the_root_holds_the_intermediate(root: TrustedRootHandle) -> None:
    assert verify(root, chain=None).identity == COSIGN_IDENTITY


def test_a_tampered_payload_is_invalid(root: TrustedRootHandle) -> None:
    payload = COSIGN_PAYLOAD.read_bytes().replace(b"server_image", b"server_imagf")
    failure = refusal(root, payload=payload)
    assert failure.code == SIGNATURE_INVALID
    assert "signature does not verify" in failure.reason  # checked before, and besides, what the log recorded


def test_a_tampered_signature_is_invalid(root: TrustedRootHandle) -> None:
    signature = cosign_layer()["signature"]
    tampered = signature[:30] + ("A" if signature[30] != "A" else "B") + signature[31:]
    failure = refusal(root, signature=tampered)
    assert failure.code == SIGNATURE_INVALID
    assert "signature does not verify" in failure.reason


def test_another_signers_certificate_is_invalid(root: TrustedRootHandle) -> None:
    other = pem(leaf_der(bundle_document(WHEEL_BUNDLE)))
    assert refusal(root, certificate=other).code == SIGNATURE_INVALID


def test_an_altered_certificate_is_invalid(root: TrustedRootHandle) -> None:
    der = leaf_der({"verificationMaterial": {"certificate": {"rawBytes": _leaf_b64()}}})
    altered = altered_san(der, b"go-bazel-github-workflow", b"go-bazel-github-workflaw")
    rule = IdentityRule(issuer=GITHUB_ISSUER, identity=COSIGN_IDENTITY.replace("workflow/", "workflaw/"))
    assert refusal(root, certificate=pem(altered), rule=rule).code == SIGNATURE_INVALID


def test_a_signature_without_its_rekor_entry_is_invalid(root: TrustedRootHandle) -> None:
    failure = refusal(root, rekor=None)
    assert failure.code == SIGNATURE_INVALID
    assert "Rekor" in failure.reason


def test_a_rekor_entry_with_another_time_is_invalid(root: TrustedRootHandle) -> None:
    integrated = json.loads(cosign_layer()["bundle"])["Payload"]["integratedTime"]
    assert refusal(root, rekor=rekor_bundle(integratedTime=integrated + 60)).code == SIGNATURE_INVALID


def test_a_genuine_rekor_entry_of_another_signature_is_invalid(root: TrustedRootHandle) -> None:
    entry = bundle_document(WHEEL_BUNDLE)["verificationMaterial"]["tlogEntries"][0]
    other = {
        "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
        "Payload": {
            "body": entry["canonicalizedBody"],
            "integratedTime": int(entry["integratedTime"]),
            "logIndex": int(entry["logIndex"]),
            "logID": base64.b64decode(entry["logId"]["keyId"]).hex(),
        },
    }
    failure = refusal(root, rekor=json.dumps(other).encode())
    assert failure.code == SIGNATURE_INVALID
    assert "entry" in failure.reason


def test_an_identity_the_rule_does_not_name_is_an_identity_mismatch(root: TrustedRootHandle) -> None:
    rule = IdentityRule(issuer=GITHUB_ISSUER, identity=COSIGN_IDENTITY.replace("v0.0.26", "v0.0.27"))
    failure = refusal(root, rule=rule)
    assert failure.code == SIGNATURE_IDENTITY_MISMATCH
    assert COSIGN_IDENTITY in failure.reason


def test_another_issuer_is_an_identity_mismatch(root: TrustedRootHandle) -> None:
    rule = IdentityRule(issuer="https://gitlab.com", identity=COSIGN_IDENTITY)
    assert refusal(root, rule=rule).code == SIGNATURE_IDENTITY_MISMATCH


def test_an_anchored_identity_regexp_accepts_the_identities_under_its_prefix(root: TrustedRootHandle) -> None:
    prefix = IdentityRule(issuer=GITHUB_ISSUER, identity_regexp=r"^https://github\.com/salrashid123/")
    assert verify(root, rule=prefix).identity == COSIGN_IDENTITY
    other = IdentityRule(issuer=GITHUB_ISSUER, identity_regexp=r"^https://github\.com/someone-else/")
    assert refusal(root, rule=other).code == SIGNATURE_IDENTITY_MISMATCH


def test_a_trusted_root_without_the_fulcio_ca_refuses_as_invalid() -> None:
    other = load_trusted_root(root_with_other_ca(), "other-ca.json")
    assert refusal(other).code == SIGNATURE_INVALID


def test_a_trusted_root_without_the_rekor_key_refuses_as_invalid() -> None:
    other = load_trusted_root(root_with_other_log(), "other-log.json")
    failure = refusal(other)
    assert failure.code == SIGNATURE_INVALID
    assert "Rekor" in failure.reason


def test_a_trusted_root_without_the_ct_log_key_refuses_as_invalid() -> None:
    other = load_trusted_root(root_with_other_ct_log(), "other-ct-log.json")
    failure = refusal(other)
    assert failure.code == SIGNATURE_INVALID
    assert "SCT" in failure.reason


def _leaf_b64() -> str:
    text = cosign_layer()["certificate"]
    body = text.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "".join(body.split())
