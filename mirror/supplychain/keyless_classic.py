"""cosign's classic keyless layout, verified offline against a loaded trusted root.

The layer of a `sha256-<hex>.sig` manifest carries the signed payload, its signature, the Fulcio certificate
(and chain) and a Rekor signed entry timestamp (SET): the log's signature over the entry it integrated, with
the time. sigstore's Verifier cannot take these parts: it insists on a Merkle inclusion proof with a signed
checkpoint, which this layout never carried. So the checks are made here with `cryptography`, as cosign makes
them (docs/supply-chain.md, "Keyless"):

1. the signature verifies over the payload with the certificate's key;
2. the SET verifies with the trusted root's Rekor key named by the entry's log id, valid at the entry's time;
3. the entry is a hashedrekord of this payload's SHA-256, this signature and this certificate;
4. the certificate chains to a Fulcio CA of the trusted root, valid at the entry's time (every certificate of
   the chain valid then, the CA's validFor too), as a code-signing leaf;
5. its SCT verifies with the trusted root's CT log keys (sigstore's own SCT check, on this chain).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
from typing import TYPE_CHECKING, Any

from mirror.errors import InvalidDocumentError
from mirror.oci.document import strict_json
from mirror.supplychain.codes import SIGNATURE_INVALID
from mirror.supplychain.keyless_types import KeylessFailure, TrustedRootHandle

if TYPE_CHECKING:
    from cryptography.x509 import Certificate


class _Refused(Exception):
    """One check failed: its reason, turned into SIGNATURE_INVALID by verify_classic."""


def verify_classic(
    payload: bytes,
    signature_b64: str,
    certificate_pem: bytes,
    chain_pem: bytes | None,
    rekor_bundle_json: bytes | None,
    root: TrustedRootHandle,
) -> Certificate:
    """The signing certificate, once every check above holds; KeylessFailure(SIGNATURE_INVALID) otherwise."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.x509 import DuplicateExtension

    try:
        if rekor_bundle_json is None:
            raise _Refused(
                "no Rekor entry (dev.sigstore.cosign/bundle): offline, nothing proves the signature was logged "
                "while its certificate was valid"
            )
        signature = _base64(signature_b64, "the signature (dev.cosignproject.cosign/signature)")
        leaf = _one_certificate(certificate_pem)
        intermediates = _certificates(chain_pem) if chain_pem else []
        entry = _rekor_entry(rekor_bundle_json)
        _check_signature(leaf, signature, payload)
        integrated = _check_signed_entry_timestamp(entry, root)
        _check_entry_body(entry["body"], payload, signature, leaf)
        chain = _check_chain(leaf, intermediates, integrated, root)
        _check_sct(leaf, chain, root)
    except _Refused as exc:
        raise KeylessFailure(SIGNATURE_INVALID, str(exc)) from exc
    except (
        ValueError,
        TypeError,
        UnsupportedAlgorithm,
        DuplicateExtension,
    ) as exc:  # a certificate cryptography cannot use
        raise KeylessFailure(SIGNATURE_INVALID, f"the signature's materials do not parse: {exc}") from exc
    return leaf


def _base64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise _Refused(f"{what} is empty or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise _Refused(f"{what} is not base64: {exc}") from exc


def _certificates(pem: bytes) -> list[Certificate]:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise _Refused(f"a certificate does not parse: {exc}") from exc


def _one_certificate(pem: bytes) -> Certificate:
    certificates = _certificates(pem)
    if len(certificates) != 1:
        raise _Refused(f"the certificate annotation holds {len(certificates)} certificates, not one")
    return certificates[0]


def _rekor_entry(raw: bytes) -> dict[str, Any]:
    """The SET and its payload, each field of the type Rekor writes."""
    try:
        document = strict_json(raw, "the Rekor entry (dev.sigstore.cosign/bundle)")
    except InvalidDocumentError as exc:
        raise _Refused(exc.message) from exc
    entry = document.get("Payload") if isinstance(document, dict) else None
    if not isinstance(entry, dict):
        raise _Refused("the Rekor entry (dev.sigstore.cosign/bundle) has no Payload")
    fields = {"body": str, "integratedTime": int, "logIndex": int, "logID": str}
    for name, kind in fields.items():
        if type(entry.get(name)) is not kind:  # not isinstance: a bool is no integer here
            raise _Refused(f"the Rekor entry's {name} is missing or not a {kind.__name__}")
    try:
        log_id = bytes.fromhex(entry["logID"])
    except ValueError as exc:
        raise _Refused("the Rekor entry's logID is not hex") from exc
    signed = _base64(document.get("SignedEntryTimestamp"), "the Rekor entry's SignedEntryTimestamp")
    return {**{name: entry[name] for name in fields}, "log_id": log_id, "set": signed}


def _check_signature(leaf: Certificate, signature: bytes, payload: bytes) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise _Refused(f"the certificate's key is {type(key).__name__}; Fulcio keyless signatures are ECDSA")
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise _Refused("the signature does not verify over the payload with the certificate's key") from exc


def _check_signed_entry_timestamp(entry: dict[str, Any], root: TrustedRootHandle) -> datetime.datetime:
    """The time the log integrated the entry, once the log's SET over it verifies."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    try:
        integrated = datetime.datetime.fromtimestamp(entry["integratedTime"], tz=datetime.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise _Refused(f"the Rekor entry's integratedTime {entry['integratedTime']} is not a time") from exc
    log = root.log_keys.get(entry["log_id"])
    if log is None:
        raise _Refused(f"the Rekor entry's log {entry['logID']:.64} is not a Rekor log of the trusted root")
    if not log.valid_for.covers(integrated):
        raise _Refused(
            f"the trusted root's Rekor key {entry['logID']:.64} was not valid at {integrated:%Y-%m-%dT%H:%M:%SZ}"
        )
    # What Rekor signs: the entry's four fields as RFC 8785 canonical JSON. With keys sorted, no spaces, integers,
    # and strings checked to be base64 and hex (ASCII, nothing to escape), json.dumps writes exactly that.
    _base64(entry["body"], "the Rekor entry's body")
    signed = json.dumps(
        {key: entry[key] for key in ("body", "integratedTime", "logID", "logIndex")},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    try:
        if isinstance(log.public_key, ec.EllipticCurvePublicKey):
            log.public_key.verify(entry["set"], signed, ec.ECDSA(hashes.SHA256()))
        elif isinstance(log.public_key, ed25519.Ed25519PublicKey):
            log.public_key.verify(entry["set"], signed)
        else:
            raise _Refused(f"the trusted root's Rekor key is {type(log.public_key).__name__}, not ECDSA or Ed25519")
    except InvalidSignature as exc:
        raise _Refused("the Rekor entry's signed entry timestamp does not verify with the log's key") from exc
    return integrated


def _check_entry_body(body_b64: str, payload: bytes, signature: bytes, leaf: Certificate) -> None:
    """The logged entry is about these materials (a genuine entry of another signature proves nothing here)."""
    from cryptography import x509

    try:
        body = strict_json(base64.b64decode(body_b64, validate=True), "the Rekor entry's body")
    except InvalidDocumentError as exc:
        raise _Refused(exc.message) from exc
    if not isinstance(body, dict) or (body.get("kind"), body.get("apiVersion")) != ("hashedrekord", "0.0.1"):
        raise _Refused("the Rekor entry is not a hashedrekord 0.0.1 entry")
    spec: Any = body.get("spec")
    try:
        logged_hash = spec["data"]["hash"]
        logged_signature = spec["signature"]["content"]
        logged_key = spec["signature"]["publicKey"]["content"]
    except (KeyError, TypeError) as exc:
        raise _Refused("the Rekor entry's hashedrekord body lacks its hash, signature or certificate") from exc
    if logged_hash != {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}:
        raise _Refused("the Rekor entry records the hash of another payload")
    if _base64(logged_signature, "the Rekor entry's signature") != signature:
        raise _Refused("the Rekor entry records another signature")
    try:
        logged_certificate = x509.load_pem_x509_certificate(_base64(logged_key, "the Rekor entry's certificate"))
    except ValueError as exc:
        raise _Refused("the Rekor entry's certificate does not parse") from exc
    if logged_certificate != leaf:
        raise _Refused("the Rekor entry records another certificate")


def _check_chain(
    leaf: Certificate, intermediates: list[Certificate], moment: datetime.datetime, root: TrustedRootHandle
) -> list[Certificate]:
    """The verified chain above the leaf (issuing CA first), as sigstore builds it for bundles: the trusted
    root's CA certificates are the anchors; the chain annotation only offers intermediates that must reach one."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from cryptography.x509.verification import (
        Criticality,
        ExtensionPolicy,
        PolicyBuilder,
        Store,
        VerificationError,
    )

    anchors = [
        c for authority in root.authorities if authority.valid_for.covers(moment) for c in authority.certificates
    ]
    if not anchors:
        raise _Refused(f"no Fulcio CA of the trusted root was valid at {moment:%Y-%m-%dT%H:%M:%SZ}")
    # Fulcio leaves are code signing certificates, not TLS clients: the EKU is checked below, not by the policy.
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store(anchors))
        .time(moment)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        chain = verifier.verify(leaf, intermediates).chain[1:]
    except (VerificationError, x509.UnsupportedGeneralNameType) as exc:
        raise _Refused(f"the certificate does not chain to a Fulcio CA of the trusted root: {exc}") from exc
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        extended = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise _Refused("the certificate lacks its key usages") from exc
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise _Refused("the certificate is not a code signing certificate")
    return chain


def _check_sct(leaf: Certificate, chain: list[Certificate], root: TrustedRootHandle) -> None:
    """The certificate transparency log's promise to log the certificate, checked by sigstore's own code (an
    internal module, pinned by the lock): the RFC 6962 structure it signs is not one to write again here."""
    from sigstore._internal.sct import verify_sct
    from sigstore._internal.trust import KeyringPurpose

    try:
        verify_sct(leaf, chain, root.sigstore_root.ct_keyring(KeyringPurpose.VERIFY))
    except Exception as exc:  # sigstore's VerificationError, or its MetadataError for a root without CT logs
        raise _Refused(f"the certificate's SCT does not verify: {exc}") from exc
