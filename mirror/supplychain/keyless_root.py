"""A Sigstore trusted root (`trusted_root.json`) read from bytes, never fetched: no TUF, no network.

The same bytes feed sigstore (which verifies Sigstore bundles) and the few fields the classic cosign layout
needs here: the Fulcio CAs and the Rekor keys, each with the time it is valid for.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from collections.abc import Mapping
from typing import Any

from mirror.errors import InvalidDocumentError, UsageError
from mirror.oci.document import strict_json
from mirror.supplychain.attached import TRUSTED_ROOT
from mirror.supplychain.keyless_types import CertificateAuthority, LogKey, TrustedRootHandle, ValidFor


class _Malformed(ValueError):
    pass


def parse_trusted_root(raw: bytes, where: str) -> TrustedRootHandle:
    try:
        document = strict_json(raw, where)
    except InvalidDocumentError as exc:
        raise UsageError(exc.message, hint=_HINT) from exc
    try:
        if not isinstance(document, dict) or document.get("mediaType") != TRUSTED_ROOT:
            found = document.get("mediaType") if isinstance(document, dict) else type(document).__name__
            raise _Malformed(f"mediaType is {found!r}, not {TRUSTED_ROOT!r}")
        authorities = tuple(_authority(entry) for entry in _list(document, "certificateAuthorities"))
        log_keys = dict(_log_key(entry) for entry in _list(document, "tlogs"))
    except (_Malformed, ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"{where}: not a Sigstore trusted root: {exc}", hint=_HINT) from exc
    if not authorities:
        raise UsageError(f"{where}: no Fulcio certificate authority (certificateAuthorities is empty)", hint=_HINT)
    if not log_keys:
        raise UsageError(f"{where}: no Rekor log key (tlogs is empty)", hint=_HINT)
    sigstore_root, verifier = _sigstore_objects(raw, where)
    return TrustedRootHandle(
        where=where,
        sha256=hashlib.sha256(raw).hexdigest(),
        authorities=authorities,
        log_keys=log_keys,
        sigstore_root=sigstore_root,
        verifier=verifier,
    )


_HINT = "give the trusted_root.json of the Sigstore instance that signs the images (see docs/supply-chain.md)"


def _sigstore_objects(raw: bytes, where: str) -> tuple[Any, Any]:
    """sigstore's TrustedRoot and Verifier, built from these bytes: sigstore's own loaders would go through TUF."""
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier
    from sigstore_models.trustroot import v1

    try:
        root = TrustedRoot(v1.TrustedRoot.from_json(raw))
        root.get_fulcio_certs()  # parses every CA certificate now, not at the first signature
        return root, Verifier(trusted_root=root)
    except Exception as exc:  # sigstore's and pydantic's errors alike: the file is what is wrong
        raise UsageError(f"{where}: not a Sigstore trusted root: {exc}", hint=_HINT) from exc


def _list(document: Mapping[str, Any], key: str) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise _Malformed(f"{key} is not a list")
    return value


def _bytes(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise _Malformed(f"{field} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise _Malformed(f"{field} is not base64: {exc}") from exc


def _time(value: Any, field: str) -> datetime.datetime:
    if not isinstance(value, str):
        raise _Malformed(f"{field} is not an RFC 3339 time")
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError as exc:
        raise _Malformed(f"{field} is not an RFC 3339 time: {value!r:.40}") from exc
    if moment.tzinfo is None:
        raise _Malformed(f"{field} has no time zone")
    return moment


def _valid_for(entry: Mapping[str, Any], field: str) -> ValidFor:
    valid = entry.get("validFor")
    if not isinstance(valid, dict):
        raise _Malformed(f"{field}.validFor is missing")
    end = valid.get("end")
    start = _time(valid.get("start"), f"{field}.validFor.start")
    return ValidFor(start, None if end is None else _time(end, f"{field}.validFor.end"))


def _authority(entry: Any) -> CertificateAuthority:
    from cryptography import x509

    if not isinstance(entry, dict) or not isinstance(entry.get("certChain"), dict):
        raise _Malformed("a certificate authority has no certChain")
    certificates = entry["certChain"].get("certificates")
    if not isinstance(certificates, list) or not certificates:
        raise _Malformed("a certificate authority's certChain has no certificates")
    chain = tuple(
        x509.load_der_x509_certificate(_bytes(c.get("rawBytes") if isinstance(c, dict) else None, "rawBytes"))
        for c in certificates
    )
    return CertificateAuthority(chain, _valid_for(entry, "certificateAuthority"))


def _log_key(entry: Any) -> tuple[bytes, LogKey]:
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    if not isinstance(entry, dict) or not isinstance(entry.get("publicKey"), dict):
        raise _Malformed("a transparency log has no publicKey")
    log_id = entry.get("logId")
    key_id = _bytes(log_id.get("keyId") if isinstance(log_id, dict) else None, "tlogs.logId.keyId")
    public_key = load_der_public_key(_bytes(entry["publicKey"].get("rawBytes"), "tlogs.publicKey.rawBytes"))
    return key_id, LogKey(public_key, _valid_for(entry["publicKey"], "tlogs.publicKey"))
