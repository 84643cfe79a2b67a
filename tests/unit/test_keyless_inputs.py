"""What keyless verification reads, refused cleanly when it is hostile, and read without a network (issue 15).

Trusted roots are local files (a MirrorSet's, or a carried TUF-updated copy): a bad one is a usage error naming
the file. Bundles, payloads, certificates and Rekor entries come from upstream: a bad one is SIGNATURE_INVALID
with a one-line reason, never a traceback. Import runs air-gapped, so nothing here may open a connection.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.errors import UsageError
from mirror.limits import DEFAULT_LIMITS
from mirror.supplychain import keyless
from mirror.supplychain.codes import SIGNATURE_INVALID
from mirror.supplychain.keyless import (
    IdentityRule,
    KeylessFailure,
    KeylessSigner,
    TrustedRootHandle,
    check_identity_rule,
    load_trusted_root,
    signer_of_certificate,
    verify_cosign_keyless,
    verify_sigstore_bundle,
)
from tests.support.sigstore_data import (
    COSIGN_IDENTITY,
    COSIGN_PAYLOAD,
    GITHUB_ISSUER,
    IMAGE_BUNDLE,
    IMAGE_DIGEST,
    IMAGE_IDENTITY,
    REPO_ROOT,
    WHEEL_BUNDLE,
    WHEEL_DIGEST,
    WHEEL_IDENTITY,
    cosign_layer,
    trusted_root_bytes,
    trusted_root_document,
)

IMAGE_RULE = IdentityRule(issuer=GITHUB_ISSUER, identity=IMAGE_IDENTITY)
COSIGN_RULE = IdentityRule(issuer=GITHUB_ISSUER, identity=COSIGN_IDENTITY)


@pytest.fixture(scope="module")
def root() -> TrustedRootHandle:
    return load_trusted_root(trusted_root_bytes(), "trusted_root.json")


def bundle_refusal(bundle: bytes, root: TrustedRootHandle) -> KeylessFailure:
    with pytest.raises(KeylessFailure) as caught:
        verify_sigstore_bundle(bundle, trusted_root=root, digest=IMAGE_DIGEST, rule=IMAGE_RULE)
    assert caught.value.code == SIGNATURE_INVALID
    assert caught.value.reason and "\n" not in caught.value.reason
    return caught.value


# Trusted roots.


def test_a_trusted_root_that_is_not_json_is_a_usage_error_naming_its_file() -> None:
    with pytest.raises(UsageError, match=r"^roots/trusted_root\.json: "):
        load_trusted_root(b"not json {", "roots/trusted_root.json")


def test_a_trusted_root_with_a_duplicate_key_is_a_usage_error() -> None:
    raw = trusted_root_bytes().replace(b'"mediaType"', b'"mediaType": "x", "mediaType"', 1)
    with pytest.raises(UsageError, match="duplicate key"):
        load_trusted_root(raw, "trusted_root.json")


def test_a_trusted_root_of_another_media_type_is_a_usage_error() -> None:
    document = trusted_root_document()
    document["mediaType"] = "application/vnd.dev.sigstore.trustedroot+json;version=9"
    with pytest.raises(UsageError, match=r"^trusted_root\.json: .*mediaType"):
        load_trusted_root(json.dumps(document).encode(), "trusted_root.json")


def test_a_trusted_root_without_a_fulcio_ca_is_a_usage_error() -> None:
    document = trusted_root_document()
    document["certificateAuthorities"] = []
    with pytest.raises(UsageError, match="Fulcio"):
        load_trusted_root(json.dumps(document).encode(), "trusted_root.json")


def test_a_trusted_root_without_a_rekor_key_is_a_usage_error() -> None:
    document = trusted_root_document()
    document["tlogs"] = []
    with pytest.raises(UsageError, match="Rekor"):
        load_trusted_root(json.dumps(document).encode(), "trusted_root.json")


@pytest.mark.parametrize("end", ["", "yesterday", 7])
def test_a_trusted_root_with_a_validity_that_is_not_a_time_is_a_usage_error(end: object) -> None:
    document = trusted_root_document()
    document["tlogs"][0]["publicKey"]["validFor"]["end"] = end
    with pytest.raises(UsageError, match=r"validFor\.end"):
        load_trusted_root(json.dumps(document).encode(), "trusted_root.json")


def test_a_trusted_root_over_its_limit_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyless, "DEFAULT_LIMITS", replace(DEFAULT_LIMITS, max_trusted_root_bytes=1000))
    with pytest.raises(UsageError, match="max_trusted_root_bytes"):
        load_trusted_root(trusted_root_bytes(), "trusted_root.json")


# Hostile bundles.


def test_a_bundle_that_is_not_json_is_invalid(root: TrustedRootHandle) -> None:
    bundle_refusal(b"\x00\xffnot json", root)


def test_a_bundle_with_a_duplicate_key_is_invalid(root: TrustedRootHandle) -> None:
    raw = IMAGE_BUNDLE.read_bytes()
    forged = raw.replace(b'"dsseEnvelope"', b'"dsseEnvelope": {}, "dsseEnvelope"', 1)
    assert b"dsseEnvelope" in forged and forged != raw
    assert "duplicate key" in bundle_refusal(forged, root).reason


def test_a_deeply_nested_bundle_is_invalid(root: TrustedRootHandle) -> None:
    bundle_refusal(b"[" * 100_000 + b"]" * 100_000, root)


def test_a_bundle_over_its_limit_is_invalid_before_it_is_parsed(
    root: TrustedRootHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyless, "DEFAULT_LIMITS", replace(DEFAULT_LIMITS, max_sigstore_bundle_bytes=100))
    assert "max_sigstore_bundle_bytes" in bundle_refusal(IMAGE_BUNDLE.read_bytes(), root).reason


@pytest.mark.parametrize(
    "bundle",
    [
        {},
        [],
        {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"},
        {"mediaType": "application/vnd.dev.sigstore.bundle.v9+json", "verificationMaterial": {}},
        {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": {"certificate": 7}},
    ],
)
def test_a_bundle_of_the_wrong_shape_is_invalid(root: TrustedRootHandle, bundle: Any) -> None:
    bundle_refusal(json.dumps(bundle).encode(), root)


def test_a_bundle_signed_with_a_key_not_a_certificate_is_invalid(root: TrustedRootHandle) -> None:
    document = json.loads(WHEEL_BUNDLE.read_bytes())
    document["verificationMaterial"].pop("x509CertificateChain")
    document["verificationMaterial"]["publicKey"] = {"hint": "abc"}
    with pytest.raises(KeylessFailure) as caught:
        verify_sigstore_bundle(
            json.dumps(document).encode(),
            trusted_root=root,
            digest=WHEEL_DIGEST,
            rule=IdentityRule(issuer=GITHUB_ISSUER, identity=WHEEL_IDENTITY),
        )
    assert caught.value.code == SIGNATURE_INVALID


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_bundle_with_any_bytes_changed_verifies_or_is_refused_never_crashes(
    root: TrustedRootHandle, data: st.DataObject
) -> None:
    raw = bytearray(IMAGE_BUNDLE.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        verify_sigstore_bundle(bytes(raw), trusted_root=root, digest=IMAGE_DIGEST, rule=IMAGE_RULE)
    except KeylessFailure as failure:
        assert failure.reason and "\n" not in failure.reason


# Hostile classic layers.


def classic(root: TrustedRootHandle, **changes: Any) -> KeylessFailure:
    layer = cosign_layer()
    parts: dict[str, Any] = {
        "payload": COSIGN_PAYLOAD.read_bytes(),
        "signature_b64": layer["signature"],
        "certificate_pem": layer["certificate"].encode(),
        "chain_pem": layer["chain"].encode(),
        "rekor_bundle_json": layer["bundle"].encode(),
    }
    parts.update(changes)
    with pytest.raises(KeylessFailure) as caught:
        verify_cosign_keyless(**parts, trusted_root=root, rule=COSIGN_RULE)
    assert caught.value.code == SIGNATURE_INVALID
    assert caught.value.reason and "\n" not in caught.value.reason
    return caught.value


@pytest.mark.parametrize(
    "changes",
    [
        {"signature_b64": "not base64!"},
        {"signature_b64": ""},
        {"certificate_pem": b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
        {"certificate_pem": b"not a certificate"},
        {"chain_pem": b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"},
        {"rekor_bundle_json": b"not json"},
        {"rekor_bundle_json": b"{}"},
        {"rekor_bundle_json": b'{"SignedEntryTimestamp": "x", "Payload": {"body": 1}}'},
        {"rekor_bundle_json": b'{"Payload": {}, "Payload": {}}'},
    ],
)
def test_a_malformed_classic_layer_is_invalid(root: TrustedRootHandle, changes: dict[str, Any]) -> None:
    classic(root, **changes)


def test_a_rekor_entry_whose_body_is_not_a_hashedrekord_is_invalid(root: TrustedRootHandle) -> None:
    document = json.loads(cosign_layer()["bundle"])
    document["Payload"]["body"] = base64.b64encode(b'{"kind": "intoto"}').decode()
    classic(root, rekor_bundle_json=json.dumps(document).encode())


def test_a_payload_over_its_limit_is_invalid(root: TrustedRootHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyless, "DEFAULT_LIMITS", replace(DEFAULT_LIMITS, max_sigstore_bundle_bytes=100))
    assert "max_sigstore_bundle_bytes" in classic(root).reason


def test_a_certificate_chain_over_its_limit_is_invalid(
    root: TrustedRootHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyless, "DEFAULT_LIMITS", replace(DEFAULT_LIMITS, max_certificate_pem_bytes=500))
    assert "max_certificate_pem_bytes" in classic(root).reason


# Identity rules and what a certificate claims.


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (IdentityRule(issuer=GITHUB_ISSUER), "identity"),
        (IdentityRule(issuer=GITHUB_ISSUER, identity="a", identity_regexp="a"), "identity"),
        (IdentityRule(issuer="", identity="a"), "issuer"),
        (IdentityRule(issuer=GITHUB_ISSUER, identity_regexp="(unclosed"), "RE2"),
        (IdentityRule(issuer=GITHUB_ISSUER, identity_regexp="(a)\\1"), "RE2"),
        (IdentityRule(issuer=GITHUB_ISSUER, identity_regexp="a" * 5000), "max_identity_regexp_chars"),
    ],
)
def test_a_rule_that_cannot_be_checked_is_a_usage_error_naming_it(rule: IdentityRule, problem: str) -> None:
    with pytest.raises(UsageError, match=r"^mirrorset\.yaml: spec\.verify\[0\]") as caught:
        check_identity_rule(rule, "mirrorset.yaml: spec.verify[0]")
    assert problem in str(caught.value)


def test_what_a_certificate_claims_is_read_without_verifying_it() -> None:
    assert signer_of_certificate(cosign_layer()["certificate"].encode()) == KeylessSigner(
        GITHUB_ISSUER, COSIGN_IDENTITY
    )


def test_a_der_certificate_claims_the_same_signer_as_its_pem() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = cosign_layer()["certificate"].encode()
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    assert signer_of_certificate(der) == signer_of_certificate(pem) is not None


@pytest.mark.parametrize("pem", [b"", b"junk", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_a_certificate_that_does_not_parse_claims_nothing(pem: bytes) -> None:
    assert signer_of_certificate(pem) is None


def test_a_ca_certificate_without_fulcio_extensions_claims_nothing() -> None:
    assert signer_of_certificate(cosign_layer()["chain"].encode()) is None


# No network, and no cost for commands that do not verify.


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    attempts: list[str] = []

    def refuse(name: str) -> Any:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{name}{args[1:2] or args[:1]}")
            raise NetworkUsed(f"{name} called while the network is blocked")

        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    yield attempts


def test_verification_opens_no_connection(no_network: list[str]) -> None:
    root = load_trusted_root(trusted_root_bytes(), "trusted_root.json")
    verify_sigstore_bundle(IMAGE_BUNDLE.read_bytes(), trusted_root=root, digest=IMAGE_DIGEST, rule=IMAGE_RULE)
    wheel_rule = IdentityRule(issuer=GITHUB_ISSUER, identity=WHEEL_IDENTITY)
    verify_sigstore_bundle(WHEEL_BUNDLE.read_bytes(), trusted_root=root, digest=WHEEL_DIGEST, rule=wheel_rule)
    layer = cosign_layer()
    verify_cosign_keyless(
        COSIGN_PAYLOAD.read_bytes(),
        layer["signature"],
        layer["certificate"].encode(),
        layer["chain"].encode(),
        layer["bundle"].encode(),
        trusted_root=root,
        rule=COSIGN_RULE,
    )
    assert no_network == []


def test_verification_opens_no_connection_in_a_fresh_process() -> None:
    """Where sigstore is first imported with the network already blocked (no module state from other tests)."""
    script = f"""
import socket, sys
sys.path.insert(0, {str(REPO_ROOT)!r})
def blocked(*args, **kwargs):
    raise SystemExit("network used: " + repr(args))
socket.socket.connect = socket.socket.connect_ex = blocked
socket.create_connection = socket.getaddrinfo = blocked
from mirror.supplychain.keyless import IdentityRule, load_trusted_root, verify_sigstore_bundle
from tests.support import sigstore_data as d
root = load_trusted_root(d.trusted_root_bytes(), "trusted_root.json")
rule = IdentityRule(issuer=d.GITHUB_ISSUER, identity=d.IMAGE_IDENTITY)
print(verify_sigstore_bundle(d.IMAGE_BUNDLE.read_bytes(), trusted_root=root, digest=d.IMAGE_DIGEST, rule=rule))
"""
    env_home = {"HOME": "/nonexistent", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env_home, check=False)
    assert result.returncode == 0, result.stderr
    assert IMAGE_IDENTITY in result.stdout


def test_importing_keyless_does_not_import_sigstore() -> None:
    heavy = "{'sigstore', 'sigstore_models', 'pydantic', 'rekor_types'}"
    script = (
        f"import sys, mirror.supplychain.keyless; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert result.stdout.strip() == "[]"
