"""cosign key-based signatures: the keys cosign signs with, the signature over the exact payload bytes, and the
simple-signing payload read strictly (its type, and the digest it signs)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from mirror.errors import InvalidDocumentError, UsageError
from mirror.supplychain.cosign import cosign_key_from_pem, load_cosign_key, parse_simple_signing
from tests.support import cosign

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
REPOSITORY = "registry.example/team/app"


def key_of(private: cosign.PrivateKey):
    return cosign_key_from_pem(cosign.public_pem(private), "cosign.pub")


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ed25519", "rsa"])
def test_a_signature_cosign_makes_with_each_key_type_verifies(algorithm):
    private = cosign.generate_key(algorithm)
    payload = cosign.simple_signing_payload(REPOSITORY, DIGEST)
    assert key_of(private).verify(cosign.raw_signature(private, payload), payload)


def test_an_rsa_pss_signature_verifies():
    private = cosign.generate_key("rsa")
    payload = cosign.simple_signing_payload(REPOSITORY, DIGEST)
    assert key_of(private).verify(cosign.raw_signature(private, payload, rsa_pss=True), payload)


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ed25519", "rsa"])
def test_a_signature_by_another_key_does_not_verify(algorithm):
    payload = cosign.simple_signing_payload(REPOSITORY, DIGEST)
    signature = cosign.raw_signature(cosign.generate_key(algorithm), payload)
    assert not key_of(cosign.generate_key(algorithm)).verify(signature, payload)


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ed25519", "rsa"])
def test_a_payload_changed_after_signing_does_not_verify(algorithm):
    private = cosign.generate_key(algorithm)
    payload = cosign.simple_signing_payload(REPOSITORY, DIGEST)
    signature = cosign.raw_signature(private, payload)
    assert not key_of(private).verify(signature, payload.replace(b"ab", b"cd", 1))


def test_a_forged_signature_of_random_bytes_does_not_verify():
    private = cosign.generate_key()
    assert not key_of(private).verify(b"\x30\x06\x02\x01\x01\x02\x01\x01", b"payload")


def _der_integer(value: int, *, padded: bool) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8, "big")  # the minimal signed encoding
    body = b"\x00" + body if padded else body
    return b"\x02" + bytes([len(body)]) + body


def test_an_ecdsa_signature_in_non_canonical_der_is_refused_not_reinterpreted():
    private = cosign.generate_key()
    payload = b"payload"
    r, s = decode_dss_signature(cosign.raw_signature(private, payload))
    inner = _der_integer(r, padded=True) + _der_integer(s, padded=False)
    assert not key_of(private).verify(b"\x30" + bytes([len(inner)]) + inner, payload)


def test_the_key_id_is_the_sha256_of_the_der_public_key():
    private = cosign.generate_key()
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_of(private).key_id == hashlib.sha256(der).hexdigest()


def test_a_key_file_that_is_not_a_public_key_is_a_usage_error_naming_it(tmp_path):
    path = tmp_path / "cosign.pub"
    path.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    with pytest.raises(UsageError, match=r"cosign\.pub"):
        load_cosign_key(path)


def test_an_ecdsa_key_on_another_curve_is_refused():
    private = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(UsageError, match="P-256"):
        key_of(private)


def test_an_rsa_key_shorter_than_2048_bits_is_refused():
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(UsageError, match="2048"):
        key_of(private)


def test_the_payload_names_the_digest_it_signs():
    payload = cosign.simple_signing_payload(REPOSITORY, DIGEST, optional={"by": "ci"})
    signed = parse_simple_signing(payload, "layer")
    assert signed.digest == DIGEST
    assert signed.reference == REPOSITORY


def test_a_payload_of_another_type_is_refused():
    payload = cosign.simple_signing_payload(REPOSITORY, DIGEST, type_="atomic container signature")
    with pytest.raises(InvalidDocumentError, match="type"):
        parse_simple_signing(payload, "layer")


def test_a_payload_with_a_duplicate_key_is_refused():
    payload = (
        b'{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"'
        + DIGEST.encode()
        + b'","docker-manifest-digest":"'
        + OTHER_DIGEST.encode()
        + b'"},"type":"cosign container image signature"},"optional":null}'
    )
    with pytest.raises(InvalidDocumentError, match="duplicate"):
        parse_simple_signing(payload, "layer")


def test_a_payload_spelling_a_field_in_another_case_is_refused_as_ambiguous():
    # Go's encoding/json matches field names case-insensitively: cosign would read this second digest.
    payload = (
        b'{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"'
        + DIGEST.encode()
        + b'","Docker-manifest-digest":"'
        + OTHER_DIGEST.encode()
        + b'"},"type":"cosign container image signature"},"optional":null}'
    )
    with pytest.raises(InvalidDocumentError, match="Docker-manifest-digest"):
        parse_simple_signing(payload, "layer")


def test_a_payload_without_a_sha256_digest_is_refused():
    payload = cosign.simple_signing_payload(REPOSITORY, "sha512:" + "ab" * 64)
    with pytest.raises(InvalidDocumentError, match="docker-manifest-digest"):
        parse_simple_signing(payload, "layer")


def test_a_payload_that_is_not_json_is_refused():
    with pytest.raises(InvalidDocumentError):
        parse_simple_signing(base64.b64encode(b"junk"), "layer")
