"""cosign's classic key-based image signatures, written byte for byte as cosign writes them, for tests.

Follows sigstore/cosign specs/SIGNATURE_SPEC.md and what `cosign sign --key` pushes:

- the payload is the simple-signing JSON Go's encoding/json makes of cosign's payload struct (compact, fields in
  struct order): `{"critical":{"identity":{"docker-reference":REPO},"image":{"docker-manifest-digest":DIGEST},
  "type":"cosign container image signature"},"optional":ANNOTATIONS-or-null}`;
- the signature is base64 (standard alphabet, padded) of the key's signature over the exact payload bytes:
  ECDSA P-256 with SHA-256 (ASN.1 DER), Ed25519 (pure), RSA PKCS#1 v1.5 with SHA-256;
- the signature manifest is an OCI image manifest (with its mediaType field) whose config is cosign's nearly
  empty image config and whose layers are the payloads, media type `application/vnd.dev.cosign.simplesigning.v1+json`,
  each with its signature in the annotation `dev.cosignproject.cosign/signature` (keyless signatures add the
  certificate, chain and Rekor bundle annotations);
- it is pushed to the image's repository under the tag `sha256-<hex>.sig`.

Deliberately independent of the `mirror` package: the tests check mirror against this, not against itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.support.images import OCI_MANIFEST, Layout, push

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
SIGNATURE_TYPE = "cosign container image signature"

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def _go_json(value: Any) -> bytes:
    """What Go's json.Marshal writes for these payloads: compact, and `<`, `>`, `&` escaped as \\u003c…"""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def cosign_tag(digest: str) -> str:
    """The tag cosign pushes an image's signatures under: sha256:ab… → sha256-ab….sig"""
    return digest.replace(":", "-", 1) + ".sig"


def simple_signing_payload(
    repository: str, digest: str, *, optional: Mapping[str, Any] | None = None, type_: str = SIGNATURE_TYPE
) -> bytes:
    """The payload cosign signs for `repository@digest` (repository without tag, as cosign writes it)."""
    body = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": type_,
        },
        "optional": dict(optional) if optional is not None else None,
    }
    return _go_json(body)


def generate_key(algorithm: str = "ecdsa-p256") -> PrivateKey:
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown algorithm {algorithm!r}")


def public_pem(key: PrivateKey) -> bytes:
    """The public key as cosign.pub holds it: a SubjectPublicKeyInfo PEM."""
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_public_key(key: PrivateKey, path: Path) -> Path:
    path.write_bytes(public_pem(key))
    return path


def raw_signature(key: PrivateKey, payload: bytes, *, rsa_pss: bool = False) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(payload, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(payload)
    if rsa_pss:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        return key.sign(payload, pss, hashes.SHA256())
    return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())


def sign(key: PrivateKey, payload: bytes, *, rsa_pss: bool = False) -> str:
    """The annotation value: base64 of the signature over the exact payload bytes."""
    return base64.b64encode(raw_signature(key, payload, rsa_pss=rsa_pss)).decode()


@dataclass(frozen=True)
class SignatureLayer:
    """One signature in a signature manifest: the payload (a blob) and the annotations of its descriptor."""

    payload: bytes
    signature: str
    extra_annotations: Mapping[str, str] = field(default_factory=dict)
    media_type: str = SIMPLE_SIGNING

    def descriptor(self) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "size": len(self.payload),
            "digest": sha256_digest(self.payload),
            "annotations": {SIGNATURE_ANNOTATION: self.signature, **self.extra_annotations},
        }


def signed_layer(key: PrivateKey, repository: str, digest: str, **options: Any) -> SignatureLayer:
    """A layer signing `repository@digest` with `key`, as `cosign sign --key` makes it."""
    payload = simple_signing_payload(repository, digest)
    return SignatureLayer(payload, sign(key, payload, **options))


@dataclass(frozen=True)
class SignatureManifest:
    """The `.sig` manifest and every blob it needs, as bytes."""

    raw: bytes
    blobs: dict[str, bytes]

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": OCI_MANIFEST, "digest": self.digest, "size": len(self.raw)}


def signature_manifest(layers: Sequence[SignatureLayer], *, created: str = "0001-01-01T00:00:00Z") -> SignatureManifest:
    """cosign's signature image: its config names each payload as a layer diff_id, as go-containerregistry
    writes it (`created` is the signing time in real ones; any value verifies the same)."""
    config = _go_json(
        {
            "architecture": "",
            "created": created,
            "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer.payload) for layer in layers]},
            "config": {},
        }
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": sha256_digest(config)},
        "layers": [layer.descriptor() for layer in layers],
    }
    blobs = {sha256_digest(config): config, **{sha256_digest(layer.payload): layer.payload for layer in layers}}
    return SignatureManifest(_go_json(manifest), blobs)


def add_to_layout(layout: Layout, ref_name: str, manifest: SignatureManifest) -> str:
    for data in manifest.blobs.values():
        layout.write_blob(data)
    layout.write_blob(manifest.raw)
    layout.tag(ref_name, manifest.descriptor())
    return manifest.digest


def push_signature(layout_dir: Path, repository: str, subject: str, manifest: SignatureManifest) -> str:
    """Push `manifest` to `repository` (HOST/PATH, plain HTTP) under cosign's tag for `subject`; its digest."""
    ref_name = cosign_tag(subject)
    add_to_layout(Layout(layout_dir), ref_name, manifest)
    push(layout_dir, ref_name, f"{repository}:{ref_name}")
    return manifest.digest
