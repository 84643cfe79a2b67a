"""DSSE envelopes: signatures over PAE(payloadType, payload), verified before the payload is ever parsed.

See docs/trust.md ("Envelopes").
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from mirror.errors import BundleFormatError
from mirror.limits import DEFAULT_LIMITS
from mirror.oci.document import strict_json
from mirror.trust.keys import ECDSA_P256, ED25519, PublicKey, Signer

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
# Lengths a signature can have for each key type: DER of two P-256 integers, or Ed25519's fixed 64 bytes.
_SIGNATURE_LENGTHS = {ECDSA_P256: range(8, 73), ED25519: range(64, 65)}


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE pre-authentication encoding: lengths are ASCII decimal byte counts."""
    encoded_type = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(encoded_type), encoded_type, len(payload), payload)


def _b64decode(text: object, where: str) -> bytes:
    # Standard and URL-safe alphabets, with or without padding, as the DSSE spec asks.
    if not isinstance(text, str) or not _BASE64.fullmatch(text):
        raise BundleFormatError(f"{where}: not base64")
    normalised = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(normalised + "=" * (-len(normalised) % 4), validate=True)
    except binascii.Error as exc:
        raise BundleFormatError(f"{where}: not base64") from exc


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def signed_by(self, candidates: list[PublicKey]) -> list[PublicKey]:
        """The distinct candidate keys with a valid signature on this envelope; keyids only order the search.

        Junk costs no public-key operation where that is possible: a signature repeated in the envelope is
        tried once, and a key is not tried on a signature of a length its algorithm cannot produce.
        """
        message = pae(self.payload_type, self.payload)
        found: list[PublicKey] = []
        tried: set[bytes] = set()
        for signature in self.signatures:
            if signature.sig in tried:
                continue
            tried.add(signature.sig)
            ordered = sorted(candidates, key=lambda k: k.key_id != signature.keyid)
            for key in ordered:
                if key in found or len(signature.sig) not in _SIGNATURE_LENGTHS.get(key.algorithm, ()):
                    continue
                if key.verify(signature.sig, message):
                    found.append(key)
                    break
        return found


def sign_envelope(payload: bytes, signer: Signer, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> bytes:
    signature = signer.sign(pae(payload_type, payload))
    body = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": signer.public.key_id, "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(body, indent=1).encode() + b"\n"


def parse_envelope(
    raw: bytes, where: str, max_signatures: int = DEFAULT_LIMITS.max_signatures_per_envelope
) -> Envelope:
    """Parse an envelope strictly; more than `max_signatures` signatures refuse it before any is decoded."""
    body = strict_json(raw, where)
    if not isinstance(body, dict) or set(body) != {"payload", "payloadType", "signatures"}:
        raise BundleFormatError(f"{where}: a DSSE envelope has exactly payload, payloadType and signatures")
    payload_type = body["payloadType"]
    if not isinstance(payload_type, str):
        raise BundleFormatError(f"{where}: payloadType must be a string")
    signatures = body["signatures"]
    if not isinstance(signatures, list) or not signatures:
        raise BundleFormatError(f"{where}: signatures must be a non-empty list")
    if len(signatures) > max_signatures:
        raise BundleFormatError(f"{where}: {len(signatures)} signatures, more than the limit of {max_signatures}")
    parsed = []
    for i, item in enumerate(signatures):
        if not isinstance(item, dict) or "sig" not in item or not set(item) <= {"keyid", "sig"}:
            raise BundleFormatError(f"{where}: signatures[{i}] must hold sig and an optional keyid")
        keyid = item.get("keyid", "")
        if not isinstance(keyid, str):
            raise BundleFormatError(f"{where}: signatures[{i}].keyid must be a string")
        parsed.append(Signature(keyid, _b64decode(item["sig"], f"{where}: signatures[{i}].sig")))
    return Envelope(payload_type, _b64decode(body["payload"], f"{where}: payload"), tuple(parsed))
