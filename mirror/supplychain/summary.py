"""What one attached manifest says, for the officer: signatures (and the signer each claims), attestations by
predicate type (with a SLSA provenance's builder), SBOMs (format, version, package count), anything else by
its artifact type. See docs/supply-chain.md ("What the officer sees").

Everything here is a claim read from an unchecked bundle: the signers the collector verified are the image's
`signers` (recorded_signers); verified_by says which of them vouch for a signature. Every blob is read through
`read_blob(digest, limit)`, bounded, checked against its digest and parsed strictly; what cannot be read is
listed with a note saying why, never raised.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import MirrorError
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.digest import sha256_digest
from mirror.oci.document import Descriptor, ManifestDocument, strict_json
from mirror.supplychain.attached import (
    COSIGN_CERTIFICATE_ANNOTATION,
    COSIGN_SIGN_PREDICATE,
    COSIGN_SIGNATURE,
    CYCLONEDX_JSON,
    DSSE_ENVELOPE,
    IN_TOTO,
    SPDX_JSON,
    Attached,
)
from mirror.supplychain.keyless import signer_of_certificate

ReadBlob = Callable[[str, int], bytes]  # (digest, limit) -> bytes; raises MirrorError when missing or larger

SLSA_PROVENANCE = "https://slsa.dev/provenance/"
SBOM_PREDICATES = {"https://spdx.dev/Document": "SPDX", "https://cyclonedx.org/bom": "CycloneDX"}
SBOM_MEDIA_TYPES = {SPDX_JSON: "SPDX", "text/spdx+json": "SPDX", CYCLONEDX_JSON: "CycloneDX"}
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"


@dataclass(frozen=True)
class Signer:
    """Who signed: a key (its id) or a keyless identity (OIDC issuer and identity)."""

    key: str = ""
    issuer: str = ""
    identity: str = ""

    @property
    def keyless(self) -> bool:
        return not self.key

    def describe(self) -> str:
        return f"key {self.key}" if self.key else f"issuer {self.issuer}, identity {self.identity}"

    def to_json(self) -> dict[str, str]:
        return {"key": self.key} if self.key else {"issuer": self.issuer, "identity": self.identity}


@dataclass(frozen=True)
class SignatureSummary:
    manifest: str  # the attached manifest's digest
    form: str  # "cosign" (simple signing) or "sigstore bundle"
    keyless: bool  # it carries a certificate
    claimed: Signer | None  # who its certificate (or key hint) says signed; None: it names nobody
    signs: str | None  # the digest its payload names
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttestationSummary:
    manifest: str
    predicate_type: str | None
    builder: str | None  # a SLSA provenance's builder id
    claimed: Signer | None  # who its certificate says attested
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SbomSummary:
    manifest: str
    format: str | None  # "SPDX" or "CycloneDX"
    version: str | None
    packages: int | None  # SPDX packages, CycloneDX components; None when not read
    predicate_type: str | None = None  # set when the SBOM came as an attestation
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class OtherSummary:
    manifest: str
    artifact_type: str
    notes: tuple[str, ...] = ()


@dataclass
class AttachedSummary:
    signatures: list[SignatureSummary] = field(default_factory=list)
    attestations: list[AttestationSummary] = field(default_factory=list)
    sboms: list[SbomSummary] = field(default_factory=list)
    other: list[OtherSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, more: AttachedSummary) -> None:
        self.signatures += more.signatures
        self.attestations += more.attestations
        self.sboms += more.sboms
        self.other += more.other
        self.notes += more.notes

    @property
    def empty(self) -> bool:
        return not (self.signatures or self.attestations or self.sboms or self.other)


class _Unreadable(Exception):
    """A blob, or what it holds, that cannot be shown: its message says why."""


@dataclass(frozen=True)
class _Context:
    document: ManifestDocument
    read_blob: ReadBlob
    subject: str | None
    limits: Limits

    def text(self, value: Any) -> str | None:
        return value[: self.limits.review_max_text_chars] if isinstance(value, str) else None

    def read(self, layer: Descriptor, what: str = "not read") -> bytes:
        limit = self.limits.review_max_attached_blob_bytes
        if layer.size > limit:
            raise _Unreadable(f"{what} (larger than {limit:,} bytes)")
        try:
            raw = self.read_blob(layer.digest, limit)
        except MirrorError as exc:
            raise _Unreadable(exc.message) from exc
        if sha256_digest(raw) != layer.digest:
            raise _Unreadable("does not match its digest; not read")
        return raw

    def json(self, raw: bytes, where: str) -> Any:
        try:
            return strict_json(raw, where, max_depth=self.limits.max_json_depth)
        except MirrorError as exc:
            raise _Unreadable("unreadable: " + exc.message.removeprefix(f"{where}: ")) from exc

    def signed_note(self, signs: str | None) -> tuple[str, ...]:
        if signs is not None and self.subject is not None and signs != self.subject:
            return (f"signs {signs}, not the digest it is attached to",)
        return ()


def _get(body: Any, *path: str) -> Any:
    for key in path:
        body = body.get(key) if isinstance(body, dict) else None
    return body


@dataclass(frozen=True)
class _Claim:
    """Who a signature or an attestation says signed it, as its verification material claims."""

    signer: Signer | None = None
    keyless: bool = False  # it carries a certificate (readable or not)
    notes: tuple[str, ...] = ()


def _certificate_claim(certificate: bytes) -> _Claim:
    found = signer_of_certificate(certificate)
    if found is None:
        return _Claim(None, True, ("its certificate could not be read",))
    return _Claim(Signer(issuer=found.issuer, identity=found.identity), True)


def _annotation_claim(layer: Descriptor) -> _Claim:
    """cosign's classic layout: a keyless signature's certificate is an annotation of its layer (PEM)."""
    pem = layer.annotations.get(COSIGN_CERTIFICATE_ANNOTATION)
    if pem and not pem.isascii():  # PEM is ASCII; JSON can carry lone surrogates, which no encoding takes
        return _Claim(None, True, ("its certificate could not be read",))
    return _certificate_claim(pem.encode()) if pem else _Claim()


def _simple_signing(found: AttachedSummary, context: _Context, layer: Descriptor) -> None:
    claim = _annotation_claim(layer)
    digest = context.document.digest
    try:
        payload = context.json(context.read(layer), "payload")
    except _Unreadable as exc:
        found.signatures.append(
            SignatureSummary(digest, "cosign", claim.keyless, claim.signer, None, (*claim.notes, str(exc)))
        )
        return
    signs = context.text(_get(payload, "critical", "image", "docker-manifest-digest"))
    notes = claim.notes + context.signed_note(signs)
    found.signatures.append(SignatureSummary(digest, "cosign", claim.keyless, claim.signer, signs, notes))


def _statement_payload(envelope: Any) -> bytes:
    """The in-toto statement's bytes a DSSE envelope carries."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str):
        raise _Unreadable("unreadable: not a DSSE envelope")
    if envelope.get("payloadType") != IN_TOTO:
        raise _Unreadable("unreadable: the envelope's payload is not an in-toto statement")
    try:
        # Standard or URL-safe base64: DSSE readers accept both.
        return base64.b64decode(envelope["payload"].replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Unreadable("unreadable: the payload is not base64") from exc


def _in_toto(
    found: AttachedSummary, context: _Context, envelope: Any, claim: _Claim, form: str, annotated: str | None
) -> None:
    """File a DSSE envelope's statement: a cosign v3 signature, an SBOM, or an attestation by predicate type."""
    digest = context.document.digest
    try:
        statement = context.json(_statement_payload(envelope), "statement")
        if not isinstance(statement, dict):
            raise _Unreadable("unreadable: the statement is not a JSON object")
    except _Unreadable as exc:
        _unread_statement(found, digest, annotated, replace(claim, notes=(*claim.notes, str(exc))), form)
        return
    predicate_type = context.text(statement.get("predicateType"))
    predicate = statement.get("predicate")
    sbom_format = _sbom_format(predicate_type)
    if predicate_type == COSIGN_SIGN_PREDICATE:
        subjects = statement.get("subject")
        hex_digest = context.text(
            _get(subjects[0] if isinstance(subjects, list) and subjects else None, "digest", "sha256")
        )
        signs = f"sha256:{hex_digest}" if hex_digest else None
        notes = claim.notes + context.signed_note(signs)
        found.signatures.append(SignatureSummary(digest, form, claim.keyless, claim.signer, signs, notes))
    elif sbom_format is not None:
        found.sboms.append(_sbom(context, predicate, sbom_format, predicate_type, claim.notes))
    else:
        builder = None
        if predicate_type and predicate_type.startswith(SLSA_PROVENANCE):
            builder = context.text(_get(predicate, "builder", "id")) or context.text(
                _get(predicate, "runDetails", "builder", "id")
            )
        found.attestations.append(AttestationSummary(digest, predicate_type, builder, claim.signer, claim.notes))


def _unread_statement(found: AttachedSummary, digest: str, annotated: str | None, claim: _Claim, form: str) -> None:
    """An envelope not read: filed by the predicate type its annotation claims, if any."""
    sbom_format = _sbom_format(annotated)
    if annotated == COSIGN_SIGN_PREDICATE:
        found.signatures.append(SignatureSummary(digest, form, claim.keyless, claim.signer, None, claim.notes))
    elif sbom_format is not None:
        found.sboms.append(SbomSummary(digest, sbom_format, None, None, annotated, claim.notes))
    else:
        found.attestations.append(AttestationSummary(digest, annotated, None, claim.signer, claim.notes))


def _not_read(predicate_type: str | None) -> str:
    """What an envelope too large to read leaves unsaid: for an SBOM, its package count."""
    return "package count not read" if _sbom_format(predicate_type) else "not read"


def _dsse(found: AttachedSummary, context: _Context, layer: Descriptor) -> None:
    annotated = context.text(layer.annotations.get("predicateType"))
    claim = _annotation_claim(layer)
    try:
        envelope = context.json(context.read(layer, _not_read(annotated)), "envelope")
    except _Unreadable as exc:
        _unread_statement(
            found, context.document.digest, annotated, replace(claim, notes=(*claim.notes, str(exc))), "cosign"
        )
        return
    _in_toto(found, context, envelope, claim, "cosign", annotated)


def _bundle_claim(material: Any, context: _Context) -> _Claim:
    """Who a Sigstore bundle's verification material claims: a certificate's identity, or a key's hint."""
    raw = _get(material, "certificate", "rawBytes")
    if raw is None:
        chain = _get(material, "x509CertificateChain", "certificates")
        raw = _get(chain[0], "rawBytes") if isinstance(chain, list) and chain else None
    if isinstance(raw, str):
        try:
            return _certificate_claim(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError):
            return _Claim(None, True, ("its certificate could not be read",))
    hint = context.text(_get(material, "publicKey", "hint"))
    return _Claim(Signer(key=hint) if hint else None)


def _sigstore_bundle(found: AttachedSummary, context: _Context, layer: Descriptor) -> None:
    annotations = context.document.body.get("annotations")
    annotated = context.text(_get(annotations, "dev.sigstore.bundle.predicateType"))
    digest, form = context.document.digest, "sigstore bundle"
    try:
        bundle = context.json(context.read(layer, _not_read(annotated)), "bundle")
        if not isinstance(bundle, dict):
            raise _Unreadable("unreadable: the bundle is not a JSON object")
    except _Unreadable as exc:
        # Without a predicate type, a bundle is a message signature.
        _unread_statement(found, digest, annotated or COSIGN_SIGN_PREDICATE, _Claim(notes=(str(exc),)), form)
        return
    claim = _bundle_claim(bundle.get("verificationMaterial"), context)
    if "dsseEnvelope" in bundle:
        _in_toto(found, context, bundle["dsseEnvelope"], claim, form, annotated)
        return
    notes = claim.notes
    if not isinstance(bundle.get("messageSignature"), dict):
        notes += ("unreadable: neither a message signature nor a DSSE envelope",)
    found.signatures.append(SignatureSummary(digest, form, claim.keyless, claim.signer, None, notes))


def _sbom_format(predicate_or_type: str | None) -> str | None:
    if predicate_or_type is None:
        return None
    if predicate_or_type in SBOM_MEDIA_TYPES:
        return SBOM_MEDIA_TYPES[predicate_or_type]
    return next((f for p, f in SBOM_PREDICATES.items() if predicate_or_type.startswith(p)), None)


def _sbom(
    context: _Context, document: Any, expected: str | None, predicate_type: str | None, notes: tuple[str, ...] = ()
) -> SbomSummary:
    """Format, version and package count of an SBOM document (the format its media type or predicate names)."""
    digest = context.document.digest
    if isinstance(document, dict) and isinstance(document.get("spdxVersion"), str):
        version = context.text(document["spdxVersion"].removeprefix("SPDX-"))
        packages = document.get("packages", [])
        if not isinstance(packages, list):
            return SbomSummary(digest, "SPDX", version, None, predicate_type, (*notes, "packages is not a list"))
        return SbomSummary(digest, "SPDX", version, len(packages), predicate_type, notes)
    if isinstance(document, dict) and document.get("bomFormat") == "CycloneDX":
        version = context.text(document.get("specVersion"))
        components = document.get("components", [])
        if not isinstance(components, list):
            return SbomSummary(digest, "CycloneDX", version, None, predicate_type, (*notes, "components is not a list"))
        return SbomSummary(digest, "CycloneDX", version, len(components), predicate_type, notes)
    return SbomSummary(
        digest, expected, None, None, predicate_type, (*notes, f"not a {expected or 'known'} JSON document")
    )


def _sbom_layer(found: AttachedSummary, context: _Context, layer: Descriptor, media_type: str) -> None:
    sbom_format = SBOM_MEDIA_TYPES[media_type]
    try:
        document = context.json(context.read(layer, "package count not read"), "SBOM")
    except _Unreadable as exc:
        found.sboms.append(SbomSummary(context.document.digest, sbom_format, None, None, None, (str(exc),)))
        return
    found.sboms.append(_sbom(context, document, sbom_format, None))


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip()


def _file_layer(found: AttachedSummary, context: _Context, layer: Descriptor, artifact_type: str) -> None:
    media_type = _media_type(layer.media_type)
    if media_type == COSIGN_SIGNATURE:
        _simple_signing(found, context, layer)
    elif media_type == DSSE_ENVELOPE:
        _dsse(found, context, layer)
    elif media_type.startswith(SIGSTORE_BUNDLE_PREFIX):
        _sigstore_bundle(found, context, layer)
    elif media_type in SBOM_MEDIA_TYPES:
        _sbom_layer(found, context, layer, media_type)
    elif artifact_type in SBOM_MEDIA_TYPES and not found.sboms:
        _sbom_layer(found, context, layer, artifact_type)  # an SBOM artifact whose layer type says less


def artifact_type_of(document: ManifestDocument) -> str:
    """An OCI 1.1 artifact's type: its artifactType, else its config's media type."""
    declared = document.body.get("artifactType")
    if isinstance(declared, str) and declared:
        return declared
    return document.config.media_type if document.config is not None else document.media_type


def summarize(
    document: ManifestDocument, read_blob: ReadBlob, *, subject: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> AttachedSummary:
    """What the attached manifest `document` holds; `subject` is the digest it is attached to."""
    found = AttachedSummary()
    artifact_type = artifact_type_of(document)
    context = _Context(document, read_blob, subject, limits)
    if document.is_index:
        found.other.append(OtherSummary(document.digest, context.text(artifact_type) or "", ("an index; not read",)))
        return found
    cap = limits.review_max_attached_layers
    for layer in document.layers[:cap]:
        _file_layer(found, context, layer, _media_type(artifact_type))
    if len(document.layers) > cap:
        found.notes.append(f"{len(document.layers)} layers; the first {cap} are read")
    if found.empty:
        found.other.append(OtherSummary(document.digest, context.text(artifact_type) or ""))
    return found


def from_record(attached: Attached, note: str) -> AttachedSummary:
    """What the inventory alone says of an attached manifest that cannot be read (`note` says why)."""
    found = AttachedSummary()
    digest, artifact_type = attached.artifact.digest, _media_type(attached.artifact_type)
    if artifact_type == COSIGN_SIGNATURE:
        found.signatures.append(SignatureSummary(digest, "cosign", False, None, None, (note,)))
    elif artifact_type == DSSE_ENVELOPE:
        found.attestations.append(AttestationSummary(digest, None, None, None, (note,)))
    elif artifact_type.startswith(SIGSTORE_BUNDLE_PREFIX):
        found.signatures.append(SignatureSummary(digest, "sigstore bundle", False, None, None, (note,)))
    elif artifact_type in SBOM_MEDIA_TYPES:
        found.sboms.append(SbomSummary(digest, SBOM_MEDIA_TYPES[artifact_type], None, None, None, (note,)))
    else:
        found.other.append(OtherSummary(digest, attached.artifact_type, (note,)))
    return found


def recorded_signers(artifact: ArtifactRecord) -> tuple[Signer, ...]:
    """The upstream signers the collector verified for this image (its inventory's `signers`)."""
    found = []
    for item in artifact.extra.get("signers") or []:
        if isinstance(item, dict):
            found.append(
                Signer(str(item.get("key") or ""), str(item.get("issuer") or ""), str(item.get("identity") or ""))
            )
    return tuple(found)


def verified_by(signature: SignatureSummary, signers: Sequence[Signer]) -> tuple[Signer, ...]:
    """The recorded signers that vouch for `signature`: the one of its certificate's issuer and identity; for a
    signature without a certificate, the image's keys (cosign's signatures name no key, so the collector's
    record is the only link between a key and a signature)."""
    if signature.keyless:
        return tuple(s for s in signers if s.keyless and s == signature.claimed)
    return tuple(s for s in signers if not s.keyless)
