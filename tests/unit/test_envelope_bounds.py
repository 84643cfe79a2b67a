"""Envelopes are bounded before they cost anything: how many are read, the size of each, the signatures in each."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from mirror.bundle.reader import DirectoryBundle
from mirror.bundle.signatures import add_envelope, read_envelopes
from mirror.errors import BundleFormatError, VerificationError
from mirror.limits import Limits
from mirror.trust import keys as trust_keys
from mirror.trust.approve import approve_bundle
from mirror.trust.check import check_trust
from mirror.trust.dsse import parse_envelope
from tests.support.craft import craft_bundle, p256_signer, write_policy

COLLECTOR = p256_signer("collector")


def junk_signature() -> str:
    """Well-formed DER of a random (r, s): only the curve arithmetic can tell it is not a signature."""
    r, s = (int.from_bytes(os.urandom(32)) >> 1 for _ in range(2))
    return base64.b64encode(encode_dss_signature(r, s)).decode()


def junk_envelope(key_id: str, signatures: int) -> bytes:
    """An envelope of random signatures that claim `key_id`: each one a public-key operation to refute."""
    body = {
        "payload": base64.b64encode(os.urandom(32)).decode(),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"keyid": key_id, "sig": junk_signature()} for _ in range(signatures)],
    }
    return json.dumps(body).encode()


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    directory = tmp_path / "trust"
    directory.mkdir()
    return write_policy(directory, COLLECTOR)


@pytest.fixture
def key_operations(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every signature a public key was asked to verify."""
    seen: list[bytes] = []
    original = trust_keys.PublicKey.verify

    def spy(self: trust_keys.PublicKey, signature: bytes, data: bytes) -> bool:
        seen.append(signature)
        return original(self, signature, data)

    monkeypatch.setattr(trust_keys.PublicKey, "verify", spy)
    return seen


def test_300_junk_envelopes_are_refused_quickly_with_one_problem_about_the_cap(tmp_path, policy):
    crafted = craft_bundle(tmp_path / "bundle", COLLECTOR)
    for _ in range(300):
        add_envelope(crafted.root, junk_envelope(COLLECTOR.public.key_id, 300))
    started = time.monotonic()
    report = check_trust(crafted.root, policy)
    elapsed = time.monotonic() - started
    codes = [p.code for p in report.problems]
    assert codes.count("ENVELOPE_LIMIT") == 1, codes
    assert "301 envelopes" in next(p.message for p in report.problems if p.code == "ENVELOPE_LIMIT")
    assert not report.files_checked
    assert elapsed < 5, f"took {elapsed:.1f} s"


def test_envelopes_up_to_the_cap_are_all_read(tmp_path):
    crafted = craft_bundle(tmp_path / "bundle", COLLECTOR)
    for _ in range(9):
        add_envelope(crafted.root, junk_envelope("k", 1))
    envelopes, problems = read_envelopes(DirectoryBundle(crafted.root), Limits(max_envelopes=10))
    assert len(envelopes) == 10 and problems == []


def test_the_envelope_size_limit_is_a_limits_field(tmp_path):
    crafted = craft_bundle(tmp_path / "bundle", COLLECTOR)
    add_envelope(crafted.root, b" " * 2_001)
    envelopes, problems = read_envelopes(DirectoryBundle(crafted.root), Limits(max_envelope_bytes=2_000))
    assert len(envelopes) == 1  # the collector's own, a few hundred bytes
    assert [p.code for p in problems] == ["ENVELOPE_INVALID"]
    assert "2001 bytes, more than the limit of 2000" in problems[0].message


def test_an_envelope_with_too_many_signatures_is_refused_before_any_key_operation(key_operations):
    raw = junk_envelope(COLLECTOR.public.key_id, 17)
    with pytest.raises(BundleFormatError, match="17 signatures, more than the limit of 16"):
        parse_envelope(raw, "signatures/x.json")
    assert key_operations == []


def test_a_signature_of_impossible_length_costs_no_key_operation(key_operations):
    body = json.loads(junk_envelope(COLLECTOR.public.key_id, 1))
    body["signatures"][0]["sig"] = base64.b64encode(b"\x30" * 4000).decode()  # no P-256 signature is this long
    envelope = parse_envelope(json.dumps(body).encode(), "signatures/x.json")
    assert envelope.signed_by([COLLECTOR.public]) == []
    assert key_operations == []


def test_a_signature_repeated_in_one_envelope_is_checked_once(key_operations):
    body = json.loads(junk_envelope(COLLECTOR.public.key_id, 1))
    body["signatures"] *= 8
    envelope = parse_envelope(json.dumps(body).encode(), "signatures/x.json")
    assert envelope.signed_by([COLLECTOR.public]) == []
    assert len(key_operations) == 1


def test_approve_refuses_to_add_an_envelope_beyond_the_cap(tmp_path):
    crafted = craft_bundle(tmp_path / "bundle", COLLECTOR)  # one envelope: the collector's
    officer = p256_signer("officer")
    with pytest.raises(VerificationError, match="already carries 1 envelopes"):
        approve_bundle(crafted.root, officer, collector_keys=[COLLECTOR.public], limits=Limits(max_envelopes=1))
    assert len(list((crafted.root / "signatures").iterdir())) == 1
