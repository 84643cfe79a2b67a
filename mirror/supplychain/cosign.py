"""cosign's key-based image signatures: the public keys, the signature over the payload, the payload itself.

The verification algorithm comes from the public key alone (cosign's signatures say nothing of it): ECDSA P-256
with SHA-256 (canonical DER), Ed25519, RSA (2048 bits or more) with SHA-256 in PKCS#1 v1.5 or PSS. The payload
is read only once its signature verified, and strictly: see docs/supply-chain.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from mirror.errors import InvalidDocumentError, UsageError
from mirror.oci.digest import is_digest
from mirror.oci.document import strict_json
from mirror.trust.keys import read_public_key_file

ECDSA_P256 = "ecdsa-p256"
ED25519 = "ed25519"
RSA = "rsa"
SIGNATURE_TYPE = "cosign container image signature"  # critical.type of a cosign simple-signing payload
_MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class CosignKey:
    """A public key an upstream signs its images with (a cosign.pub)."""

    der: bytes = field(repr=False)  # SubjectPublicKeyInfo
    algorithm: str
    source: str = field(compare=False)

    @property
    def key_id(self) -> str:
        """The hex SHA-256 of the DER public key, as mirror names its own keys."""
        return hashlib.sha256(self.der).hexdigest()

    def verify(self, signature: bytes, payload: bytes) -> bool:
        key = serialization.load_der_public_key(self.der)
        try:
            if self.algorithm == ECDSA_P256 and isinstance(key, ec.EllipticCurvePublicKey):
                r, s = decode_dss_signature(signature)
                if encode_dss_signature(r, s) != signature:
                    return False  # BER or padded integers: refused, never reinterpreted
                key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
            elif self.algorithm == ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, payload)
            elif self.algorithm == RSA and isinstance(key, rsa.RSAPublicKey):
                _verify_rsa(key, signature, payload)
            else:
                return False
        except (InvalidSignature, ValueError):
            return False
        return True


def _verify_rsa(key: rsa.RSAPublicKey, signature: bytes, payload: bytes) -> None:
    try:
        key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        key.verify(signature, payload, pss, hashes.SHA256())


def _algorithm_of(key: object, where: str) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return ECDSA_P256
        raise UsageError(f"{where}: an ECDSA key on curve {key.curve.name}; upstream keys must be P-256")
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ED25519
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise UsageError(f"{where}: an RSA key of {key.key_size} bits; upstream RSA keys need {_MIN_RSA_BITS}")
        return RSA
    raise UsageError(f"{where}: unsupported key type; upstream keys are ECDSA P-256, Ed25519 or RSA")


def cosign_key_from_pem(pem: bytes, where: str) -> CosignKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"{where}: not a PEM public key (cosign.pub holds one)") from exc
    algorithm = _algorithm_of(key, where)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return CosignKey(der, algorithm, where)


def load_cosign_key(path: Path) -> CosignKey:
    return cosign_key_from_pem(read_public_key_file(path), str(path))


@dataclass(frozen=True)
class SimpleSigning:
    """What a verified simple-signing payload says: the manifest digest it signs, and the repository it names
    (which cosign ignores when verifying, and so does mirror)."""

    digest: str
    reference: str | None


def _field(body: dict[str, Any], name: str, where: str) -> Any:
    """body[name], refusing another spelling of it: Go's encoding/json, which cosign reads payloads with,
    matches field names without regard to case, so `Docker-manifest-digest` would be read as the same field."""
    others = sorted(k for k in body if k != name and k.casefold() == name.casefold())
    if others:
        raise InvalidDocumentError(f"{where}: both {name!r} and {others[0]!r}: ambiguous to cosign's reader")
    return body.get(name)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidDocumentError(f"{where}: expected a JSON object")
    return value


def parse_simple_signing(payload: bytes, where: str) -> SimpleSigning:
    """The payload of a cosign signature, read strictly (duplicate keys, other spellings, other types refused)."""
    body = _object(strict_json(payload, where), where)
    critical = _object(_field(body, "critical", where), f"{where}: critical")
    _field(body, "optional", where)
    kind = _field(critical, "type", f"{where}: critical")
    if kind != SIGNATURE_TYPE:
        raise InvalidDocumentError(f"{where}: critical.type is {kind!r}, not {SIGNATURE_TYPE!r}")
    image = _object(_field(critical, "image", f"{where}: critical"), f"{where}: critical.image")
    digest = _field(image, "docker-manifest-digest", f"{where}: critical.image")
    if not is_digest(digest):
        raise InvalidDocumentError(f"{where}: critical.image.docker-manifest-digest is not a sha256 digest")
    identity = _field(critical, "identity", f"{where}: critical")
    reference = None
    if identity is not None:
        value = _field(_object(identity, f"{where}: critical.identity"), "docker-reference", f"{where}: identity")
        reference = value if isinstance(value, str) else None
    return SimpleSigning(digest, reference)
