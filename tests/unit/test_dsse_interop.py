"""mirror's DSSE against securesystemslib, an independent implementation, in both directions and both key types.

securesystemslib matches signatures to keys by keyid, so its keys carry mirror's key id (the hex SHA-256 of the
DER SubjectPublicKeyInfo). Its ECDSA keys hold a PEM public key; its Ed25519 keys hold the raw key as hex.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from securesystemslib import exceptions as sslib_exceptions
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from mirror.trust.dsse import IN_TOTO_PAYLOAD_TYPE, pae, parse_envelope, sign_envelope
from mirror.trust.keys import ECDSA_P256, ED25519, PublicKey, Signer

PAYLOAD = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "inventory.json", "digest": {"sha256": "a" * 64}}],
        "predicateType": "urn:mirror:predicate:approval:v1",
        "predicate": {"comment": "héllo"},  # non-ASCII: PAE lengths must be byte counts on both sides
    },
    ensure_ascii=False,
).encode()

ALGORITHMS = [ECDSA_P256, ED25519]


def new_private(algorithm: str) -> Any:
    if algorithm == ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def mirror_signer(private: Any, algorithm: str) -> Signer:
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Signer(private, PublicKey(der, algorithm, "test"))


def sslib_key(private: Any, algorithm: str, keyid: str) -> SSlibKey:
    public = private.public_key()
    if algorithm == ECDSA_P256:
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return SSlibKey(keyid, "ecdsa", "ecdsa-sha2-nistp256", {"public": pem.decode()})
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SSlibKey(keyid, "ed25519", "ed25519", {"public": raw.hex()})


@pytest.fixture(params=ALGORITHMS)
def pair(request: pytest.FixtureRequest) -> tuple[Signer, SSlibKey, Any]:
    algorithm = request.param
    private = new_private(algorithm)
    signer = mirror_signer(private, algorithm)
    return signer, sslib_key(private, algorithm, signer.public.key_id), private


def tampered(body: dict[str, Any]) -> dict[str, Any]:
    original = base64.b64decode(body["payload"])
    payload = original.replace(b'"a', b'"b', 1)
    assert payload != original
    return {**body, "payload": base64.b64encode(payload).decode()}


# --- mirror signs, securesystemslib verifies --------------------------------------------------------------


def test_securesystemslib_verifies_a_mirror_envelope(pair: tuple[Signer, SSlibKey, Any]) -> None:
    signer, key, _ = pair
    envelope = SslibEnvelope.from_dict(json.loads(sign_envelope(PAYLOAD, signer)))
    assert envelope.verify([key], threshold=1) == {signer.public.key_id: key}
    assert (envelope.payload, envelope.payload_type) == (PAYLOAD, IN_TOTO_PAYLOAD_TYPE)


def test_securesystemslib_refuses_a_mirror_envelope_with_a_tampered_payload(
    pair: tuple[Signer, SSlibKey, Any],
) -> None:
    signer, key, _ = pair
    envelope = SslibEnvelope.from_dict(tampered(json.loads(sign_envelope(PAYLOAD, signer))))
    with pytest.raises(sslib_exceptions.VerificationError):
        envelope.verify([key], threshold=1)


def test_securesystemslib_computes_the_same_pae_as_mirror(pair: tuple[Signer, SSlibKey, Any]) -> None:
    signer, _, _ = pair
    envelope = SslibEnvelope.from_dict(json.loads(sign_envelope(PAYLOAD, signer)))
    assert envelope.pae() == pae(IN_TOTO_PAYLOAD_TYPE, PAYLOAD)


# --- securesystemslib signs, mirror verifies --------------------------------------------------------------


def sslib_signed(private: Any, key: SSlibKey, payload: bytes = PAYLOAD) -> dict[str, Any]:
    envelope = SslibEnvelope(payload, IN_TOTO_PAYLOAD_TYPE, {})
    envelope.sign(CryptoSigner(private, key))
    return envelope.to_dict()


def test_mirror_accepts_a_securesystemslib_envelope(pair: tuple[Signer, SSlibKey, Any]) -> None:
    signer, key, private = pair
    envelope = parse_envelope(json.dumps(sslib_signed(private, key)).encode(), "sslib.json")
    assert envelope.payload == PAYLOAD
    assert envelope.signed_by([signer.public]) == [signer.public]


def test_mirror_accepts_a_securesystemslib_envelope_under_sslib_own_key_id(
    pair: tuple[Signer, SSlibKey, Any],
) -> None:
    signer, _, private = pair
    own = CryptoSigner(private)  # securesystemslib's default key id, not mirror's: only a hint to mirror
    assert own.public_key.keyid != signer.public.key_id
    envelope = parse_envelope(json.dumps(sslib_signed(private, own.public_key)).encode(), "sslib.json")
    assert envelope.signed_by([signer.public]) == [signer.public]


def test_mirror_refuses_a_securesystemslib_envelope_with_a_tampered_payload(
    pair: tuple[Signer, SSlibKey, Any],
) -> None:
    signer, key, private = pair
    body = tampered(sslib_signed(private, key))
    assert parse_envelope(json.dumps(body).encode(), "sslib.json").signed_by([signer.public]) == []
