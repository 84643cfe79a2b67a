"""Signing keys: ECDSA P-256 (SHA-256, DER signatures) by default, Ed25519 as an option.

The verification algorithm is fixed by the public key's own type, never by anything in an envelope. A key's id
is the hex SHA-256 of its DER SubjectPublicKeyInfo; it is only a hint for finding a key, never proof of one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from mirror.errors import UsageError
from mirror.fsutil import create_exclusive, require_regular_file

ECDSA_P256 = "ecdsa-p256"
ED25519 = "ed25519"
ALGORITHMS = (ECDSA_P256, ED25519)
PASSWORD_VARIABLE = "MIRROR_KEY_PASSWORD"

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def _algorithm_of(key: object, where: str) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return ECDSA_P256
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return ED25519
    raise UsageError(f"{where}: unsupported key type; mirror uses ECDSA P-256 or Ed25519 keys")


@dataclass(frozen=True)
class PublicKey:
    der: bytes = field(repr=False)  # SubjectPublicKeyInfo; two PublicKeys are the same key exactly when these match
    algorithm: str
    source: str = field(compare=False)  # where it was read from, for messages

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    def verify(self, signature: bytes, data: bytes) -> bool:
        key = serialization.load_der_public_key(self.der)
        try:
            if self.algorithm == ECDSA_P256 and isinstance(key, ec.EllipticCurvePublicKey):
                # Only canonical DER: a raw r||s or BER-encoded signature is refused, not reinterpreted.
                r, s = decode_dss_signature(signature)
                if encode_dss_signature(r, s) != signature:
                    return False
                key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            elif self.algorithm == ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, data)
            else:
                return False  # a key that is not of its stated algorithm verifies nothing
        except (InvalidSignature, ValueError):
            return False
        return True


def public_key_from_pem(pem: bytes, where: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"{where}: not a PEM SubjectPublicKeyInfo public key") from exc
    algorithm = _algorithm_of(key, where)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(der, algorithm, where)


def read_public_key_file(path: Path) -> bytes:
    """The bytes of a public key file (a regular file, not a device or a directory); UsageError naming it."""
    require_regular_file(path, "public key")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read public key: {exc.strerror}") from exc


def load_public_key(path: Path) -> PublicKey:
    return public_key_from_pem(read_public_key_file(path), str(path))


@dataclass(frozen=True)
class Signer:
    private: PrivateKey = field(repr=False)
    public: PublicKey

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            return self.private.sign(data, ec.ECDSA(hashes.SHA256()))
        return self.private.sign(data)


def _public_of(private: PrivateKey, where: str) -> PublicKey:
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(der, _algorithm_of(private, where), where)


def load_signer(path: Path, env: Mapping[str, str] | None = None) -> Signer:
    """Load a PKCS#8 private key, decrypting it with MIRROR_KEY_PASSWORD when it is encrypted."""
    env = os.environ if env is None else env
    require_regular_file(path, "private key")
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read private key: {exc.strerror}") from exc
    password = env.get(PASSWORD_VARIABLE)
    try:
        private = serialization.load_pem_private_key(pem, password.encode() if password else None)
    except TypeError as exc:
        if password:
            raise UsageError(f"{path}: the key is not encrypted, but {PASSWORD_VARIABLE} is set") from exc
        raise UsageError(f"{path}: the key is encrypted", hint=f"set {PASSWORD_VARIABLE} to its password") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(
            f"{path}: cannot load the private key (wrong password, or not a PKCS#8 PEM key)",
            hint=f"check {PASSWORD_VARIABLE}" if password else None,
        ) from exc
    _algorithm_of(private, str(path))
    return Signer(private, _public_of(private, str(path)))  # type: ignore[arg-type]


def generate(name: str, algorithm: str = ECDSA_P256, env: Mapping[str, str] | None = None) -> tuple[Path, Path, str]:
    """Write NAME.key (PKCS#8 PEM, encrypted when MIRROR_KEY_PASSWORD is set) and NAME.pub; return the key id."""
    env = os.environ if env is None else env
    if algorithm not in ALGORITHMS:
        raise UsageError(f"--algorithm: {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    key_path, pub_path = Path(f"{name}.key"), Path(f"{name}.pub")
    if not key_path.parent.is_dir():
        raise UsageError(f"{key_path.parent}: not a directory", hint="create it first; NAME may include a directory")
    for path in (key_path, pub_path):
        if os.path.lexists(path):  # a link, even a dangling one, is never written through
            raise UsageError(f"{path}: already exists", hint="choose another name; keys are never overwritten")
    private: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if algorithm == ECDSA_P256 else (ed25519.Ed25519PrivateKey.generate())
    )
    password = env.get(PASSWORD_VARIABLE)
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    key_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    pub_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with create_exclusive(key_path, 0o600) as handle:
        handle.write(key_pem)
    with create_exclusive(pub_path) as handle:
        handle.write(pub_pem)
    return key_path, pub_path, _public_of(private, str(key_path)).key_id
