"""Real Sigstore bundles from ../shared/realdata/sigstore__sigstore-python (sigstore-python's own test assets),
verified offline by mirror.supplychain.keyless against the real trusted roots shipped beside them, and tampered
copies of them refused, each with its code.

The bundles sign files, not images: the digest verified is the SHA-256 of the file beside the bundle, as an
image's digest is the SHA-256 of its manifest. bundle_v3.txt and bundle_v3_alt.txt were logged by Sigstore's
staging instance (sigstage.dev), bundle_v3_github.whl by the production one: each verifies against its own
instance's root only. Nothing is copied out of the real data; the tests skip when it is absent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from tests.support.realdata import realdata
from tests.support.sigstore_data import altered_san, leaf_der, with_leaf_der

SOURCE = "sigstore__sigstore-python"
PRODUCTION = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
STAGING = "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_LOGIN = "https://github.com/login/oauth"


@dataclass(frozen=True)
class Real:
    """A bundle of the real data, the file it signs, the instance that logged it, and who signed."""

    artifact: str  # under test/assets; the bundle is ARTIFACT.sigstore
    instance: str
    issuer: str
    identity: str
    other_identity: str  # the identity with one character changed, same length (a forged SAN)

    @property
    def rule(self) -> IdentityRule:
        return IdentityRule(issuer=self.issuer, identity=self.identity)

    def path(self) -> Path:
        return realdata(SOURCE, "test", "assets", self.artifact)

    def bundle(self) -> bytes:
        return realdata(SOURCE, "test", "assets", f"{self.artifact}.sigstore").read_bytes()

    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.path().read_bytes()).hexdigest()


REAL = [
    Real("bundle_v3.txt", STAGING, GITHUB_LOGIN, "william@yossarian.net", "william@yossarian.neu"),
    Real("bundle_v3_alt.txt", STAGING, GITHUB_LOGIN, "william@yossarian.net", "william@yossarian.neu"),
    Real(
        "bundle_v3_github.whl",
        PRODUCTION,
        GITHUB_ISSUER,
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2",
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.3",
    ),
]
IDS = [real.artifact for real in REAL]


@pytest.fixture(scope="module")
def roots() -> dict[str, TrustedRootHandle]:
    """The trusted roots the `sigstore` package ships, as sigstore-python's tree holds them, by instance."""
    return {
        instance: load_trusted_root(path.read_bytes(), str(path))
        for instance in (PRODUCTION, STAGING)
        for path in [realdata(SOURCE, "sigstore", "_store", instance, "trusted_root.json")]
    }


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every attempt to open a connection is refused and recorded: verification must not need one."""
    attempts: list[str] = []

    def refuse(name: str) -> Any:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempts.append(name)
            raise ConnectionRefusedError(f"test: {name} called while the network is blocked")

        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    yield attempts


def refusal(bundle: bytes, root: TrustedRootHandle, digest: str, rule: IdentityRule) -> KeylessFailure:
    with pytest.raises(KeylessFailure) as caught:
        verify_sigstore_bundle(bundle, trusted_root=root, digest=digest, rule=rule)
    return caught.value


def with_message(bundle: bytes, *, digest: bytes | None = None, signature: bytes | None = None) -> bytes:
    """A copy of a message-signature bundle with its signed digest or its signature replaced."""
    document = json.loads(bundle)
    message = document["messageSignature"]
    if digest is not None:
        message["messageDigest"]["digest"] = base64.b64encode(digest).decode()
    if signature is not None:
        message["signature"] = base64.b64encode(signature).decode()
    return json.dumps(document).encode()


def altered(data: bytes) -> bytes:
    """The bytes with the last one changed: what a tampered copy of the signed file would hold."""
    return data[:-1] + bytes([data[-1] ^ 0x01])


# --- genuine -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("real", REAL, ids=IDS)
def test_a_real_bundle_verifies_offline_against_the_real_trusted_root_of_its_instance(real, roots, no_network):
    signer = verify_sigstore_bundle(
        real.bundle(), trusted_root=roots[real.instance], digest=real.digest(), rule=real.rule
    )
    assert signer == KeylessSigner(real.issuer, real.identity)
    assert no_network == []


@pytest.mark.parametrize("real", REAL, ids=IDS)
def test_a_real_bundle_is_refused_against_the_trusted_root_of_the_other_instance(real, roots):
    other = roots[STAGING if real.instance == PRODUCTION else PRODUCTION]
    assert refusal(real.bundle(), other, real.digest(), real.rule).code == SIGNATURE_INVALID


def test_a_real_bundle_by_another_signer_than_the_rule_names_is_an_identity_mismatch(roots):
    real = REAL[2]
    rule = IdentityRule(issuer=GITHUB_ISSUER, identity_regexp=r"https://github\.com/sigstore/.*")
    failure = refusal(real.bundle(), roots[real.instance], real.digest(), rule)
    assert failure.code == SIGNATURE_IDENTITY_MISMATCH
    assert real.identity in failure.reason


def test_a_real_v0_1_bundle_whose_inclusion_proof_has_no_checkpoint_is_refused_as_invalid(roots):
    # CPython 3.12.5's release signature (Sigstore bundle v0.1, August 2024): the entry's inclusion proof has no
    # signed checkpoint, which sigstore-python requires; nothing else proves the entry offline.
    raw = realdata(SOURCE, "test", "assets", "integration", "Python-3.12.5.tgz.sigstore").read_bytes()
    signed = base64.b64decode(json.loads(raw)["messageSignature"]["messageDigest"]["digest"])
    rule = IdentityRule(issuer="https://accounts.google.com", identity="thomas@python.org")
    failure = refusal(raw, roots[PRODUCTION], "sha256:" + signed.hex(), rule)
    assert failure.code == SIGNATURE_INVALID
    assert "checkpoint" in failure.reason


# --- tampered copies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("real", REAL, ids=IDS)
def test_a_bundle_rewritten_to_sign_an_altered_payload_is_invalid(real, roots):
    payload = altered(real.path().read_bytes())
    forged = with_message(real.bundle(), digest=hashlib.sha256(payload).digest())
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    assert refusal(forged, roots[real.instance], digest, real.rule).code == SIGNATURE_INVALID


@pytest.mark.parametrize("real", REAL, ids=IDS)
def test_a_bundle_whose_signature_was_altered_is_invalid(real, roots):
    signature = base64.b64decode(json.loads(real.bundle())["messageSignature"]["signature"])
    forged = with_message(real.bundle(), signature=altered(signature))
    assert refusal(forged, roots[real.instance], real.digest(), real.rule).code == SIGNATURE_INVALID


@pytest.mark.parametrize("real", REAL, ids=IDS)
def test_a_bundle_whose_certificate_was_altered_to_name_another_signer_is_invalid(real, roots):
    document = json.loads(real.bundle())
    der = altered_san(leaf_der(document), real.identity.encode(), real.other_identity.encode())
    forged = json.dumps(with_leaf_der(document, der)).encode()
    rule = IdentityRule(issuer=real.issuer, identity=real.other_identity)  # the forged name is the one asked for
    failure = refusal(forged, roots[real.instance], real.digest(), rule)
    assert failure.code == SIGNATURE_INVALID  # a forgery, never an identity question


@pytest.mark.parametrize("real", REAL, ids=IDS)
def test_a_genuine_bundle_checked_against_another_digest_is_a_digest_mismatch(real, roots):
    digest = "sha256:" + hashlib.sha256(altered(real.path().read_bytes())).hexdigest()
    failure = refusal(real.bundle(), roots[real.instance], digest, real.rule)
    assert failure.code == SIGNATURE_DIGEST_MISMATCH
    assert real.digest() in failure.reason
