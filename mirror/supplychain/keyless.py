"""Keyless verification of upstream signatures, offline: Sigstore bundles and cosign's classic layout, checked
against a trusted root given as bytes, and the signer's certificate against an identity rule.

Nothing here reaches the network: no TUF refresh, no Rekor lookup (import runs air-gapped). `sigstore` is
imported inside the functions, so commands that verify nothing do not pay for it. What is checked, in which
order, and what each refusal means: docs/supply-chain.md ("Keyless").
"""

from __future__ import annotations

import re

from mirror.errors import InvalidDocumentError, UsageError
from mirror.limits import DEFAULT_LIMITS
from mirror.oci.document import strict_json
from mirror.supplychain.codes import SIGNATURE_INVALID
from mirror.supplychain.keyless_identity import check_rule, claimed_signer, signer_matching
from mirror.supplychain.keyless_types import IdentityRule, KeylessFailure, KeylessSigner, TrustedRootHandle

__all__ = [
    "IdentityRule",
    "KeylessFailure",
    "KeylessSigner",
    "TrustedRootHandle",
    "check_identity_rule",
    "load_trusted_root",
    "signer_of_certificate",
    "verify_cosign_keyless",
    "verify_sigstore_bundle",
]

_DIGEST = re.compile(r"(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})")


def load_trusted_root(raw: bytes, where: str) -> TrustedRootHandle:
    """A trusted_root.json parsed once for every verification against it; a UsageError naming `where` if it is
    not one (not JSON, a duplicate key, another media type, no Fulcio CA, no Rekor key, over its limit)."""
    from mirror.supplychain.keyless_root import parse_trusted_root

    limit = DEFAULT_LIMITS.max_trusted_root_bytes
    if len(raw) > limit:
        raise UsageError(f"{where}: {len(raw)} bytes, more than max_trusted_root_bytes ({limit})")
    return parse_trusted_root(raw, where)


def check_identity_rule(rule: IdentityRule, where: str) -> None:
    """Refuse, as a UsageError naming `where`, a rule that cannot be checked: no issuer, not exactly one of
    identity and identityRegexp, or a regexp RE2 cannot compile or longer than max_identity_regexp_chars."""
    check_rule(rule, where)


def verify_sigstore_bundle(
    bundle_json: bytes, *, trusted_root: TrustedRootHandle, digest: str, rule: IdentityRule
) -> KeylessSigner:
    """The signer of a Sigstore bundle whose signature is over `digest` (an OCI digest, `sha256:<hex>`): a message
    signature over an artifact with that digest, or a DSSE in-toto statement with a subject of that digest.
    KeylessFailure otherwise: SIGNATURE_INVALID, then SIGNATURE_DIGEST_MISMATCH, then SIGNATURE_IDENTITY_MISMATCH."""
    from mirror.supplychain.keyless_bundle import verify_bundle

    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"not a digest to verify a signature over: {digest!r}")
    _within(bundle_json, DEFAULT_LIMITS.max_sigstore_bundle_bytes, "max_sigstore_bundle_bytes", "the Sigstore bundle")
    try:
        # Read strictly before sigstore reads it: its parser would take the last of two duplicate keys.
        document = strict_json(bundle_json, "the Sigstore bundle")
    except InvalidDocumentError as exc:
        raise KeylessFailure(SIGNATURE_INVALID, exc.message) from exc
    if not isinstance(document, dict):
        raise KeylessFailure(SIGNATURE_INVALID, "the Sigstore bundle is not a JSON object")
    certificate = verify_bundle(bundle_json, document, trusted_root, digest)
    return signer_matching(certificate, rule)


def verify_cosign_keyless(
    payload: bytes,
    signature_b64: str,
    certificate_pem: bytes,
    chain_pem: bytes | None,
    rekor_bundle_json: bytes | None,
    *,
    trusted_root: TrustedRootHandle,
    rule: IdentityRule,
) -> KeylessSigner:
    """The signer of cosign's classic keyless signature over `payload` (the caller checks the digest the payload
    names). KeylessFailure otherwise: SIGNATURE_INVALID, then SIGNATURE_IDENTITY_MISMATCH."""
    from mirror.supplychain.keyless_classic import verify_classic

    limits = DEFAULT_LIMITS
    _within(payload, limits.max_sigstore_bundle_bytes, "max_sigstore_bundle_bytes", "the signed payload")
    _within(rekor_bundle_json, limits.max_sigstore_bundle_bytes, "max_sigstore_bundle_bytes", "the Rekor entry")
    _within(certificate_pem, limits.max_certificate_pem_bytes, "max_certificate_pem_bytes", "the certificate")
    _within(chain_pem, limits.max_certificate_pem_bytes, "max_certificate_pem_bytes", "the certificate chain")
    _within(signature_b64.encode(), limits.max_sigstore_bundle_bytes, "max_sigstore_bundle_bytes", "the signature")
    certificate = verify_classic(payload, signature_b64, certificate_pem, chain_pem, rekor_bundle_json, trusted_root)
    return signer_matching(certificate, rule)


def signer_of_certificate(certificate: bytes) -> KeylessSigner | None:
    """What a Fulcio certificate (PEM, or DER as Sigstore bundles hold it) claims (issuer, first identity),
    UNVERIFIED: for the report, never for a decision. None if it does not parse or names no signer."""
    from cryptography import x509

    if len(certificate) > DEFAULT_LIMITS.max_certificate_pem_bytes:
        return None
    try:
        if certificate.lstrip().startswith(b"-----BEGIN"):
            return claimed_signer(x509.load_pem_x509_certificate(certificate))
        return claimed_signer(x509.load_der_x509_certificate(certificate))
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):  # extensions parse lazily
        return None


def _within(value: bytes | None, limit: int, name: str, what: str) -> None:
    if value is not None and len(value) > limit:
        raise KeylessFailure(SIGNATURE_INVALID, f"{what} has {len(value)} bytes, more than {name} ({limit})")
