"""A Sigstore bundle (v0.1 to v0.3) verified by the `sigstore` package against a loaded trusted root, offline.

sigstore checks the signature, the certificate chain to a Fulcio CA at the signing time the log or a timestamp
authority proves, the certificate's SCT, and the Rekor entry (inclusion proof, checkpoint, promise) against the
materials. What it signed is then read here: the bundle's message digest, or the in-toto statement's subjects.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from mirror.errors import InvalidDocumentError
from mirror.oci.document import strict_json
from mirror.supplychain.attached import COSIGN_SIGN_PREDICATE, IN_TOTO
from mirror.supplychain.codes import SIGNATURE_DIGEST_MISMATCH, SIGNATURE_INVALID
from mirror.supplychain.keyless_types import KeylessFailure, TrustedRootHandle

# The bundle's names of the digest algorithms an OCI digest may use (sigstore's protobuf HashAlgorithm).
_MESSAGE_DIGEST_ALGORITHMS = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}


class _IdentityCheckedAfterwards:
    """sigstore's verification policy, accepting every certificate: the identity is checked after the
    signature and the digest, so that a forged signature is INVALID whoever it claims to be."""

    def verify(self, certificate: Any) -> None:
        return None


def verify_bundle(raw: bytes, document: dict[str, Any], root: TrustedRootHandle, digest: str) -> Any:
    """The bundle's signing certificate, once its signature is proven and is over `digest`."""
    algorithm, expected = digest.split(":", 1)
    if "dsseEnvelope" in document:
        bundle, payload_type, payload = _sigstore_verified_dsse(raw, root)
        _check_statement(payload_type, payload, algorithm, expected, digest)
    else:
        claimed = _claimed_message_digest(document)
        bundle = _sigstore_verified_message(raw, root, claimed or ("sha256", expected))
        if claimed is not None and claimed != (algorithm, expected):
            raise KeylessFailure(SIGNATURE_DIGEST_MISMATCH, f"the bundle signs {claimed[0]}:{claimed[1]}, not {digest}")
    return bundle.signing_certificate


def _sigstore_verified_dsse(raw: bytes, root: TrustedRootHandle) -> tuple[Any, str, bytes]:
    from sigstore.models import Bundle

    try:
        bundle = Bundle.from_json(raw)
        payload_type, payload = root.verifier.verify_dsse(bundle, _IdentityCheckedAfterwards())
    except Exception as exc:  # whatever sigstore, pydantic or cryptography raise on what they read: refused
        raise _invalid(exc) from exc
    return bundle, str(payload_type), bytes(payload)


def _sigstore_verified_message(raw: bytes, root: TrustedRootHandle, digest: tuple[str, str]) -> Any:
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle
    from sigstore_models.common.v1 import HashAlgorithm

    try:
        bundle = Bundle.from_json(raw)
        if digest[0] != "sha256":  # sigstore verifies message signatures over SHA-256 only
            raise ValueError(f"a message signature over a {digest[0]} digest is not supported")
        hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest[1]))
        root.verifier.verify_artifact(hashed, bundle, _IdentityCheckedAfterwards())
    except Exception as exc:  # as above: every failure to prove the signature is a refusal
        raise _invalid(exc) from exc
    return bundle


def _invalid(exc: Exception) -> KeylessFailure:
    return KeylessFailure(SIGNATURE_INVALID, f"the Sigstore bundle does not verify: {exc or type(exc).__name__}")


def _claimed_message_digest(document: dict[str, Any]) -> tuple[str, str] | None:
    """The digest the bundle's message signature says it signs, as (algorithm, hex); None if it says none."""
    signature = document.get("messageSignature")
    claimed = signature.get("messageDigest") if isinstance(signature, dict) else None
    if not isinstance(claimed, dict):
        return None
    algorithm = _MESSAGE_DIGEST_ALGORITHMS.get(str(claimed.get("algorithm")))
    value = claimed.get("digest")
    if algorithm is None or not isinstance(value, str):
        raise KeylessFailure(SIGNATURE_INVALID, f"the bundle's message digest is not one we read: {claimed!r:.200}")
    try:
        return algorithm, base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError) as exc:  # ValueError: not ASCII
        raise KeylessFailure(SIGNATURE_INVALID, f"the bundle's message digest is not base64: {exc}") from exc


def _check_statement(payload_type: str, payload: bytes, algorithm: str, expected: str, digest: str) -> None:
    """The signed in-toto statement must be cosign's image signature and name `digest` among its subjects."""
    if payload_type != IN_TOTO:
        raise KeylessFailure(SIGNATURE_INVALID, f"the bundle signs a {payload_type!r:.200}, not an in-toto statement")
    try:
        statement = strict_json(payload, "the signed in-toto statement")
    except InvalidDocumentError as exc:
        raise KeylessFailure(SIGNATURE_INVALID, exc.message) from exc
    predicate_type = statement.get("predicateType") if isinstance(statement, dict) else None
    if predicate_type != COSIGN_SIGN_PREDICATE:
        # An attestation (provenance, an SBOM, a scan) says something about the image, by whoever made it; as
        # cosign's verify, only the statement cosign signs an image with is a signature.
        raise KeylessFailure(
            SIGNATURE_INVALID,
            f"the bundle is an attestation of predicate type {predicate_type!r:.200}, not an image signature "
            f"({COSIGN_SIGN_PREDICATE})",
        )
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    if not isinstance(subjects, list):
        raise KeylessFailure(SIGNATURE_INVALID, "the signed in-toto statement has no subject list")
    named = [
        f"{name}:{value}"
        for subject in subjects
        if isinstance(subject, dict) and isinstance(subject.get("digest"), dict)
        for name, value in subject["digest"].items()
        if isinstance(value, str)
    ]
    if f"{algorithm}:{expected}" not in (entry.lower() for entry in named):
        shown = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
        raise KeylessFailure(SIGNATURE_DIGEST_MISMATCH, f"the statement is about {shown or 'nothing'}, not {digest}")
