"""Attached manifests written by hand, as cosign and Sigstore clients push them: for tests of what the officer
sees of an image's signatures, attestations and SBOMs.

Each builder returns a `Crafted`: the attached manifest's bytes and the blobs it points at, by digest.
`attach(bundle, source, crafted)` writes them into a `SmallBundle` and records the attached artifact under the
image `source` already in it. Nothing here is signed for real: the review only reads what these claim.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mirror.oci import mediatypes as mt
from mirror.oci.digest import sha256_digest
from mirror.supplychain.attached import (
    COSIGN_CERTIFICATE_ANNOTATION,
    COSIGN_SIGNATURE,
    COSIGN_SIGNATURE_ANNOTATION,
    DSSE_ENVELOPE,
    FOUND_COSIGN_TAG,
    FOUND_REFERRERS,
    IN_TOTO,
    SIGSTORE_BUNDLE,
    SPDX_JSON,
    attached_record,
    cosign_tag,
)
from tests.support.signedbundles import SmallBundle

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0"
COSIGN_CONFIG = "application/vnd.oci.image.config.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
FULCIO_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
FULCIO_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


@dataclass
class Crafted:
    manifest: bytes
    artifact_type: str
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def _descriptor(media_type: str, data: bytes, annotations: dict[str, str] | None = None) -> dict[str, object]:
    found: dict[str, object] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if annotations:
        found["annotations"] = annotations
    return found


def _manifest(
    layers: list[tuple[str, bytes, dict[str, str] | None]],
    *,
    artifact_type: str | None = None,
    config_type: str = COSIGN_CONFIG,
    config: bytes = EMPTY,
    subject: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Crafted:
    body: dict[str, object] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}
    if artifact_type:
        body["artifactType"] = artifact_type
    body["config"] = _descriptor(config_type, config)
    body["layers"] = [_descriptor(media_type, data, notes) for media_type, data, notes in layers]
    if subject:
        body["subject"] = {"mediaType": mt.OCI_MANIFEST, "digest": subject, "size": 1}
    if annotations:
        body["annotations"] = annotations
    blobs = {sha256_digest(config): config, **{sha256_digest(data): data for _, data, _ in layers}}
    found_type = artifact_type or (layers[0][0] if layers else config_type)
    return Crafted(json.dumps(body).encode(), found_type, blobs)


def fulcio_certificate(issuer: str = GITHUB_ISSUER, identity: str = WORKFLOW, *, v1: bool = False) -> bytes:
    """A self-signed certificate shaped like Fulcio's: the OIDC issuer in its extension, the identity in its SAN.
    PEM. An identity with an @ and no scheme is an email address."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.dev")])
    now = dt.datetime.now(dt.UTC)
    san: x509.GeneralName = (
        x509.RFC822Name(identity)
        if "@" in identity and "://" not in identity
        else x509.UniformResourceIdentifier(identity)
    )
    if v1:
        extension = x509.UnrecognizedExtension(FULCIO_ISSUER_V1, issuer.encode())
    else:
        encoded = issuer.encode()
        extension = x509.UnrecognizedExtension(FULCIO_ISSUER_V2, bytes([0x0C, len(encoded)]) + encoded)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(extension, critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def simple_signing_payload(subject: str, reference: str = "registry.example/team/app") -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": subject},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()


def cosign_signature(subject: str, *, certificate: bytes | None = None, payload: bytes | None = None) -> Crafted:
    """cosign's classic signature manifest (tag sha256-<hex>.sig): one simple-signing layer."""
    notes = {COSIGN_SIGNATURE_ANNOTATION: base64.b64encode(b"not a real signature").decode()}
    if certificate is not None:
        notes[COSIGN_CERTIFICATE_ANNOTATION] = certificate.decode()
    layer = payload if payload is not None else simple_signing_payload(subject)
    return _manifest([(COSIGN_SIGNATURE, layer, notes)])


def statement(subject: str, predicate_type: str, predicate: object) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "registry.example/team/app", "digest": {"sha256": subject.removeprefix("sha256:")}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    ).encode()


def dsse_envelope(payload: bytes) -> bytes:
    return json.dumps(
        {
            "payloadType": IN_TOTO,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(b"sig").decode()}],
        }
    ).encode()


def cosign_attestation(
    subject: str, predicate_type: str, predicate: object, *, envelope: bytes | None = None
) -> Crafted:
    """cosign's classic attestation manifest (tag sha256-<hex>.att): one DSSE envelope layer."""
    layer = envelope if envelope is not None else dsse_envelope(statement(subject, predicate_type, predicate))
    return _manifest([(DSSE_ENVELOPE, layer, {"predicateType": predicate_type})])


def sigstore_bundle(
    subject: str,
    *,
    predicate_type: str | None = None,
    predicate: object = None,
    certificate: bytes | None = None,
    key_hint: str | None = None,
) -> Crafted:
    """A Sigstore bundle (v0.3) referrer, as newer cosign pushes one: a DSSE envelope with an in-toto
    statement (predicate_type given) or a message signature; verification material a certificate or a key hint."""
    material: dict[str, object] = {"tlogEntries": []}
    if certificate is not None:
        der = x509.load_pem_x509_certificate(certificate).public_bytes(serialization.Encoding.DER)
        material["certificate"] = {"rawBytes": base64.b64encode(der).decode()}
    else:
        material["publicKey"] = {"hint": key_hint or ""}
    body: dict[str, object] = {"mediaType": SIGSTORE_BUNDLE, "verificationMaterial": material}
    annotations = {"dev.sigstore.bundle.content": "message-signature"}
    if predicate_type is not None:
        envelope = json.loads(dsse_envelope(statement(subject, predicate_type, predicate)))
        body["dsseEnvelope"] = envelope
        annotations = {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate_type,
        }
    else:
        hex_digest = base64.b64encode(bytes.fromhex(subject.removeprefix("sha256:"))).decode()
        body["messageSignature"] = {
            "messageDigest": {"algorithm": "SHA2_256", "digest": hex_digest},
            "signature": base64.b64encode(b"sig").decode(),
        }
    return _manifest(
        [(SIGSTORE_BUNDLE, json.dumps(body).encode(), None)],
        artifact_type=SIGSTORE_BUNDLE,
        config_type=EMPTY_CONFIG,
        subject=subject,
        annotations=annotations,
    )


def spdx(packages: int, version: str = "SPDX-2.3") -> bytes:
    return json.dumps(
        {
            "spdxVersion": version,
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": "app",
            "packages": [{"SPDXID": f"SPDXRef-{i}", "name": f"pkg{i}"} for i in range(packages)],
        }
    ).encode()


def cyclonedx(components: int, version: str = "1.5") -> bytes:
    return json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": version,
            "components": [{"type": "library", "name": f"lib{i}"} for i in range(components)],
        }
    ).encode()


def sbom_referrer(subject: str, document: bytes, media_type: str = SPDX_JSON) -> Crafted:
    """An SBOM pushed as an OCI 1.1 referrer (oras attach): artifactType and layer of the SBOM's media type."""
    return _manifest(
        [(media_type, document, None)], artifact_type=media_type, config_type=EMPTY_CONFIG, subject=subject
    )


def other_referrer(subject: str, artifact_type: str, data: bytes = b"{}") -> Crafted:
    return _manifest(
        [("application/octet-stream", data, None)],
        artifact_type=artifact_type,
        config_type=EMPTY_CONFIG,
        subject=subject,
    )


def image_digest(bundle: SmallBundle, source: str) -> str:
    return next(a.digest for a in bundle.artifacts if a.source == source)


def attach(bundle: SmallBundle, source: str, crafted: Crafted, *, found: str = FOUND_REFERRERS) -> str:
    """Write `crafted` and its blobs into `bundle` as attached to the artifact `source`; its digest."""
    subject = image_digest(bundle, source)
    for data in crafted.blobs.values():
        bundle.blob(data)
    digest = bundle.blob(crafted.manifest)
    repository = source.rsplit("@", 1)[0]
    name, _, tag = repository.rpartition(":")
    if "/" in tag:  # a port, not a tag
        name = repository
    suffix = {COSIGN_SIGNATURE: ".sig", DSSE_ENVELOPE: ".att"}.get(crafted.artifact_type, ".sbom")
    bundle.artifacts.append(
        attached_record(
            name,
            digest,
            mt.OCI_MANIFEST,
            len(crafted.manifest),
            subject=subject,
            artifact_type=crafted.artifact_type,
            found=found,
            image=source,
            tag=cosign_tag(subject, suffix) if found == FOUND_COSIGN_TAG else None,
        )
    )
    return digest
