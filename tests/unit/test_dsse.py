"""DSSE envelopes: PAE, the envelope's strict shape, both base64 alphabets, and signatures matched to pinned keys.

A keyid only orders the search for a key; it never decides which key signed.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mirror.errors import BundleFormatError, VerificationError
from mirror.trust.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, pae, parse_envelope, sign_envelope
from mirror.trust.keys import ECDSA_P256, ED25519, PublicKey, Signer

PAYLOAD = b'{"_type":"https://in-toto.io/Statement/v1"}'


def p256_signer() -> Signer:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Signer(private, PublicKey(der, ECDSA_P256, "p256"))


def ed25519_signer() -> Signer:
    private = ed25519.Ed25519PrivateKey.generate()
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Signer(private, PublicKey(der, ED25519, "ed25519"))


@pytest.fixture
def alice() -> Signer:
    return p256_signer()


@pytest.fixture
def bob() -> Signer:
    return p256_signer()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def envelope_json(payload: bytes, payload_type: str, signatures: list[dict[str, Any]]) -> bytes:
    return json.dumps({"payload": b64(payload), "payloadType": payload_type, "signatures": signatures}).encode()


def signature_entry(signer: Signer, payload: bytes, keyid: str, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> dict:
    return {"keyid": keyid, "sig": b64(signer.sign(pae(payload_type, payload)))}


def body_of(signer: Signer, payload: bytes = PAYLOAD) -> dict[str, Any]:
    return json.loads(sign_envelope(payload, signer))


def parse(body: dict[str, Any]) -> Envelope:
    return parse_envelope(json.dumps(body).encode(), "test.json")


# --- PAE --------------------------------------------------------------------------------------------------


def test_pae_matches_the_spec_vector() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_of_empty_type_and_payload() -> None:
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_pae_type_length_counts_utf8_bytes_not_characters() -> None:
    assert pae("täp", b"x") == "DSSEv1 4 täp 1 x".encode()


def test_pae_payload_length_counts_bytes() -> None:
    body = "héllo".encode()
    assert pae("t", body) == b"DSSEv1 1 t 6 " + body


# --- signing and parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [p256_signer, ed25519_signer], ids=["ecdsa-p256", "ed25519"])
def test_signed_envelope_round_trips_and_is_signed_by_its_key(make: Any) -> None:
    signer = make()
    envelope = parse_envelope(sign_envelope(PAYLOAD, signer), "test.json")
    assert (envelope.payload_type, envelope.payload) == (IN_TOTO_PAYLOAD_TYPE, PAYLOAD)
    assert envelope.signed_by([signer.public]) == [signer.public]


def test_sign_envelope_names_the_key_id_and_the_in_toto_type(alice: Signer) -> None:
    body = body_of(alice)
    assert body["payloadType"] == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in body["signatures"]] == [alice.public.key_id]


def test_signed_by_finds_the_signer_among_several_keys(alice: Signer, bob: Signer) -> None:
    envelope = parse(body_of(alice))
    assert envelope.signed_by([bob.public, alice.public]) == [alice.public]


def test_signed_by_is_empty_without_the_signing_key(alice: Signer, bob: Signer) -> None:
    assert parse(body_of(alice)).signed_by([bob.public]) == []


def test_url_safe_unpadded_base64_is_accepted(alice: Signer) -> None:
    payload = b"\xfb\xff\xbf" + PAYLOAD  # standard base64 of these bytes starts with "+/+/"
    signature = alice.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    url_payload = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    assert url_payload != b64(payload).rstrip("=")  # the alphabets really differ here
    raw = json.dumps(
        {
            "payload": url_payload,
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"keyid": "", "sig": base64.urlsafe_b64encode(signature).decode().rstrip("=")}],
        }
    ).encode()
    envelope = parse_envelope(raw, "test.json")
    assert envelope.payload == payload
    assert envelope.signed_by([alice.public]) == [alice.public]


def test_standard_base64_without_padding_is_accepted(alice: Signer) -> None:
    payload = PAYLOAD + b"!"
    assert b64(payload).endswith("=")
    body = body_of(alice, payload)
    body["payload"] = body["payload"].rstrip("=")
    envelope = parse(body)
    assert envelope.payload == payload
    assert envelope.signed_by([alice.public]) == [alice.public]


@pytest.mark.parametrize("text", ["not base64!", "A", "YQ==YQ==", "Y Q==", "YQ==="])
def test_invalid_base64_payload_is_refused(alice: Signer, text: str) -> None:
    body = body_of(alice)
    body["payload"] = text
    with pytest.raises(BundleFormatError):
        parse(body)


def test_invalid_base64_signature_is_refused(alice: Signer) -> None:
    body = body_of(alice)
    body["signatures"][0]["sig"] = "**"
    with pytest.raises(BundleFormatError):
        parse(body)


def test_payload_that_is_not_a_string_is_refused(alice: Signer) -> None:
    body = body_of(alice)
    body["payload"] = 12
    with pytest.raises(BundleFormatError):
        parse(body)


def test_extra_top_level_field_is_refused(alice: Signer) -> None:
    body = body_of(alice)
    body["extra"] = 1
    with pytest.raises(BundleFormatError):
        parse(body)


@pytest.mark.parametrize("field", ["payload", "payloadType", "signatures"])
def test_missing_top_level_field_is_refused(alice: Signer, field: str) -> None:
    body = body_of(alice)
    del body[field]
    with pytest.raises(BundleFormatError):
        parse(body)


def test_empty_signature_list_is_refused(alice: Signer) -> None:
    body = body_of(alice)
    body["signatures"] = []
    with pytest.raises(BundleFormatError):
        parse(body)


def test_signatures_that_is_not_a_list_is_refused(alice: Signer) -> None:
    body = body_of(alice)
    body["signatures"] = body["signatures"][0]
    with pytest.raises(BundleFormatError):
        parse(body)


def test_payload_type_that_is_not_a_string_is_refused(alice: Signer) -> None:
    body = body_of(alice)
    body["payloadType"] = ["application/vnd.in-toto+json"]
    with pytest.raises(BundleFormatError):
        parse(body)


def test_signature_without_sig_is_refused(alice: Signer) -> None:
    body = body_of(alice)
    del body["signatures"][0]["sig"]
    with pytest.raises(BundleFormatError):
        parse(body)


def test_signature_with_an_extra_field_is_refused(alice: Signer) -> None:
    body = body_of(alice)
    body["signatures"][0]["cert"] = "x"
    with pytest.raises(BundleFormatError):
        parse(body)


def test_keyid_that_is_not_a_string_is_refused(alice: Signer) -> None:
    body = body_of(alice)
    body["signatures"][0]["keyid"] = 7
    with pytest.raises(BundleFormatError):
        parse(body)


def test_signature_without_keyid_still_verifies(alice: Signer) -> None:
    body = body_of(alice)
    del body["signatures"][0]["keyid"]
    assert parse(body).signed_by([alice.public]) == [alice.public]


def test_duplicate_json_keys_are_refused(alice: Signer) -> None:
    raw = sign_envelope(PAYLOAD, alice)
    forged = raw.replace(b'"payloadType":', b'"payloadType": "text/plain", "payloadType":', 1)
    assert forged != raw
    with pytest.raises(VerificationError):
        parse_envelope(forged, "test.json")


def test_envelope_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(VerificationError):
        parse_envelope(b"[]", "test.json")


# --- keyid is only a hint ---------------------------------------------------------------------------------


def test_signature_with_a_wrong_keyid_still_verifies_by_trying_every_key(alice: Signer, bob: Signer) -> None:
    raw = envelope_json(PAYLOAD, IN_TOTO_PAYLOAD_TYPE, [signature_entry(alice, PAYLOAD, keyid=bob.public.key_id)])
    assert parse_envelope(raw, "test.json").signed_by([bob.public, alice.public]) == [alice.public]


def test_keyid_naming_a_trusted_key_on_another_keys_signature_does_not_count(alice: Signer, bob: Signer) -> None:
    # Bob (not trusted) signs and claims to be Alice (trusted).
    raw = envelope_json(PAYLOAD, IN_TOTO_PAYLOAD_TYPE, [signature_entry(bob, PAYLOAD, keyid=alice.public.key_id)])
    assert parse_envelope(raw, "test.json").signed_by([alice.public]) == []


def test_same_key_signing_twice_in_one_envelope_counts_once(alice: Signer) -> None:
    entries = [signature_entry(alice, PAYLOAD, alice.public.key_id) for _ in range(2)]
    assert entries[0]["sig"] != entries[1]["sig"]  # ECDSA: two distinct signatures by one key
    envelope = parse_envelope(envelope_json(PAYLOAD, IN_TOTO_PAYLOAD_TYPE, entries), "test.json")
    assert envelope.signed_by([alice.public]) == [alice.public]


def test_two_keys_signing_one_envelope_are_both_found(alice: Signer, bob: Signer) -> None:
    entries = [signature_entry(alice, PAYLOAD, ""), signature_entry(bob, PAYLOAD, "")]
    envelope = parse_envelope(envelope_json(PAYLOAD, IN_TOTO_PAYLOAD_TYPE, entries), "test.json")
    assert envelope.signed_by([alice.public, bob.public]) == [alice.public, bob.public]


def test_garbage_signature_beside_a_valid_one_does_not_hide_it(alice: Signer) -> None:
    entries = [{"keyid": alice.public.key_id, "sig": b64(b"garbage")}, signature_entry(alice, PAYLOAD, "")]
    envelope = parse_envelope(envelope_json(PAYLOAD, IN_TOTO_PAYLOAD_TYPE, entries), "test.json")
    assert envelope.signed_by([alice.public]) == [alice.public]


# --- what the signature covers ----------------------------------------------------------------------------


def test_changing_payload_type_breaks_the_signature(alice: Signer) -> None:
    body = body_of(alice)
    body["payloadType"] = "application/json"
    assert parse(body).signed_by([alice.public]) == []


def test_changing_the_payload_breaks_the_signature(alice: Signer) -> None:
    body = body_of(alice)
    body["payload"] = b64(PAYLOAD.replace(b":", b": "))
    assert parse(body).signed_by([alice.public]) == []


def test_signature_over_the_bare_payload_instead_of_pae_does_not_verify(alice: Signer) -> None:
    raw = envelope_json(PAYLOAD, IN_TOTO_PAYLOAD_TYPE, [{"keyid": "", "sig": b64(alice.sign(PAYLOAD))}])
    assert parse_envelope(raw, "test.json").signed_by([alice.public]) == []
